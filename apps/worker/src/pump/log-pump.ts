// Carries one attempt's output into the job's streams: the lines of each read of the container's output become one
// stream entry (a batch), and entries with the metric points read from them go out in pipelined writes, in order;
// every line also goes to the attempt's log file, which the stream caps never trim and which has a cap of its own.
// Redis may be away, slow or full for a while: the file is written first and on its own, writes to Redis are retried
// until they land (each retry stores nothing twice), and what waits for Redis is bounded in memory. Past the bound
// the pump stops holding lines for Redis and notes only which stretch of the file they are (and each batch's stream
// and time); once Redis takes writes again it back-fills that stretch from the file, in order. The reader is never
// held back for Redis then, so the engine's own log cap cannot drop what Redis missed. A pump without a file holds
// back the reader instead, and the engine keeps the output meanwhile.
import { isoNow } from '@berth/contracts';
import type { LogStream, NewBatch, NewMetric } from '@berth/store';
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, open, rename, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { workerDefaults } from '../defaults.js';
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
  /**
   * Reads metric points from a line read at `time`; every line is parsed, points of skipped lines are not stored
   * again. A back-filled line is parsed once more, with the time it was read.
   */
  parse?: (text: string, time: string) => NewMetric[];
  /** Sees every point, from skipped lines too (e.g. to collect the run's summary). */
  onPoint?: (point: NewMetric) => void;
  /**
   * Text (UTF-16 units) that may wait for Redis in memory; past it, lines wait in the log file (or, without one, the
   * reader is held back). Default: workerDefaults.bufferBytes (BERTH_WORKER_BUFFER_BYTES).
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

/** Batches (stream, time, line count) noted for a spill before later ones join the last: bounds its memory. */
const spillRuns = 100_000;

/** Bytes of the log file read back per write to Redis while back-filling. */
const backfillBytes = 1024 * 1024;

/** Lines that went to the log file but not to Redis yet: the stretch the pump back-fills once Redis takes writes. */
interface Spill {
  /** The attempt's line count before the stretch, and the lines of it already back-filled. */
  from: number;
  sent: number;
  lines: number;
  /** The stretch in the file's bytes as this pump wrote them (see fileBase), and where the back-fill has got to. */
  at: number;
  end: number;
  runs: { stream: StreamName; time: string; lines: number }[];
  /** The newest resumable position in the stretch and the line count it needs stored first. */
  mark?: { mark: string; after: number } | undefined;
}

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
  const buf = Buffer.alloc(n);
  const { bytesRead } = await readAt(path, buf, 0);
  return buf.subarray(0, bytesRead).toString('utf8');
}

async function readAt(path: string, buf: Buffer, position: number): Promise<{ bytesRead: number }> {
  const handle = await open(path, 'r');
  try {
    return await handle.read(buf, 0, buf.length, position);
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
  /** Bytes this pump has handed to the log file, and the file offset of its first one (moved when a half drops). */
  private fileWritten = 0;
  private fileBase = 0;
  /** The marker line's bytes at the top of a file whose older half was dropped (0 for a whole file). */
  private markerBytes = 0;
  /** The last write to the file, once the OS has it: what a back-fill waits for before it reads the file. */
  private fileWrite: Promise<void> = Promise.resolve();
  /** Lines in the file that Redis has not had, while Redis is behind by more than the buffer. */
  private spill: Spill | undefined;
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
    this.bufferChars = opts.bufferChars ?? workerDefaults.bufferBytes;
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
      const points = this.opts.parse?.(text, time) ?? [];
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
    const at = this.fileWritten;
    if (fileLines.length > 0) {
      const text = `${fileLines.join('\n')}\n`;
      this.fileWritten += Buffer.byteLength(text);
      this.filing = this.filing.then(() => this.writeFile(text));
    }
    if (batch.length > 0 || points.length > 0 || mark) {
      const chars = batch.reduce((n, b) => n + b.lines.reduce((m, l) => m + l.length, 0), 0);
      const from = this.sentLines;
      this.sentLines += lines;
      // The lines Redis is to get are the ones the file just got (both are past their skips): they can wait there.
      const inFile = fileLines.length === lines && (lines > 0 || this.spill !== undefined);
      if (this.spill || (inFile && this.unsentChars + chars > this.bufferChars)) {
        this.spillOut(batch, from, lines, at, mark);
        return this.filing;
      }
      this.unsentChars += chars;
      this.sending = this.sending.then(async () => {
        await this.send(batch, points, from, mark);
        this.unsentChars -= chars;
        if (this.unsentChars <= this.bufferChars) this.drained?.();
      });
    }
    return this.filing;
  }

  /** Notes a flush's lines as a stretch of the file for Redis to get later, starting the back-fill if none runs. */
  private spillOut(batch: NewBatch[], from: number, lines: number, at: number, mark: string | undefined): void {
    let spill = this.spill;
    if (!spill) {
      spill = { from, sent: 0, lines: 0, at, end: at, runs: [] };
      this.spill = spill;
      this.sending = this.sending.then(() => this.backfill());
    }
    spill.lines += lines;
    spill.end = this.fileWritten;
    for (const b of batch) {
      const last = spill.runs.at(-1);
      if (spill.runs.length >= spillRuns && last) last.lines += b.lines.length;
      else spill.runs.push({ stream: b.stream, time: b.time, lines: b.lines.length });
    }
    if (mark) spill.mark = { mark, after: this.sentLines };
  }

  /**
   * Sends the spilled stretch to Redis from the file, a megabyte a write, with each batch's stream and time and the
   * metric points parsed again; lines that arrive meanwhile join the stretch, so order holds. Ends the spill when
   * Redis has it all: later lines wait in memory again.
   */
  private async backfill(): Promise<void> {
    const spill = this.spill!;
    while (spill.sent < spill.lines || spill.mark) {
      // The stretch as it stands now: lines that join it while the file catches up are read on the next round.
      const end = spill.end;
      await this.filing;
      await this.fileWrite;
      const lines: string[] = [];
      if (spill.at < end) {
        const physical = this.fileBase + spill.at;
        // A stretch the file's cap dropped meanwhile reads from the line after the marker, and says what went.
        const start = Math.max(physical, this.markerBytes);
        const length = Math.min(backfillBytes, this.fileBase + end - start);
        if (physical < start) {
          lines.push('[berth] lines of this attempt went from the log file before Redis took them (see its marker)');
        }
        // Opened for each read: a cap that drops the file's older half replaces the file.
        const buf = Buffer.alloc(Math.max(0, length));
        const { bytesRead } = length > 0 ? await readAt(this.opts.file!.path, buf, start) : { bytesRead: 0 };
        const text = buf.subarray(0, bytesRead).toString('utf8');
        const cut = text.lastIndexOf('\n');
        if (cut === -1) {
          // Lines are at most maxLineBytes and the file holds whole ones: a read with no line end found it short.
          if (length > 0) lines.push('[berth] lines of this attempt are missing from its log file');
          spill.at = end;
        } else {
          lines.push(...text.slice(0, cut).split('\n'));
          spill.at += start - physical + Buffer.byteLength(text.slice(0, cut + 1));
        }
      }
      const n = Math.min(lines.length, spill.lines - spill.sent);
      const { batches, points } = this.rebatch(spill, lines.slice(0, n));
      const from = spill.from + spill.sent;
      const mark = spill.mark && spill.mark.after <= from + n ? spill.mark.mark : undefined;
      await this.send(batches, points, from, mark);
      spill.sent += n;
      if (mark && spill.mark?.mark === mark) spill.mark = undefined;
      if (spill.at >= spill.end && spill.sent < spill.lines) spill.sent = spill.lines;
    }
    this.spill = undefined;
  }

  /** The spilled lines as batches of their runs' streams and times, and the points parsed from them. */
  private rebatch(spill: Spill, lines: string[]): { batches: NewBatch[]; points: NewMetric[] } {
    const batches: NewBatch[] = [];
    const points: NewMetric[] = [];
    let chars = 0;
    for (const text of lines) {
      const run = spill.runs[0]!;
      let last = batches.at(-1);
      if (!last || last.stream !== run.stream || last.time !== run.time || chars >= batchChars) {
        last = { stream: run.stream, time: run.time, lines: [] };
        batches.push(last);
        chars = 0;
      }
      last.lines.push(text);
      chars += text.length;
      points.push(...(this.opts.parse?.(text, run.time) ?? []));
      if (--run.lines === 0 && spill.runs.length > 1) spill.runs.shift();
    }
    return { batches, points };
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
      this.fileBase = this.fileBytes;
      this.markerBytes = markerBytesOf(await readHead(path, 256).catch(() => ''));
      this.file = createWriteStream(path, { flags: 'a' });
    }
    const size = Buffer.byteLength(text);
    // A file of at most half the cap has nothing to drop (this write alone is large): it goes on as it is.
    if (this.fileBytes + size > this.fileMaxBytes && this.fileBytes > this.fileMaxBytes / 2) {
      await this.dropOlderHalf(path);
    }
    const file = this.file!;
    this.fileBytes += size;
    let written!: () => void;
    this.fileWrite = new Promise<void>((resolve) => (written = resolve));
    if (!file.write(text, () => written())) await new Promise<void>((resolve) => file.once('drain', () => resolve()));
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
      const markerBytes = markerBytesOf(head);
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
    this.markerBytes = Buffer.byteLength(marker);
    this.fileBase += this.markerBytes - cut;
    this.fileBytes = this.markerBytes + (this.fileBytes - cut);
    this.file = createWriteStream(path, { flags: 'a' });
  }
}

function markerBytesOf(head: string): number {
  return droppedMarker.test(head) ? Buffer.byteLength(head.slice(0, head.indexOf('\n') + 1)) : 0;
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
