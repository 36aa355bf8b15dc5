// GPU placement: a worker takes the queued jobs that fit its free GPUs, atomically, in queue order.
//
// BullMQ's workers take the next job whether or not it fits, and cannot skip one that waits for GPUs; packing
// needs one atomic look at the queue and the worker's ledger, so placement is this one Lua script. Only a
// worker's own script assigns its GPUs and only its own finish frees them: no GPU is ever handed out twice.
import type { GpuMode } from '@berth/contracts';
import type { Redis } from 'ioredis';
import { jobKeyPrefix, keys, type Keys } from './keys.js';
import { runScript } from './scripts.js';

export interface PlacementWorker {
  id: string;
  mode: GpuMode;
  concurrency: number;
  /** GPU UUIDs in device-index order; the ledger's keys. */
  gpus: readonly string[];
}

export interface Claim {
  jobId: string;
  attempt: number;
  /** GPU UUIDs given to the attempt; every GPU of the worker in whole-host mode. */
  devices: string[];
}

export interface PlacementOptions {
  /**
   * How many later jobs may start ahead of a waiting job before it reserves the worker: once reached, nothing
   * queued behind it starts there until it fits. Small jobs fill gaps, but a large job is never starved.
   */
  maxBypass: number;
  /** How far down the queue one placement looks. */
  scanLimit?: number;
}

// KEYS: pending, ledger, active, deadlines; ARGV: now, mode, concurrency, maxBypass, jobKeyPrefix, workerId, gpus (csv), scan
const claimScript = `
local now = tonumber(ARGV[1])
local mode = ARGV[2]
local concurrency = tonumber(ARGV[3])
local maxBypass = tonumber(ARGV[4])
local jp = ARGV[5]
local order = {}
for u in string.gmatch(ARGV[7], '[^,]+') do order[#order + 1] = u end
local total = #order
local free = {}
for _, u in ipairs(order) do
  local holder = redis.call('HGET', KEYS[2], u)
  if not holder or holder == '' then free[#free + 1] = u end
end
local active = redis.call('SCARD', KEYS[3])
local claimed = {}
if active >= concurrency then return claimed end
local passed = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[8]) - 1)) do
  if active >= concurrency then break end
  local f = redis.call('HMGET', jp .. id, 'gpus', 'skips', 'notBefore')
  local need = tonumber(f[1]) or 0
  if (tonumber(f[3]) or 0) <= now and need <= total then
    local take = nil
    if need == 0 then take = 0
    elseif mode == 'whole-host' then if #free == total then take = total end
    elseif need <= #free then take = need end
    if take then
      local attempt = redis.call('HINCRBY', jp .. id, 'attempt', 1)
      local hold = id .. '#' .. attempt
      local devices = {}
      for i = 1, take do
        devices[i] = table.remove(free, 1)
        redis.call('HSET', KEYS[2], devices[i], hold)
      end
      redis.call('HSET', jp .. id, 'owner', ARGV[6] .. '|' .. attempt, 'devices', table.concat(devices, ','))
      redis.call('ZREM', KEYS[1], id)
      redis.call('ZREM', KEYS[4], id)
      redis.call('SADD', KEYS[3], hold)
      active = active + 1
      for _, p in ipairs(passed) do redis.call('HINCRBY', jp .. p, 'skips', 1) end
      claimed[#claimed + 1] = id
      claimed[#claimed + 1] = attempt
      claimed[#claimed + 1] = table.concat(devices, ',')
    else
      passed[#passed + 1] = id
      -- This job has been passed often enough: it reserves the worker until it fits.
      if (tonumber(f[2]) or 0) >= maxBypass then break end
    end
  end
end
return claimed
`;

// Drops a worker's hold on an attempt that ended or moved on without it: its GPUs and its slot.
// KEYS: ledger, active, job; ARGV: hold (jobId#attempt), owner
const forgetScript = `
local ledger = redis.call('HGETALL', KEYS[1])
for i = 1, #ledger, 2 do
  if ledger[i + 1] == ARGV[1] then redis.call('HSET', KEYS[1], ledger[i], '') end
end
redis.call('SREM', KEYS[2], ARGV[1])
if redis.call('HGET', KEYS[3], 'owner') == ARGV[2] then redis.call('HSET', KEYS[3], 'owner', '', 'devices', '') end
return 1
`;

/** What placement needs to know of a queued job. */
export interface QueuedJob {
  id: string;
  gpus: number;
  /** Not to be placed before (ms), after a retry's backoff. */
  notBefore: number;
  /** Ends as EXPIRED when still queued at this time (ms). */
  deadline: number | undefined;
  /** How often a later job started ahead of it. */
  skips: number;
  /** The user who owns it. */
  user: string;
}

/** A worker's hold on one attempt, as its ledger and active set record it: `jobId#attempt`. */
export function holdOf(jobId: string, attempt: number): string {
  return `${jobId}#${attempt}`;
}

export function parseHold(hold: string): { jobId: string; attempt: number } {
  const at = hold.lastIndexOf('#');
  return { jobId: hold.slice(0, at), attempt: Number(hold.slice(at + 1)) };
}

export class Placement {
  private readonly keys: Keys;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {
    this.keys = keys(prefix);
  }

  /** Places as many queued jobs on this worker as fit now, and reserves their GPUs. */
  async claim(worker: PlacementWorker, options: PlacementOptions, now = Date.now()): Promise<Claim[]> {
    const flat = (await runScript(
      this.redis,
      claimScript,
      4,
      this.keys.pending,
      this.keys.ledger(worker.id),
      this.keys.active(worker.id),
      this.keys.deadlines,
      now,
      worker.mode,
      worker.concurrency,
      options.maxBypass,
      jobKeyPrefix(this.prefix),
      worker.id,
      worker.gpus.join(','),
      options.scanLimit ?? 1000,
    )) as (string | number)[];
    const claims: Claim[] = [];
    for (let i = 0; i + 2 < flat.length; i += 3) {
      const devices = String(flat[i + 2]);
      claims.push({ jobId: String(flat[i]), attempt: Number(flat[i + 1]), devices: devices ? devices.split(',') : [] });
    }
    return claims;
  }

  /** The queue in the order placement considers it. */
  async queued(limit = 10_000): Promise<QueuedJob[]> {
    const ids = await this.redis.zrange(this.keys.pending, '0', String(limit - 1));
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.hmget(this.keys.job(id), 'gpus', 'notBefore', 'skips', 'user');
    pipeline.zmscore(this.keys.deadlines, ...(ids.length > 0 ? ids : ['-']));
    const rows = (await pipeline.exec()) ?? [];
    const deadlines = (rows.at(-1)?.[1] ?? []) as (string | null)[];
    return ids.map((id, i) => {
      const [gpus, notBefore, skips, user] = (rows[i]?.[1] ?? []) as (string | null)[];
      const deadline = deadlines[i];
      return {
        id,
        gpus: Number(gpus ?? 0),
        notBefore: Number(notBefore ?? 0),
        deadline: deadline ? Number(deadline) : undefined,
        skips: Number(skips ?? 0),
        user: user ?? '',
      };
    });
  }

  /** Queued jobs whose queueTtl ran out by `now`. */
  async expired(now: number): Promise<string[]> {
    return this.redis.zrangebyscore(this.keys.deadlines, '-inf', now);
  }

  /** Drops a job's queue deadline (it is no longer waiting). */
  async dropDeadline(jobId: string): Promise<void> {
    await this.redis.zrem(this.keys.deadlines, jobId);
  }

  /** Frees what a worker holds for a job that ended or moved on; clears the job's owner if it was this attempt. */
  async forget(workerId: string, jobId: string, attempt: number): Promise<void> {
    await runScript(
      this.redis,
      forgetScript,
      3,
      this.keys.ledger(workerId),
      this.keys.active(workerId),
      this.keys.job(jobId),
      holdOf(jobId, attempt),
      `${workerId}|${attempt}`,
    );
  }

  /** The devices a placed job holds (from its claim), for a worker re-attaching after a restart. */
  async devices(jobId: string): Promise<string[]> {
    const devices = await this.redis.hget(this.keys.job(jobId), 'devices');
    return devices ? devices.split(',') : [];
  }

  /** The worker and attempt a placed job belongs to (`worker|attempt`), or null when it is not placed. */
  async owner(jobId: string): Promise<string | null> {
    return (await this.redis.hget(this.keys.job(jobId), 'owner')) || null;
  }

  /** Wakes every worker to try placing jobs (a job was queued or GPUs were freed). */
  async wake(): Promise<void> {
    await this.redis.publish(this.keys.wakeChannel, '1');
  }
}
