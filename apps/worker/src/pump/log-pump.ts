// Carries one attempt's output into the job's streams: the lines of each read of the container's output become one
// stream entry (a batch), and entries with the metric points read from them go out in pipelined writes, in order;
// every line also goes to the attempt's log file, which the stream caps never trim and which has a cap of its own.
// Redis may be away, slow or full for a while: the file is written first and on its own, writes to Redis are retried
// until they land (each retry stores nothing twice), and what waits for Redis is bounded in memory by holding back
// the reader, while the container runs on and the engine keeps its output.
import { isoNow } from '@berth/contracts';
import type { LogStream, NewBatch, NewMetric } from '@berth/store';
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, open, rename, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { countLines } from './count-lines.js';
import { LineSplitter } from './line-splitter.js';
import type { StreamName } from './demux.js';
import { markOf, type LogPosition } from './log-cursor.js';

export interface LogPumpOptions {
  /**
   * Lines the pump will read that are already stored: a re-attached worker reads the container's log again from the
   * stored position (or the start) and skips what Redis has past it.
   */
  skip: number;
  /** The attempt's line number of the first line the pump reads (the lines before the stored position; default 0). */
  startLine?: number;
  /** The attempt's log file and the lines it already holds (`countLogFileLines`). */
  file?: { path: string; skip: number };
  /**
   * Bytes the log file may hold (default: the log stream's caps.logFileBytes, BERTH_LOG_FILE_MAX_BYTES, 10 GiB).
   * Past it, the older half is dropped and a marker line at the top says how many lines and bytes went.
   */
  fileMaxBytes?: number;
  flushLines?: number;
  flushMs?: number;
  /** Sees every line, skipped ones included (e.g. to note the metrics a recipe's success rule needs). */
  onLine?: (text: string, stream: StreamName) => void;
  /** Reads metric points from a line; every line is parsed, points of skipped lines are not stored again. */
  parse?: (text: string) => NewMetric[];
  /** Sees every point, from skipped lines too (e.g. to collect the run's summary). */
  onPoint?: (point: NewMetric) => void;
  /**
   * Text (UTF-16 units) that may wait for Redis before the reader is held back; default 64 MiB
   * (BERTH_WORKER_BUFFER_BYTES).
   */
  bufferChars?: number;
  /** Told of each failed write to Redis, before it is retried; `tries` counts from 1. */
  onRetry?: (err: unknown, tries: number) => void;
  /** Longest wait between tries of a write to Redis (default 5 s); the first wait is 50 ms, doubling. */
  retryMaxMs?: number;
}

/**
 * A batch is closed at this many UTF-16 units of text, so one entry (and one SSE event) stays small: readers hold
 * entries by the hundred, and a batch of short lines amortises the per-entry costs long before this.
 */
const batchChars = 16 * 1024;

/**
 * A flush is due at this many UTF-16 units of pending text, whatever the line count: 500 lines of 64 KiB would be
 * one 32 MB script call, held in Redis's query buffer and blocking every other client while it runs.
 */
const flushChars = 1024 * 1024;

/** The first line of a log file whose older part was dropped; it carries the counts a re-attached worker needs. */
const droppedMarker = /^\[berth\] (\d+) older lines \((\d+) bytes\) were dropped/;

function markerLine(lines: number, bytes: number, cap: number): string {
  return `[berth] ${lines} older lines (${bytes} bytes) were dropped here: the attempt's log file keeps at most ${cap} bytes\n`;
}

/**
 * Lines an attempt's log file stands for, dropped ones included: where a worker that re-attaches to the container
 * resumes the file (countLines would count the kept part and the marker).
 */
export async function countLogFileLines(path: string): Promise<number> {
  const lines = await countLines(path);
  if (lines === 0) return 0;
  const head = await readHead(path, 256);
  const m = droppedMarker.exec(head);
  return m ? lines - 1 + Number(m[1]) : lines;
}

async function readHead(path: string, n: number): Promise<string> {
  const handle = await open(path, 'r');
  try {
    const buf = Buffer.alloc(n);
    const { bytesRead } = await handle.read(buf, 0, n, 0);
    return buf.subarray(0, bytesRead).toString('utf8');
  } finally {
    await handle.close();
  }
}

export class LogPump {
  private readonly splitters = { stdout: new LineSplitter(), stderr: new LineSplitter() };
  private pending: NewBatch[] = [];
  private pendingLines = 0;
  private pendingChars = 0;
  /** Text held by the last pending batch, while more lines may join it. */
  private lastChars = 0;
  private points: NewMetric[] = [];
  private fileLines: string[] = [];
  private toSkip: number;
  private fileSkip: number;
  private file: WriteStream | undefined;
  /** Bytes the log file holds, once it is open. */
  private fileBytes = 0;
  private readonly fileMaxBytes: number;
  private timer: NodeJS.Timeout | undefined;
  /** Writes to the log file, in order; one that fails fails every later flush (the disk is what broke). */
  private filing: Promise<void> = Promise.resolve();
  /** Writes to Redis, in order, each retried until it lands: this chain never rejects. */
  private sending: Promise<void> = Promise.resolve();
  /** Text of the batches flushed but not yet in Redis. */
  private unsentChars = 0;
  private readonly bufferChars: number;
  /** Called when unsent text falls back under the buffer, releasing a held-back writer. */
  private drained: (() => void) | undefined;
  /** Lines of this attempt in Redis once every write sent so far has landed. */
  private sentLines: number;
  /** The attempt's line number of the next line read. */
  private lineNo: number;
  /** Whether each stream's last chunk ended a line: a position between whole lines is one a reader may resume at. */
  private readonly atLineEnd = { stdout: true, stderr: true };
  /** The newest resumable position and the lines before it, `since atLast lines`, sent with the next write. */
  private mark: string | undefined;
  private readonly flushLines: number;
  private readonly flushMs: number;

  constructor(
    private readonly logs: LogStream,
    private readonly jobId: string,
    private readonly attempt: number,
    private readonly opts: LogPumpOptions,
  ) {
    this.toSkip = opts.skip;
    this.lineNo = opts.startLine ?? 0;
    this.sentLines = this.lineNo + opts.skip;
    this.bufferChars = opts.bufferChars ?? 64 * 1024 ** 2;
    this.fileSkip = opts.file?.skip ?? 0;
    this.flushLines = opts.flushLines ?? 500;
    // A batch waits at most this long for more lines: at low rates it bounds a line's delay to followers.
    this.flushMs = opts.flushMs ?? 20;
    this.fileMaxBytes = opts.fileMaxBytes ?? logs.caps.logFileBytes;
  }

  /**
   * Accepts a chunk of one stream; resolves once the pump can take more (backpressure for the reader): its lines are
   * in the log file, and what waits for Redis is within the buffer.
   */
  async write(stream: StreamName, chunk: Buffer, position?: LogPosition): Promise<void> {
    this.add(stream, this.splitters[stream].push(chunk));
    this.atLineEnd[stream] = chunk.at(-1) === 0x0a;
    if (position && this.atLineEnd.stdout && this.atLineEnd.stderr) {
      this.mark = markOf(position, this.lineNo);
    }
    if (
      this.pendingLines >= this.flushLines ||
      this.fileLines.length >= this.flushLines ||
      this.pendingChars >= flushChars
    )
      await this.flush();
    else this.timer ??= setTimeout(() => void this.flush().catch(() => {}), this.flushMs);
    while (this.unsentChars > this.bufferChars) await new Promise<void>((resolve) => (this.drained = resolve));
  }

  /** Emits partial last lines, writes everything still buffered (to Redis once it takes it), and closes the file. */
  async close(): Promise<void> {
    this.add('stdout', this.splitters.stdout.end());
    this.add('stderr', this.splitters.stderr.end());
    await this.flush();
    await this.sending;
    const file = this.file;
    if (file)
      await new Promise<void>((resolve, reject) => file.end((err?: Error | null) => (err ? reject(err) : resolve())));
  }

  private add(stream: StreamName, lines: string[]): void {
    if (lines.length === 0) return;
    const time = isoNow();
    // Lines read together (one chunk, or chunks of the same stream in the same millisecond) share an entry.
    let last = this.pending.at(-1);
    if (last && (last.stream !== stream || last.time !== time)) last = undefined;
    for (const text of lines) {
      this.lineNo++;
      this.opts.onLine?.(text, stream);
      const points = this.opts.parse?.(text) ?? [];
      for (const p of points) this.opts.onPoint?.(p);
      // A line's text is counted once towards a flush, whether it waits for the file, the stream or both.
      let queued = false;
      if (this.opts.file) {
        if (this.fileSkip > 0) this.fileSkip--;
        else {
          this.fileLines.push(text);
          queued = true;
        }
      }
      if (this.toSkip === 0 || queued) this.pendingChars += text.length;
      if (this.toSkip > 0) {
        this.toSkip--;
        continue;
      }
      if (!last || this.lastChars >= batchChars) {
        last = { stream, time, lines: [] };
        this.pending.push(last);
        this.lastChars = 0;
      }
      last.lines.push(text);
      this.lastChars += text.length;
      this.pendingLines++;
      if (points.length > 0) this.points.push(...points);
    }
  }

  /**
   * Hands what is pending to the file's chain and to Redis's, each in the order it was read; resolves once the file
   * has it (Redis's writes go on behind, counted in unsentChars).
   */
  private flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.pending;
    const points = this.points;
    const fileLines = this.fileLines;
    const lines = this.pendingLines;
    const mark = this.mark;
    this.mark = undefined;
    this.pending = [];
    this.pendingLines = 0;
    this.pendingChars = 0;
    this.points = [];
    this.fileLines = [];
    if (fileLines.length > 0) this.filing = this.filing.then(() => this.writeFile(`${fileLines.join('\n')}\n`));
    if (batch.length > 0 || points.length > 0 || mark) {
      const chars = batch.reduce((n, b) => n + b.lines.reduce((m, l) => m + l.length, 0), 0);
      const from = this.sentLines;
      this.sentLines += lines;
      this.unsentChars += chars;
      this.sending = this.sending.then(async () => {
        await this.send(batch, points, from, mark);
        this.unsentChars -= chars;
        if (this.unsentChars <= this.bufferChars) this.drained?.();
      });
    }
    return this.filing;
  }

  /** One write to Redis, tried until it lands: a try whose reply was lost is not stored twice (`from`). */
  private async send(batch: NewBatch[], points: NewMetric[], from: number, mark?: string): Promise<void> {
    for (let tries = 1; ; tries++) {
      try {
        await this.logs.append(this.jobId, this.attempt, batch, points, from, mark);
        return;
      } catch (err) {
        this.opts.onRetry?.(err, tries);
        await new Promise((r) => setTimeout(r, Math.min(50 * 2 ** (tries - 1), this.opts.retryMaxMs ?? 5000)));
      }
    }
  }

  private async writeFile(text: string): Promise<void> {
    const path = this.opts.file!.path;
    if (!this.file) {
      await mkdir(dirname(path), { recursive: true });
      this.fileBytes = await stat(path).then(
        (st) => st.size,
        () => 0,
      );
      this.file = createWriteStream(path, { flags: 'a' });
    }
    const size = Buffer.byteLength(text);
    // A file of at most half the cap has nothing to drop (this write alone is large): it goes on as it is.
    if (this.fileBytes + size > this.fileMaxBytes && this.fileBytes > this.fileMaxBytes / 2) {
      await this.dropOlderHalf(path);
    }
    const file = this.file!;
    this.fileBytes += size;
    if (!file.write(text)) await new Promise<void>((resolve) => file.once('drain', () => resolve()));
  }

  /**
   * Rewrites the log file as a marker line and its newest half (from a line's start), and goes on appending to
   * that. Copying half the cap each time the file fills costs one extra write per byte of output, and the file
   * stays one plain text file that the log upload sends as it is.
   */
  private async dropOlderHalf(path: string): Promise<void> {
    const file = this.file!;
    await new Promise<void>((resolve, reject) => file.end((err?: Error | null) => (err ? reject(err) : resolve())));
    this.file = undefined;
    let cut = Math.max(0, this.fileBytes - Math.floor(this.fileMaxBytes / 2));
    cut = await nextLineStart(path, cut);
    // What goes: the lines before the cut, and what an earlier marker at the top said it stood for.
    let droppedLines = 0;
    let droppedBytes = cut;
    const head = await readHead(path, 256);
    const earlier = droppedMarker.exec(head);
    if (earlier) {
      const markerBytes = Buffer.byteLength(head.slice(0, head.indexOf('\n') + 1));
      droppedLines += Number(earlier[1]) - 1;
      droppedBytes += Number(earlier[2]) - markerBytes;
    }
    droppedLines += await countLinesIn(path, cut);
    const marker = markerLine(droppedLines, droppedBytes, this.fileMaxBytes);
    const tmp = `${path}.tmp`;
    const out = createWriteStream(tmp);
    out.write(marker);
    await pipeline(createReadStream(path, { start: cut }), out);
    await rename(tmp, path);
    this.fileBytes = Buffer.byteLength(marker) + (this.fileBytes - cut);
    this.file = createWriteStream(path, { flags: 'a' });
  }
}

/** The offset of the first line that starts at or after `from` (the file's size when none does). */
async function nextLineStart(path: string, from: number): Promise<number> {
  if (from === 0) return 0;
  const handle = await open(path, 'r');
  try {
    const buf = Buffer.alloc(64 * 1024);
    for (let pos = from - 1; ;) {
      const { bytesRead } = await handle.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) return pos;
      const nl = buf.subarray(0, bytesRead).indexOf(10);
      if (nl !== -1) return pos + nl + 1;
      pos += bytesRead;
    }
  } finally {
    await handle.close();
  }
}

/** Newlines in the first `end` bytes of a file. */
async function countLinesIn(path: string, end: number): Promise<number> {
  if (end === 0) return 0;
  let lines = 0;
  for await (const chunk of createReadStream(path, { start: 0, end: end - 1 })) {
    const buf = chunk as Buffer;
    for (let i = buf.indexOf(10); i !== -1; i = buf.indexOf(10, i + 1)) lines++;
  }
  return lines;
}
