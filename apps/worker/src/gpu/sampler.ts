// Samples one attempt's GPUs into its metric stream. A Redis that is away or full delays the samples, it does not
// drop them: what was not taken waits, up to a cap, and goes in front of the next sample's write.
import { isTransientRedisError, type NewMetric } from '@berth/store';
import type { Logger } from 'pino';
import type { GpuTelemetry } from './telemetry.js';

/** Points kept while Redis is away: at 8 GPUs, 6 series and the default sample each 10 s, about 35 minutes. */
export const gpuBacklogPoints = 10_000;

export class GpuSampler {
  private backlog: NewMetric[] = [];
  private sending = false;
  private timer: NodeJS.Timeout | undefined;
  /** Points that went past the cap before Redis took them. */
  dropped = 0;

  constructor(
    private readonly telemetry: Pick<GpuTelemetry, 'points' | 'intervalMs'>,
    private readonly devices: readonly string[],
    private readonly write: (points: NewMetric[]) => Promise<void>,
    private readonly log: Pick<Logger, 'warn' | 'debug'>,
    private readonly cap = gpuBacklogPoints,
  ) {}

  start(): void {
    if (this.timer || this.devices.length === 0) return;
    void this.take();
    this.timer = setInterval(() => void this.take(), this.telemetry.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** One sample, written with whatever earlier ones Redis has not taken yet. */
  async take(): Promise<void> {
    try {
      // Read before the push: `this.backlog.push(...(await x))` would push into the array a write took meanwhile.
      const sample = await this.telemetry.points(this.devices);
      this.backlog.push(...sample);
    } catch (err) {
      this.log.warn({ err }, 'GPU sample failed');
    }
    const over = this.backlog.length - this.cap;
    if (over > 0) {
      this.backlog.splice(0, over);
      this.dropped += over;
    }
    // One write at a time: a sample taken while one is in flight waits for the next round.
    if (this.sending || this.backlog.length === 0) return;
    const points = this.backlog;
    this.backlog = [];
    this.sending = true;
    try {
      await this.write(points);
    } catch (err) {
      this.backlog.unshift(...points);
      if (isTransientRedisError(err)) this.log.debug({ err }, 'Redis did not take GPU samples; kept for later');
      else this.log.warn({ err }, 'GPU samples were not stored');
    } finally {
      this.sending = false;
    }
  }
}
