// What workers are told over Redis pub/sub, and the only place that knows its channel names besides keys.ts: a wake
// (jobs were queued or GPUs freed: try placing), a cancel (stop that job's attempt), and a multi-node member's end
// (every member of that attempt stops). Messages are hints: whoever misses one learns the same on its next round.
import type { Redis } from 'ioredis';
import { keys, type Keys } from './keys.js';
import { holdOf, parseHold } from './owner.js';

/** How a member of a multi-node attempt ended, as the others are told it. */
export interface GangStop {
  jobId: string;
  attempt: number;
  rank: number;
  state: string;
  reason?: string;
  exitCode?: number;
  message?: string;
}

export interface SignalHandlers {
  onWake(): void;
  onCancel(jobId: string): void;
  onGangStop(stop: GangStop): void;
  /** A message that could not be read (a gang stop from another version, say). */
  onUnreadable(err: unknown): void;
}

export class WorkerSignals {
  private readonly keys: Keys;

  constructor(
    private readonly redis: Redis,
    prefix: string,
  ) {
    this.keys = keys(prefix);
  }

  /** Subscribes `subscriber` (a connection of its own) to every signal and hands each to its handler. */
  async listen(subscriber: Redis, on: SignalHandlers): Promise<void> {
    const k = this.keys;
    await subscriber.subscribe(k.wakeChannel, k.cancelChannel, k.gangStopChannel);
    subscriber.on('message', (channel: string, message: string) => {
      if (channel === k.cancelChannel) on.onCancel(message);
      else if (channel === k.gangStopChannel) {
        try {
          const { hold, ...end } = JSON.parse(message) as Omit<GangStop, 'jobId' | 'attempt'> & { hold: string };
          on.onGangStop({ ...parseHold(hold), ...end });
        } catch (err) {
          on.onUnreadable(err);
        }
      } else if (channel === k.wakeChannel) on.onWake();
    });
  }

  /** Tells every member of a multi-node attempt how one of them ended. */
  async gangStop(stop: GangStop): Promise<void> {
    const { jobId, attempt, ...end } = stop;
    await this.redis.publish(this.keys.gangStopChannel, JSON.stringify({ hold: holdOf(jobId, attempt), ...end }));
  }
}
