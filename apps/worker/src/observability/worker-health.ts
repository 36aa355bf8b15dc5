// Whether this worker is alive in a way a supervisor can act on: its event loop turns, and its queue client fetches.
import { monitorEventLoopDelay, performance, type IntervalHistogram } from 'node:perf_hooks';

export interface WorkerHealthOptions {
  /** Event-loop delay past which the worker is unhealthy (BERTH_WORKER_MAX_LAG_MS). */
  maxLagMs: number;
  /** How long jobs that fit may wait with nothing fetched before the worker is unhealthy (BERTH_WORKER_STUCK_MS). */
  stuckMs: number;
  /** Since when jobs that fit have waited with nothing fetched; undefined while the queue client keeps up. */
  queueStuckSince: () => number | undefined;
  /** How long a delay keeps counting after it happened: at least this, at most twice this (default 10 s). */
  windowMs?: number;
}

export interface HealthReport {
  ok: boolean;
  /** The worst event-loop delay of the recent window(s). */
  eventLoopLagMs: number;
  /** How long fitting jobs have waited with nothing fetched; null while nothing is stuck. */
  queueStuckMs: number | null;
  reasons: string[];
}

/**
 * Owns two event-loop delay histograms, the timer that ages them and a ticker; close() stops them all. Each window
 * one histogram starts afresh, so a delay counts for one to two windows. Two, because a reset also forgets when the
 * last sample was taken: the first delay after it goes unrecorded, and when the aging timer fires just as a blocked
 * loop frees up, that delay is the block itself. The histogram not reset that window records it.
 *
 * A histogram records a delay only once its timer runs after it, and a request that waited out the block (a probe)
 * can be answered before that. The ticker covers it: the time since it last ran is a delay still going on.
 */
export class WorkerHealth {
  private readonly delays: [IntervalHistogram, IntervalHistogram];
  private readonly resolutionMs = 20;
  private older = 0;
  private readonly timer: NodeJS.Timeout;
  private readonly tickMs = 100;
  private lastTick = performance.now();
  private readonly ticker: NodeJS.Timeout;

  constructor(private readonly opts: WorkerHealthOptions) {
    this.delays = [
      monitorEventLoopDelay({ resolution: this.resolutionMs }),
      monitorEventLoopDelay({ resolution: this.resolutionMs }),
    ];
    for (const delay of this.delays) delay.enable();
    this.timer = setInterval(() => {
      this.delays[this.older]!.reset();
      this.older = 1 - this.older;
    }, opts.windowMs ?? 10_000);
    this.ticker = setInterval(() => (this.lastTick = performance.now()), this.tickMs);
    // Health is read by whoever asks; it must not keep a worker that is shutting down alive.
    this.timer.unref();
    this.ticker.unref();
  }

  check(now = Date.now()): HealthReport {
    // The histograms time whole intervals of their timer, so an idle loop reads one resolution; the rest is lag.
    const recordedMs = Math.max(...this.delays.map((d) => d.max)) / 1e6 - this.resolutionMs;
    const ongoingMs = performance.now() - this.lastTick - this.tickMs;
    const lagMs = Math.max(0, recordedMs, ongoingMs);
    const since = this.opts.queueStuckSince();
    const stuckMs = since === undefined ? null : Math.max(0, now - since);
    const reasons: string[] = [];
    if (lagMs > this.opts.maxLagMs) {
      reasons.push(`the event loop lagged ${Math.round(lagMs)} ms (more than ${this.opts.maxLagMs} ms)`);
    }
    if (stuckMs !== null && stuckMs >= this.opts.stuckMs) {
      reasons.push(
        `jobs that fit have waited ${Math.round(stuckMs / 1000)} s while BullMQ handed over none ` +
          `(more than ${Math.round(this.opts.stuckMs / 1000)} s, renewals of its workers included)`,
      );
    }
    return { ok: reasons.length === 0, eventLoopLagMs: Math.round(lagMs), queueStuckMs: stuckMs, reasons };
  }

  close(): void {
    clearInterval(this.timer);
    clearInterval(this.ticker);
    for (const delay of this.delays) delay.disable();
  }
}
