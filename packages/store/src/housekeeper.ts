// Cluster chores any process may run, idempotently: write off silent workers and retry their jobs elsewhere,
// and end jobs that waited past their queueTtl.
import type { Redis } from 'ioredis';
import { endAttempt, type RetryPolicy } from './attempt-outcome.js';
import type { JobStore } from './job-store.js';
import { parseHold, Placement } from './placement.js';

type Hold = ReturnType<typeof parseHold>;
import { WorkerRegistry } from './worker-registry.js';

export interface SweepResult {
  /** Workers written off in this sweep. */
  lost: string[];
  /** Jobs whose attempt ended as WORKER_LOST. */
  orphaned: string[];
  /** Jobs that ended as EXPIRED. */
  expired: string[];
}

export class Housekeeper {
  private readonly registry: WorkerRegistry;
  private readonly placement: Placement;

  constructor(
    private readonly redis: Redis,
    prefix: string,
    private readonly store: JobStore,
    private readonly options: { lostAfterMs: number; retry: RetryPolicy },
  ) {
    this.registry = new WorkerRegistry(redis, prefix);
    this.placement = new Placement(redis, prefix);
  }

  async sweep(now = Date.now()): Promise<SweepResult> {
    const result: SweepResult = { lost: [], orphaned: [], expired: [] };
    for (const worker of await this.registry.list(this.options.lostAfterMs, now)) {
      if (worker.status !== 'lost') continue;
      if (await this.registry.markLost(worker.id, now - this.options.lostAfterMs)) result.lost.push(worker.id);
      // Every sweep finishes what an interrupted one left: the active set only shrinks as jobs are handled.
      for (const hold of await this.registry.active(worker.id)) {
        if (await this.orphan(worker.id, parseHold(hold), now)) result.orphaned.push(parseHold(hold).jobId);
      }
    }
    for (const id of await this.placement.expired(now)) {
      const done = await this.store.transition(
        id,
        { state: 'failed', reason: 'EXPIRED', message: 'the job waited in the queue longer than its queueTtl' },
        { fromQueue: true },
      );
      if (typeof done === 'string') await this.placement.dropDeadline(id);
      else result.expired.push(id);
    }
    if (result.orphaned.length > 0) await this.placement.wake();
    return result;
  }

  private async orphan(workerId: string, { jobId, attempt }: Hold, now: number): Promise<boolean> {
    const job = await this.store.get(jobId);
    const owner = await this.placement.owner(jobId);
    if (!job || owner !== `${workerId}|${attempt}`) {
      await this.placement.forget(workerId, jobId, attempt);
      return false;
    }
    const end = await endAttempt(
      this.store,
      job,
      owner,
      { state: 'failed', reason: 'WORKER_LOST', message: `worker ${workerId} stopped sending heartbeats` },
      this.options.retry,
      undefined,
      now,
    );
    return typeof end !== 'string';
  }
}
