// Carries one attempt's output into the job's streams: the lines of each read of the container's output become one
// stream entry (a batch), and entries with the metric points read from them go out in pipelined writes, in order;
// every line also goes to the attempt's full log file, which the stream cap never trims.
import { isoNow } from '@berth/contracts';
import type { LogStream, NewBatch, NewMetric } from '@berth/store';
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { LineSplitter } from './line-splitter.js';
import type { StreamName } from './demux.js';

export interface LogPumpOptions {
  /** Lines of this attempt already stored (a re-attached worker re-reads the container's log from the start). */
  skip: number;
  /** The attempt's full log file and the lines it already holds. */
  file?: { path: string; skip: number };
  flushLines?: number;
  flushMs?: number;
  /** Sees every line, skipped ones included (e.g. to note the metrics a recipe's success rule needs). */
  onLine?: (text: string) => void;
  /** Reads metric points from a line; every line is parsed, points of skipped lines are not stored again. */
  parse?: (text: string) => NewMetric[];
  /** Sees every point, from skipped lines too (e.g. to collect the run's summary). */
  onPoint?: (point: NewMetric) => void;
}

/**
 * A batch is closed at this many UTF-16 units of text, so one entry (and one SSE event) stays small: readers hold
 * entries by the hundred, and a batch of short lines amortises the per-entry costs long before this.
 */
const batchChars = 16 * 1024;

export class LogPump {
  private readonly splitters = { stdout: new LineSplitter(), stderr: new LineSplitter() };
  private pending: NewBatch[] = [];
  private pendingLines = 0;
  /** Text held by the last pending batch, while more lines may join it. */
  private lastChars = 0;
  private points: NewMetric[] = [];
  private fileLines: string[] = [];
  private toSkip: number;
  private fileSkip: number;
  private file: WriteStream | undefined;
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();
  private readonly flushLines: number;
  private readonly flushMs: number;

  constructor(
    private readonly logs: LogStream,
    private readonly jobId: string,
    private readonly attempt: number,
    private readonly opts: LogPumpOptions,
  ) {
    this.toSkip = opts.skip;
    this.fileSkip = opts.file?.skip ?? 0;
    this.flushLines = opts.flushLines ?? 500;
    // A batch waits at most this long for more lines: at low rates it bounds a line's delay to followers.
    this.flushMs = opts.flushMs ?? 20;
  }

  /** Accepts a chunk of one stream; resolves once the pump can take more (backpressure for the reader). */
  async write(stream: StreamName, chunk: Buffer): Promise<void> {
    this.add(stream, this.splitters[stream].push(chunk));
    if (this.pendingLines >= this.flushLines || this.fileLines.length >= this.flushLines) await this.flush();
    else this.timer ??= setTimeout(() => void this.flush().catch(() => {}), this.flushMs);
  }

  /** Emits partial last lines, writes everything still buffered, and closes the log file. */
  async close(): Promise<void> {
    this.add('stdout', this.splitters.stdout.end());
    this.add('stderr', this.splitters.stderr.end());
    await this.flush();
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
      this.opts.onLine?.(text);
      const points = this.opts.parse?.(text) ?? [];
      for (const p of points) this.opts.onPoint?.(p);
      if (this.opts.file) {
        if (this.fileSkip > 0) this.fileSkip--;
        else this.fileLines.push(text);
      }
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

  /** Flushes are chained so batches land in the order they were read. */
  private flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.pending;
    const points = this.points;
    const fileLines = this.fileLines;
    this.pending = [];
    this.pendingLines = 0;
    this.points = [];
    this.fileLines = [];
    this.flushing = this.flushing.then(async () => {
      await this.logs.append(this.jobId, this.attempt, batch, points);
      if (fileLines.length > 0) await this.writeFile(`${fileLines.join('\n')}\n`);
    });
    return this.flushing;
  }

  private async writeFile(text: string): Promise<void> {
    if (!this.file) {
      await mkdir(dirname(this.opts.file!.path), { recursive: true });
      this.file = createWriteStream(this.opts.file!.path, { flags: 'a' });
    }
    const file = this.file;
    if (!file.write(text)) await new Promise<void>((resolve) => file.once('drain', () => resolve()));
  }
}
