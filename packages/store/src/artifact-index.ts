// A job's artifact index: the only list of what may be downloaded. Paths are keys here, never joined onto a disk path.
import { Artifact } from '@berth/contracts';
import type { Redis } from 'ioredis';
import { keys, type Keys } from './keys.js';
import { runScript, scripts } from './scripts.js';

/** Why an upload's index write was refused: its attempt does not own the job now, or the job ended. */
export type UploadRefusal = 'fenced';

export class ArtifactIndex {
  private readonly keys: Keys;

  constructor(
    private readonly redis: Redis,
    prefix: string,
  ) {
    this.keys = keys(prefix);
  }

  /**
   * Records (or replaces) an artifact sent by `artifact.attempt`; returns the one it replaced, or 'fenced' (and
   * writes nothing) when that attempt does not own the job in an uploading state.
   */
  async put(jobId: string, artifact: Artifact): Promise<{ replaced: Artifact | null } | UploadRefusal> {
    // Fenced in the same step as the write (lua/fenced-put-artifact-2.lua): a written-off attempt cannot slip in.
    const old = (await runScript(
      this.redis,
      scripts.fencedPutArtifact,
      [this.keys.job(jobId), this.keys.artifacts(jobId)],
      [artifact.attempt, artifact.path, JSON.stringify(artifact)],
    )) as string | number;
    if (old === 0) return 'fenced';
    return { replaced: old ? Artifact.parse(JSON.parse(old as string)) : null };
  }

  /** Whether `attempt` may upload to the job now (a cheap early answer; `put` decides, atomically). */
  async mayUpload(jobId: string, attempt: number): Promise<boolean> {
    const [state, current] = await this.redis.hmget(this.keys.job(jobId), 'state', 'attempt');
    return current === String(attempt) && uploadStates.has(state ?? '');
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

const uploadStates = new Set(['pulling', 'starting', 'running', 'uploading']);
