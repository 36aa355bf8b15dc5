// Where artifact bytes live. The filesystem under BERTH_DATA_DIR is the embedded default; an object store can follow.
// Blobs are named by their sha256 inside the job's folder: a name never comes from user input.
import { BerthError } from '@berth/contracts';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';

export interface StoredBlob {
  size: number;
  sha256: string;
}

export interface ArtifactStore {
  /** Streams bytes in; resolves once the whole file is durably stored under its sha256. Nothing partial remains on failure. */
  write(jobId: string, source: Readable, limits: { maxBytes: number; expectedSize?: number }): Promise<StoredBlob>;
  /** Bytes `start`..`end` (inclusive) of a stored blob, or all of it. */
  read(jobId: string, sha256: string, range?: { start: number; end: number }): Readable;
  /** Removes a blob; one already gone is fine. */
  remove(jobId: string, sha256: string): Promise<void>;
}

export class FsArtifactStore implements ArtifactStore {
  constructor(private readonly root: string) {}

  async write(
    jobId: string,
    source: Readable,
    limits: { maxBytes: number; expectedSize?: number },
  ): Promise<StoredBlob> {
    const tmpDir = join(this.root, '.tmp');
    await mkdir(tmpDir, { recursive: true });
    const tmp = join(tmpDir, `${jobId}-${randomBytes(8).toString('hex')}`);
    try {
      const blob = await streamToFile(source, tmp, limits);
      const dir = join(this.root, jobId);
      await mkdir(dir, { recursive: true });
      // The rename is the commit: a blob under its sha256 name is always whole.
      await rename(tmp, join(dir, blob.sha256));
      return blob;
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }

  read(jobId: string, sha256: string, range?: { start: number; end: number }): Readable {
    // 1 MiB reads: a quarter of the syscalls of the 64 KiB default on large checkpoints.
    return createReadStream(join(this.root, jobId, sha256), { highWaterMark: 1024 * 1024, ...range });
  }

  async remove(jobId: string, sha256: string): Promise<void> {
    await rm(join(this.root, jobId, sha256), { force: true });
  }

  /** Size on disk of a blob, or null; for checks. */
  async size(jobId: string, sha256: string): Promise<number | null> {
    return stat(join(this.root, jobId, sha256)).then(
      (s) => s.size,
      () => null,
    );
  }
}

/**
 * Streams bytes into a new file, hashing them on the way, and syncs it. Too many bytes, a cut-off upload or a full
 * disk are BerthErrors; the caller removes the file on failure.
 */
export async function streamToFile(
  source: Readable,
  path: string,
  limits: { maxBytes: number; expectedSize?: number },
): Promise<StoredBlob> {
  const hash = createHash('sha256');
  let size = 0;
  const meter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      size += chunk.length;
      if (size > limits.maxBytes) {
        done(new BerthError('BODY_TOO_LARGE', `uploads are at most ${limits.maxBytes} bytes`));
        return;
      }
      hash.update(chunk);
      done(null, chunk);
    },
  });
  try {
    await pipeline(source, meter, createWriteStream(path, { flags: 'wx', mode: 0o644 }));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOSPC')
      throw new BerthError('ARTIFACT_STORE_FULL', 'the store is full; nothing of this upload was kept');
    if (code === 'ERR_STREAM_PREMATURE_CLOSE') {
      throw new BerthError('ARTIFACT_UPLOAD_INCOMPLETE', 'the upload was cut off; nothing of it was kept');
    }
    throw err;
  }
  if (limits.expectedSize !== undefined && size !== limits.expectedSize) {
    throw new BerthError(
      'ARTIFACT_UPLOAD_INCOMPLETE',
      `the upload ended after ${size} of ${limits.expectedSize} bytes`,
    );
  }
  const handle = await open(path, 'r');
  await handle.sync().finally(() => handle.close());
  return { size, sha256: hash.digest('hex') };
}
