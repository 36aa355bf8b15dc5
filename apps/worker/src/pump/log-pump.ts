// Carries one attempt's output into the job's log stream: lines batched into pipelined writes, in order.
import type { LogStream, NewLine } from '@berth/store';
import { LineSplitter } from './line-splitter.js';
import type { StreamName } from './demux.js';

export interface LogPumpOptions {
  /** Lines of this attempt already stored (a re-attached worker re-reads the container's log from the start). */
  skip: number;
  flushLines?: number;
  flushMs?: number;
  /** Sees every new line (e.g. to note the metrics a recipe's success rule needs). */
  onLine?: (text: string) => void;
}

export class LogPump {
  private readonly splitters = { stdout: new LineSplitter(), stderr: new LineSplitter() };
  private pending: NewLine[] = [];
  private toSkip: number;
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();
  private readonly flushLines: number;
  private readonly flushMs: number;
  private readonly onLine: ((text: string) => void) | undefined;

  constructor(
    private readonly logs: LogStream,
    private readonly jobId: string,
    private readonly attempt: number,
    opts: LogPumpOptions,
  ) {
    this.toSkip = opts.skip;
    this.flushLines = opts.flushLines ?? 500;
    this.flushMs = opts.flushMs ?? 100;
    this.onLine = opts.onLine;
  }

  /** Accepts a chunk of one stream; resolves once the pump can take more (backpressure for the reader). */
  async write(stream: StreamName, chunk: Buffer): Promise<void> {
    this.add(stream, this.splitters[stream].push(chunk));
    if (this.pending.length >= this.flushLines) await this.flush();
    else this.timer ??= setTimeout(() => void this.flush().catch(() => {}), this.flushMs);
  }

  /** Emits partial last lines and writes everything still buffered. */
  async close(): Promise<void> {
    this.add('stdout', this.splitters.stdout.end());
    this.add('stderr', this.splitters.stderr.end());
    await this.flush();
  }

  private add(stream: StreamName, lines: string[]): void {
    const time = new Date().toISOString();
    for (const text of lines) {
      this.onLine?.(text);
      if (this.toSkip > 0) {
        this.toSkip--;
        continue;
      }
      this.pending.push({ stream, text, time });
    }
  }

  /** Flushes are chained so batches land in the order they were read. */
  private flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.pending;
    this.pending = [];
    this.flushing = this.flushing.then(() => this.logs.append(this.jobId, this.attempt, batch));
    return this.flushing;
  }
}
