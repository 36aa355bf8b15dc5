// Where artifact bytes live. The filesystem under BERTH_DATA_DIR is the embedded default; an object store can follow.
// Blobs are named by their sha256 inside the job's folder: a name never comes from user input.
import { BerthError } from '@berth/contracts';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import { haveDd, pumpFile, pumpTarget } from './socket-pump.js';

export interface StoredBlob {
  size: number;
  sha256: string;
}

export interface ArtifactStore {
  /** Streams bytes in; resolves once the whole file is durably stored under its sha256. Nothing partial remains on failure. */
  write(
    jobId: string,
    source: Readable,
    limits: { maxBytes: number; expectedSize?: number | undefined },
  ): Promise<StoredBlob>;
  /** Bytes `start`..`end` (inclusive) of a stored blob, or all of it. */
  read(jobId: string, sha256: string, range?: { start: number; end: number }): Readable;
  /**
   * A faster way to answer a download, where the store has one: calls `begin` once the blob is open (errors before
   * that are the caller's to answer), then writes the bytes to `out` and ends it; a failure after `begin` destroys it.
   */
  send?(
    jobId: string,
    sha256: string,
    range: { start: number; end: number } | undefined,
    out: Writable,
    begin: () => void,
  ): Promise<void>;
  /** Removes a blob; one already gone is fine. */
  remove(jobId: string, sha256: string): Promise<void>;
}

export class FsArtifactStore implements ArtifactStore {
  constructor(private readonly root: string) {
    haveDd(); // at start-up, not during the first large download
  }

  async write(
    jobId: string,
    source: Readable,
    limits: { maxBytes: number; expectedSize?: number | undefined },
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

  /**
   * Blobs of 8 MiB and more are pumped by a child process where the response is a plain TCP socket (socket-pump.ts).
   * Anything else goes through two 1 MiB buffers per download, used in turn: the next chunk is read while the last
   * one is written, and nothing is allocated per chunk (a read stream's fresh buffer per chunk is garbage the GC
   * collects late, which grew the API and slowed downloads: bench/RESULTS.md).
   */
  async send(
    jobId: string,
    sha256: string,
    range: { start: number; end: number } | undefined,
    out: Writable,
    begin: () => void,
  ): Promise<void> {
    const path = join(this.root, jobId, sha256);
    const file = await open(path, 'r');
    let reading: Promise<number> = Promise.resolve(0);
    try {
      const size = (await file.stat()).size;
      const end = range ? range.end + 1 : size;
      let pos = range?.start ?? 0;
      // A large one goes out through a child process writing into the socket (socket-pump.ts), where it can.
      const pumpInto = end <= size ? pumpTarget(out, end - pos) : undefined;
      if (pumpInto) return await pumpFile(path, pos, end - pos, pumpInto, begin);
      begin();
      const buffers = [Buffer.allocUnsafeSlow(sendChunk), Buffer.allocUnsafeSlow(sendChunk)];
      const written = [Promise.resolve(true), Promise.resolve(true)];
      const readInto = (buf: Buffer, at: number) =>
        file.read(buf, 0, Math.min(sendChunk, end - at), at).then((r) => r.bytesRead);
      let i = 0;
      reading = pos < end ? readInto(buffers[0]!, pos) : Promise.resolve(0);
      while (pos < end) {
        const n = await reading;
        if (n === 0) throw new Error(`blob ${sha256} ended at ${pos} of ${end} bytes`);
        const cur = i;
        i ^= 1;
        pos += n;
        // The other buffer is free once its write is done; then it takes the next chunk while this one goes out.
        if (!(await written[i])) return;
        reading = pos < end ? readInto(buffers[i]!, pos) : Promise.resolve(0);
        written[cur] = writeChunk(out, buffers[cur]!.subarray(0, n));
      }
      if ((await Promise.all(written)).every(Boolean)) out.end();
    } catch (err) {
      out.destroy(err as Error);
    } finally {
      await reading.catch(() => 0);
      await file.close();
    }
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

const sendChunk = 1024 * 1024;

/** Writes one chunk; true once the stream has taken it (its buffer may be reused), false if the stream closed first. */
function writeChunk(out: Writable, chunk: Buffer): Promise<boolean> {
  if (out.destroyed) return Promise.resolve(false);
  return new Promise((resolve) => {
    const closed = () => resolve(false);
    out.once('close', closed);
    out.write(chunk, (err) => {
      out.off('close', closed);
      resolve(!err);
    });
  });
}

/**
 * Streams bytes into a new file, hashing them on the way, and syncs it. Too many bytes, a cut-off upload or a full
 * disk are BerthErrors; the caller removes the file on failure.
 */
export async function streamToFile(
  source: Readable,
  path: string,
  limits: { maxBytes: number; expectedSize?: number | undefined },
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
