// Dataset records. The files themselves live with the API (its data dir); this is what exists and what it holds.
import { Dataset, jobStates, terminalStates } from '@berth/contracts';
import type { Redis } from 'ioredis';
import type { JobStore } from './job-store.js';
import { keys, type Keys } from './keys.js';

export class DatasetStore {
  private readonly keys: Keys;

  constructor(
    private readonly redis: Redis,
    prefix: string,
    private readonly jobs: JobStore,
  ) {
    this.keys = keys(prefix);
  }

  async put(dataset: Dataset): Promise<void> {
    await this.redis.hset(this.keys.datasets, dataset.id, JSON.stringify(dataset));
  }

  async get(id: string): Promise<Dataset | null> {
    const json = await this.redis.hget(this.keys.datasets, id);
    return json ? Dataset.parse(JSON.parse(json)) : null;
  }

  /** Newest first. */
  async list(): Promise<Dataset[]> {
    const all = (await this.redis.hvals(this.keys.datasets)).map((j) => Dataset.parse(JSON.parse(j)));
    return all.sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  }

  async remove(id: string): Promise<void> {
    await this.redis.hdel(this.keys.datasets, id);
  }

  /** Jobs not yet ended that mount this dataset. */
  async usedBy(id: string): Promise<string[]> {
    const live = jobStates.filter((s) => !terminalStates.has(s));
    const ids: string[] = [];
    for (const state of live) ids.push(...(await this.redis.zrange(this.keys.jobsInState(state), '0', '-1')));
    const records = await this.jobs.getMany(ids);
    return records.filter((j) => j.spec.inputs?.dataset === id).map((j) => j.id);
  }
}
