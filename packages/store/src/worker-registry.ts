// The workers registry: who is there, what GPUs each has and who holds them, and who stopped answering.
import { WorkerInfo, type WorkerGpu } from '@berth/contracts';
import type { Redis } from 'ioredis';
import { keys, type Keys } from './keys.js';
import { parseHold } from './owner.js';
import { runScript, scripts } from './scripts.js';

/** What a worker says about itself when it registers; the rest of WorkerInfo is read from Redis. */
export type WorkerProfile = Omit<WorkerInfo, 'lastHeartbeat' | 'status' | 'running' | 'gpus'> & {
  gpus: Omit<WorkerGpu, 'job'>[];
};

export class WorkerRegistry {
  private readonly keys: Keys;

  constructor(
    private readonly redis: Redis,
    prefix: string,
  ) {
    this.keys = keys(prefix);
  }

  async register(profile: WorkerProfile, now = Date.now()): Promise<void> {
    await runScript(
      this.redis,
      scripts.registerWorker,
      [this.keys.workers, this.keys.worker(profile.id), this.keys.ledger(profile.id)],
      [profile.id, JSON.stringify(profile), now, ...profile.gpus.map((g) => g.uuid)],
    );
  }

  /** Records a heartbeat; returns true when the worker had been written off as lost meanwhile. */
  async heartbeat(id: string, now = Date.now()): Promise<boolean> {
    return (await runScript(this.redis, scripts.heartbeat, [this.keys.worker(id)], [now])) === 'lost';
  }

  /** Marks a worker lost when its last heartbeat is older than `cutoff`; true for the one caller that did. */
  async markLost(id: string, cutoff: number): Promise<boolean> {
    return (await runScript(this.redis, scripts.markLost, [this.keys.worker(id)], [cutoff])) === 1;
  }

  /** The attempts (`jobId#attempt`) placed on the worker and not finished there. */
  async active(id: string): Promise<string[]> {
    return this.redis.smembers(this.keys.active(id));
  }

  /** Every registered worker with its GPUs' holders; `lostAfterMs` of silence shows a worker as lost. */
  async list(lostAfterMs: number, now = Date.now()): Promise<WorkerInfo[]> {
    const ids = (await this.redis.smembers(this.keys.workers)).sort();
    const pipeline = this.redis.pipeline();
    for (const id of ids) {
      pipeline.hmget(this.keys.worker(id), 'json', 'heartbeat', 'status');
      pipeline.hgetall(this.keys.ledger(id));
      pipeline.smembers(this.keys.active(id));
    }
    const rows = (await pipeline.exec()) ?? [];
    const workers: WorkerInfo[] = [];
    ids.forEach((_, i) => {
      const [json, beat, status] = (rows[i * 3]?.[1] ?? []) as (string | null)[];
      const ledger = (rows[i * 3 + 1]?.[1] ?? {}) as Record<string, string>;
      const running = ((rows[i * 3 + 2]?.[1] ?? []) as string[]).map((h) => parseHold(h).jobId).sort();
      if (!json) return;
      const profile = JSON.parse(json) as WorkerProfile;
      const heartbeat = Number(beat ?? 0);
      const lost = status === 'lost' || now - heartbeat > lostAfterMs;
      workers.push(
        WorkerInfo.parse({
          ...profile,
          gpus: profile.gpus.map((g) => {
            const hold = ledger[g.uuid];
            return hold ? { ...g, job: parseHold(hold).jobId } : g;
          }),
          lastHeartbeat: new Date(heartbeat).toISOString(),
          status: lost ? 'lost' : 'live',
          running,
        }),
      );
    });
    return workers;
  }
}
