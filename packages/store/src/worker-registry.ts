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

/** The sweep lease as one housekeeper holds it: its own token, and how long each renewal lasts. */
export interface SweepLease {
  token: string;
  ttlMs: number;
}

/** What a write-off attempt found: another sweeper's lease, a live worker, a worker written off now or before. */
export type WriteOff = 'busy' | 'live' | 'lost' | 'was-lost';

export class WorkerRegistry {
  private readonly keys: Keys;

  constructor(
    private readonly redis: Redis,
    prefix: string,
  ) {
    this.keys = keys(prefix);
  }

  /** Registers the worker; its first heartbeat is stamped by Redis, as every later one is. */
  async register(profile: WorkerProfile): Promise<void> {
    await runScript(
      this.redis,
      scripts.registerWorker,
      [this.keys.workers, this.keys.worker(profile.id), this.keys.ledger(profile.id)],
      [profile.id, JSON.stringify(profile), ...profile.gpus.map((g) => g.uuid)],
    );
  }

  /**
   * Records a heartbeat, stamped with Redis's clock rather than this host's, so a host clock that is off cannot make a
   * live worker look silent or a silent one look live. True when the worker had been written off meanwhile.
   */
  async heartbeat(id: string): Promise<boolean> {
    return (await runScript(this.redis, scripts.heartbeat, [this.keys.worker(id)], [])) === 'lost';
  }

  /**
   * Writes the worker off when Redis's clock says it has been silent longer than `lostAfterMs`. The call takes or
   * renews the sweep lease for `lease.token`, and answers 'busy' without looking when another sweeper holds it.
   */
  async markLost(id: string, lease: SweepLease, lostAfterMs: number): Promise<WriteOff> {
    return (await runScript(
      this.redis,
      scripts.markLost,
      [this.keys.sweepLease, this.keys.worker(id)],
      [lease.token, lease.ttlMs, lostAfterMs],
    )) as WriteOff;
  }

  /** The attempts (`jobId#attempt`) placed on the worker and not finished there. */
  async active(id: string): Promise<string[]> {
    return this.redis.smembers(this.keys.active(id));
  }

  /**
   * Every registered worker with its GPUs' holders; `lostAfterMs` of silence on Redis's clock shows a worker as lost,
   * so every process sees the same status whatever its own clock says.
   */
  async list(lostAfterMs: number): Promise<WorkerInfo[]> {
    const ids = (await this.redis.smembers(this.keys.workers)).sort();
    const pipeline = this.redis.pipeline();
    pipeline.time();
    for (const id of ids) {
      pipeline.hmget(this.keys.worker(id), 'json', 'heartbeat', 'status');
      pipeline.hgetall(this.keys.ledger(id));
      pipeline.smembers(this.keys.active(id));
    }
    const [clock, ...rows] = (await pipeline.exec()) ?? [];
    const [seconds, micros] = (clock?.[1] ?? []) as string[];
    const now = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
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
