// A job's artifact index: the only list of what may be downloaded. Paths are keys here, never joined onto a disk path.
import { Artifact } from '@berth/contracts';
import type { Redis } from 'ioredis';
import { keys, type Keys } from './keys.js';

export class ArtifactIndex {
  private readonly keys: Keys;

  constructor(
    private readonly redis: Redis,
    prefix: string,
  ) {
    this.keys = keys(prefix);
  }

  /** Records (or replaces) an artifact; returns the one it replaced. */
  async put(jobId: string, artifact: Artifact): Promise<Artifact | null> {
    const [[, old]] = (await this.redis
      .multi()
      .hget(this.keys.artifacts(jobId), artifact.path)
      .hset(this.keys.artifacts(jobId), artifact.path, JSON.stringify(artifact))
      .exec()) as [[unknown, string | null]];
    return old ? Artifact.parse(JSON.parse(old)) : null;
  }

  async get(jobId: string, path: string): Promise<Artifact | null> {
    const json = await this.redis.hget(this.keys.artifacts(jobId), path);
    return json ? Artifact.parse(JSON.parse(json)) : null;
  }

  /** Every artifact of the job, sorted by path. */
  async list(jobId: string): Promise<Artifact[]> {
    const all = await this.redis.hvals(this.keys.artifacts(jobId));
    return all.map((j) => Artifact.parse(JSON.parse(j))).sort((a, b) => a.path.localeCompare(b.path));
  }

  async remove(jobId: string, paths: readonly string[]): Promise<void> {
    if (paths.length > 0) await this.redis.hdel(this.keys.artifacts(jobId), ...paths);
  }
}
