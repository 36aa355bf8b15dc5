// Pipeline records and the lock that lets one process at a time advance a pipeline.
import { Pipeline } from '@berth/contracts';
import type { Redis } from 'ioredis';
import { randomBytes } from 'node:crypto';
import { keys, type Keys } from './keys.js';
import { runScript, scripts } from './scripts.js';

export class PipelineStore {
  private readonly keys: Keys;

  constructor(
    private readonly redis: Redis,
    prefix: string,
  ) {
    this.keys = keys(prefix);
  }

  async save(p: Pipeline): Promise<void> {
    const tx = this.redis.multi().hset(this.keys.pipelines, p.id, JSON.stringify(p));
    if (p.state === 'running') tx.sadd(this.keys.pipelinesActive, p.id);
    else tx.srem(this.keys.pipelinesActive, p.id);
    await tx.exec();
  }

  async get(id: string): Promise<Pipeline | null> {
    const json = await this.redis.hget(this.keys.pipelines, id);
    return json ? Pipeline.parse(JSON.parse(json)) : null;
  }

  /** Newest first. */
  async list(): Promise<Pipeline[]> {
    const all = (await this.redis.hvals(this.keys.pipelines)).map((j) => Pipeline.parse(JSON.parse(j)));
    return all.sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  }

  async active(): Promise<string[]> {
    return this.redis.smembers(this.keys.pipelinesActive);
  }

  /** Runs `fn` holding the pipeline's lock; returns undefined without running it when another process holds it. */
  async withLock<T>(id: string, fn: () => Promise<T>): Promise<T | undefined> {
    const token = randomBytes(8).toString('hex');
    if ((await this.redis.set(this.keys.pipelineLock(id), token, 'PX', 30_000, 'NX')) !== 'OK') return undefined;
    try {
      return await fn();
    } finally {
      await runScript(this.redis, scripts.releaseLock, [this.keys.pipelineLock(id)], [token]);
    }
  }
}
