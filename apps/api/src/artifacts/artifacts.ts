// A job's artifacts: the index (what exists) over the store (the bytes), with checkpoint retention and folders.
import { isoNow, BerthError, type Artifact, type ArtifactKind } from '@berth/contracts';
import type { ArtifactIndex } from '@berth/store';
import type { Readable } from 'node:stream';
import { pack as tarPack } from 'tar-stream';
import type { ArtifactStore } from './artifact-store.js';

const checkpointDir = /^(.*?(?:^|\/)checkpoints\/step-(\d+))\//;

/** The checkpoint folder a path belongs to (`…/checkpoints/step-N`) and its step, if any. */
export function checkpointOf(path: string): { dir: string; step: number } | null {
  const m = checkpointDir.exec(path);
  return m ? { dir: m[1]!, step: Number(m[2]) } : null;
}

export class Artifacts {
  constructor(
    readonly index: ArtifactIndex,
    readonly store: ArtifactStore,
    private readonly options: { keepCheckpoints: number; maxBytes: number },
  ) {}

  /** Stores an upload under `path` and lists it only once it is whole; old checkpoints beyond the limit go. */
  async put(
    jobId: string,
    path: string,
    body: Readable,
    meta: { kind: ArtifactKind; attempt: number; size?: number | undefined },
  ): Promise<Artifact> {
    // Refused before the body is read when the attempt is already out; the index write below decides for good.
    if (!(await this.index.mayUpload(jobId, meta.attempt))) throw fenced(jobId, meta.attempt);
    const blob = await this.store.write(jobId, body, {
      maxBytes: this.options.maxBytes,
      expectedSize: meta.size,
    });
    const artifact: Artifact = {
      path,
      size: blob.size,
      sha256: blob.sha256,
      kind: meta.kind,
      attempt: meta.attempt,
      createdAt: isoNow(),
    };
    const put = await this.index.put(jobId, artifact);
    if (put === 'fenced') {
      // The attempt was written off or the job ended while the body came in: nothing of it stays.
      await this.dropBlobIfUnused(jobId, blob.sha256);
      throw fenced(jobId, meta.attempt);
    }
    const { replaced } = put;
    if (replaced && replaced.sha256 !== blob.sha256) await this.dropBlobIfUnused(jobId, replaced.sha256);
    if (checkpointOf(path)) await this.retain(jobId);
    return artifact;
  }

  /** Whether `resolve` would find something at `path`; a missing artifact is an answer here, not an error. */
  async exists(jobId: string, path: string, attempt?: number): Promise<boolean> {
    return this.resolve(jobId, path, attempt).then(
      () => true,
      (err: unknown) => {
        if (err instanceof BerthError && err.code === 'ARTIFACT_NOT_FOUND') return false;
        throw err;
      },
    );
  }

  /**
   * One file, every file under a folder, or (`latest`, `latest/…`) the newest checkpoint of `attempt` (the job's
   * current or final one): a checkpoint of an earlier attempt is never `latest`, whatever its step.
   */
  async resolve(
    jobId: string,
    path: string,
    attempt?: number,
  ): Promise<{ file: Artifact } | { folder: string; files: Artifact[] }> {
    const all = await this.index.list(jobId);
    if (path === 'latest' || path.startsWith('latest/')) {
      const newest = newestCheckpoint(attempt === undefined ? all : all.filter((a) => a.attempt === attempt));
      if (!newest) throw new BerthError('ARTIFACT_NOT_FOUND', `job ${jobId} has no checkpoint yet`);
      path = path === 'latest' ? newest : `${newest}${path.slice('latest'.length)}`;
    }
    const file = all.find((a) => a.path === path);
    if (file) return { file };
    const folder = path.replace(/\/+$/, '');
    const files = all.filter((a) => a.path.startsWith(`${folder}/`));
    if (files.length === 0) throw new BerthError('ARTIFACT_NOT_FOUND', `job ${jobId} has no artifact ${path}`);
    return { folder, files };
  }

  /** A folder as a tar stream, files in path order, read one at a time. */
  tar(jobId: string, folder: string, files: readonly Artifact[]): Readable {
    const pack = tarPack();
    const base = folder.includes('/') ? folder.slice(0, folder.lastIndexOf('/') + 1) : '';
    void (async () => {
      try {
        for (const f of files) {
          await new Promise<void>((resolve, reject) => {
            const entry = pack.entry({ name: f.path.slice(base.length), size: f.size, mode: 0o644 }, (err) =>
              err ? reject(err) : resolve(),
            );
            const source = this.store.read(jobId, f.sha256);
            source.on('error', reject);
            source.pipe(entry);
          });
        }
        pack.finalize();
      } catch (err) {
        pack.destroy(err as Error);
      }
    })();
    return pack as unknown as Readable;
  }

  /** Removes a file or every file under a folder; returns what went. */
  async remove(jobId: string, path: string): Promise<Artifact[]> {
    const target = await this.resolve(jobId, path);
    const gone = 'file' in target ? [target.file] : target.files;
    await this.index.remove(
      jobId,
      gone.map((a) => a.path),
    );
    for (const sha of new Set(gone.map((a) => a.sha256))) await this.dropBlobIfUnused(jobId, sha);
    return gone;
  }

  /**
   * Keeps the newest `keepCheckpoints` checkpoint folders of the job: the latest attempt's first, then by step, so
   * a retry's early checkpoints are not dropped for an earlier attempt's higher steps.
   */
  private async retain(jobId: string): Promise<void> {
    const all = await this.index.list(jobId);
    const dirs = new Map<string, { step: number; attempt: number }>();
    for (const a of all) {
      const c = checkpointOf(a.path);
      if (c) dirs.set(c.dir, { step: c.step, attempt: Math.max(a.attempt, dirs.get(c.dir)?.attempt ?? 0) });
    }
    const old = [...dirs.entries()]
      .sort(([, a], [, b]) => b.attempt - a.attempt || b.step - a.step)
      .slice(this.options.keepCheckpoints);
    for (const [dir] of old) await this.remove(jobId, dir);
  }

  private async dropBlobIfUnused(jobId: string, sha256: string): Promise<void> {
    if (!(await this.index.list(jobId)).some((a) => a.sha256 === sha256)) await this.store.remove(jobId, sha256);
  }
}

function fenced(jobId: string, attempt: number): BerthError {
  return new BerthError(
    'ATTEMPT_FENCED',
    `attempt ${attempt} does not own job ${jobId} now (written off, superseded, or the job ended): upload refused`,
    { attempt },
  );
}

function newestCheckpoint(all: readonly Artifact[]): string | undefined {
  let best: { dir: string; step: number } | undefined;
  for (const a of all) {
    const c = checkpointOf(a.path);
    if (c && (!best || c.step > best.step)) best = c;
  }
  return best?.dir;
}
