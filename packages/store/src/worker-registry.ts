// The workers registry: who is there, what GPUs each has and who holds them, and who stopped answering.
import { WorkerInfo, type WorkerGpu } from '@berth/contracts';
import type { Redis } from 'ioredis';
import { keys, type Keys } from './keys.js';
import { runScript } from './scripts.js';
import { parseHold } from './placement.js';

/** What a worker says about itself when it registers; the rest of WorkerInfo is read from Redis. */
export type WorkerProfile = Omit<WorkerInfo, 'lastHeartbeat' | 'status' | 'running' | 'gpus'> & {
  gpus: Omit<WorkerGpu, 'job'>[];
};

// Registers (or re-registers after a restart): the ledger keeps the holders of GPUs the worker still has.
// KEYS: workers, worker, ledger; ARGV: id, json, now, gpu uuids...
const registerScript = `
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], 'json', ARGV[2], 'heartbeat', ARGV[3], 'status', 'live')
local keep = {}
for i = 4, #ARGV do keep[ARGV[i]] = true end
local ledger = redis.call('HGETALL', KEYS[3])
for i = 1, #ledger, 2 do
  if not keep[ledger[i]] then redis.call('HDEL', KEYS[3], ledger[i]) end
end
for i = 4, #ARGV do redis.call('HSETNX', KEYS[3], ARGV[i], '') end
return 1
`;

// KEYS: worker; ARGV: now. Returns the status the worker had before this beat (lost = it was written off).
const heartbeatScript = `
local status = redis.call('HGET', KEYS[1], 'status')
redis.call('HSET', KEYS[1], 'heartbeat', ARGV[1], 'status', 'live')
return status or 'unknown'
`;

// KEYS: worker; ARGV: cutoff. Marks a silent worker lost once; returns 1 for the caller that did.
const markLostScript = `
local beat = tonumber(redis.call('HGET', KEYS[1], 'heartbeat') or '0')
if beat >= tonumber(ARGV[1]) or redis.call('HGET', KEYS[1], 'status') == 'lost' then return 0 end
redis.call('HSET', KEYS[1], 'status', 'lost')
return 1
`;

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
      registerScript,
      3,
      this.keys.workers,
      this.keys.worker(profile.id),
      this.keys.ledger(profile.id),
      profile.id,
      JSON.stringify(profile),
      now,
      ...profile.gpus.map((g) => g.uuid),
    );
  }

  /** Records a heartbeat; returns true when the worker had been written off as lost meanwhile. */
  async heartbeat(id: string, now = Date.now()): Promise<boolean> {
    return (await runScript(this.redis, heartbeatScript, 1, this.keys.worker(id), now)) === 'lost';
  }

  /** Marks a worker lost when its last heartbeat is older than `cutoff`; true for the one caller that did. */
  async markLost(id: string, cutoff: number): Promise<boolean> {
    return (await runScript(this.redis, markLostScript, 1, this.keys.worker(id), cutoff)) === 1;
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
