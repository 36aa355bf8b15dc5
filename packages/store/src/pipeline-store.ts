// Pipeline records and the lock that lets one process at a time advance or cancel a pipeline.
import { Pipeline } from '@berth/contracts';
import type { Redis } from 'ioredis';
import { randomBytes } from 'node:crypto';
import { keys, type Keys } from './keys.js';
import { runScript, scripts } from './scripts.js';

const lockTtlMs = 30_000;
const lockPollMs = 20;

/** A pipeline as the coordinator reads it: the record, and its bookkeeping of steps whose submit failed so far. */
export interface StoredPipeline {
  pipeline: Pipeline;
  /** Step name → the coordinator's retry record (it validates them; the store keeps them beside the record). */
  retries: Record<string, unknown>;
}

export interface LockOptions {
  /** How long to wait for a lock another process holds before giving up (default: not at all). */
  waitMs?: number;
}

export class PipelineStore {
  private readonly keys: Keys;

  constructor(
    private readonly redis: Redis,
    prefix: string,
  ) {
    this.keys = keys(prefix);
  }

  /**
   * Writes the record with the coordinator's retry records in the same JSON, so the two never disagree; an ended
   * pipeline keeps none. Reading it as a Pipeline leaves them out, so no API answer shows them.
   */
  async save(p: Pipeline, retries: Record<string, unknown> = {}): Promise<void> {
    const kept = p.state === 'running' && Object.keys(retries).length > 0 ? { submitRetries: retries } : {};
    const tx = this.redis.multi().hset(this.keys.pipelines, p.id, JSON.stringify({ ...p, ...kept }));
    if (p.state === 'running') tx.sadd(this.keys.pipelinesActive, p.id);
    else tx.srem(this.keys.pipelinesActive, p.id);
    await tx.exec();
  }

  async get(id: string): Promise<Pipeline | null> {
    return (await this.getWithRetries(id))?.pipeline ?? null;
  }

  async getWithRetries(id: string): Promise<StoredPipeline | null> {
    const json = await this.redis.hget(this.keys.pipelines, id);
    if (!json) return null;
    const raw = JSON.parse(json) as { submitRetries?: unknown };
    const retries = raw.submitRetries;
    return {
      pipeline: Pipeline.parse(raw),
      retries: retries && typeof retries === 'object' ? (retries as Record<string, unknown>) : {},
    };
  }

  /** Newest first. */
  async list(): Promise<Pipeline[]> {
    const all = (await this.redis.hvals(this.keys.pipelines)).map((j) => Pipeline.parse(JSON.parse(j)));
    return all.sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  }

  async active(): Promise<string[]> {
    return this.redis.smembers(this.keys.pipelinesActive);
  }

  /**
   * The job a submit under this user's Idempotency-Key recorded, if any. A process that submitted a step and died
   * before saving the pipeline leaves the step waiting with no job named; this is how a cancel still finds the job.
   */
  async submittedJob(userId: string, idempotencyKey: string): Promise<string | null> {
    const seen = await this.redis.get(this.keys.idempotency(userId, idempotencyKey));
    return seen ? seen.slice(0, seen.indexOf('|')) || null : null;
  }

  /**
   * Runs `fn` holding the pipeline's lock, which is renewed while `fn` runs so a slow pass never loses it halfway.
   * Returns undefined without running `fn` when another process holds the lock for longer than `waitMs`.
   */
  async withLock<T>(id: string, fn: () => Promise<T>, o: LockOptions = {}): Promise<T | undefined> {
    const key = this.keys.pipelineLock(id);
    const token = randomBytes(8).toString('hex');
    const giveUpAt = Date.now() + (o.waitMs ?? 0);
    while ((await this.redis.set(key, token, 'PX', lockTtlMs, 'NX')) !== 'OK') {
      if (Date.now() >= giveUpAt) return undefined;
      await new Promise((r) => setTimeout(r, lockPollMs));
    }
    const renewal = setInterval(() => void this.renew(key, token).catch(() => {}), lockTtlMs / 3);
    renewal.unref();
    try {
      return await fn();
    } finally {
      clearInterval(renewal);
      await runScript(this.redis, scripts.releaseLock, [key], [token]);
    }
  }

  /**
   * Between the read and the PEXPIRE the lock could change hands only by expiring, which renewing at a third of its
   * life rules out while Redis answers; and even then the PEXPIRE would only lengthen the other holder's lock.
   */
  private async renew(key: string, token: string): Promise<void> {
    if ((await this.redis.get(key)) === token) await this.redis.pexpire(key, lockTtlMs);
  }
}
