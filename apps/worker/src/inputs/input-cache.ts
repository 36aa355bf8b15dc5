// Job inputs on the worker host: datasets and other jobs' artifacts, fetched once from the API, cached by content
// (sha256) and evicted least-recently-used beyond a size cap. Mounted read-only into containers.
import { authorization, type ApiTarget } from '../api-client.js';
import { LaunchError } from '../executor/container-runtime.js';
import { createWriteStream } from 'node:fs';
import { mkdir, readdir, rename, rm, stat, utimes } from 'node:fs/promises';
import { dirname, join, normalize, sep } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { extract } from 'tar-stream';

export class InputCache {
  /** Cache entries in use by running attempts: never evicted. */
  private readonly inUse = new Map<string, number>();

  constructor(
    private readonly root: string,
    private readonly api: ApiTarget,
    private readonly maxBytes: number,
  ) {}

  /** A local folder holding the dataset's files. */
  async dataset(id: string): Promise<string> {
    return this.fetch(`/v1/datasets/${id}/content`, `dataset ${id}`);
  }

  /** A local folder holding a job's artifact: the folder's files, or the one file. */
  async artifact(job: string, artifact: string): Promise<string> {
    const path = artifact.split('/').map(encodeURIComponent).join('/');
    return this.fetch(
      `/v1/jobs/${job}/artifacts/${path}`,
      `artifact ${artifact} of ${job}`,
      artifact.split('/').at(-1),
    );
  }

  /** Marks an entry free again once its attempt ended. */
  release(dir: string): void {
    const n = (this.inUse.get(dir) ?? 1) - 1;
    if (n <= 0) this.inUse.delete(dir);
    else this.inUse.set(dir, n);
  }

  private async fetch(path: string, what: string, fileName = 'data'): Promise<string> {
    const url = new URL(path, this.api.url);
    const head = await request(url, 'HEAD', what, this.api);
    const key = head.headers.get('x-berth-sha256');
    if (!key || !/^[a-f0-9]{64}$/.test(key))
      throw new LaunchError('INFRA_ERROR', `the API gave no checksum for ${what}`);
    const dir = join(this.root, key);
    this.inUse.set(dir, (this.inUse.get(dir) ?? 0) + 1);
    if (await exists(dir)) {
      const now = new Date();
      await utimes(dir, now, now);
      return dir;
    }
    const tmp = join(this.root, `.fetching-${key}-${process.pid}-${Date.now()}`);
    try {
      const res = await request(url, 'GET', what, this.api);
      await mkdir(tmp, { recursive: true });
      if (res.headers.get('content-type')?.startsWith('application/x-tar')) await untar(res, tmp);
      else await pipeline(Readable.fromWeb(res.body as never), createWriteStream(join(tmp, fileName)));
      await rename(tmp, dir).catch(async (err: NodeJS.ErrnoException) => {
        // Another attempt fetched the same content meanwhile: theirs is as good.
        if (err.code !== 'ENOTEMPTY' && err.code !== 'EEXIST') throw err;
        await rm(tmp, { recursive: true, force: true });
      });
    } catch (err) {
      this.release(dir);
      await rm(tmp, { recursive: true, force: true });
      if (err instanceof LaunchError) throw err;
      throw new LaunchError(
        'INFRA_ERROR',
        `fetching ${what} failed: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
    await this.evict();
    return dir;
  }

  /** Removes least-recently-used entries not in use until the cache fits its cap. */
  private async evict(): Promise<void> {
    const entries = [];
    for (const name of await readdir(this.root).catch(() => [] as string[])) {
      if (name.startsWith('.')) continue;
      const dir = join(this.root, name);
      entries.push({ dir, used: (await stat(dir)).mtimeMs, size: await du(dir) });
    }
    let total = entries.reduce((n, e) => n + e.size, 0);
    for (const e of entries.sort((a, b) => a.used - b.used)) {
      if (total <= this.maxBytes) break;
      if (this.inUse.has(e.dir)) continue;
      await rm(e.dir, { recursive: true, force: true });
      total -= e.size;
    }
  }
}

async function request(url: URL, method: 'GET' | 'HEAD', what: string, api: ApiTarget): Promise<Response> {
  const res = await fetch(url, { method, headers: authorization(api) }).catch((err: unknown) => {
    throw new LaunchError('INFRA_ERROR', `the API is unreachable for ${what}: ${(err as Error).message}`);
  });
  if (res.status === 404) throw new LaunchError('INFRA_ERROR', `${what} no longer exists`);
  if (!res.ok) throw new LaunchError('INFRA_ERROR', `fetching ${what} failed: the API answered ${res.status}`);
  return res;
}

/** Unpacks our own API's tar; names are still checked, so nothing lands outside `dest`. */
async function untar(res: Response, dest: string): Promise<void> {
  const ex = extract();
  ex.on('entry', (header, stream, next) => {
    const target = normalize(join(dest, header.name));
    if (header.type !== 'file' || !target.startsWith(dest + sep)) {
      stream.resume();
      next(new Error(`unexpected tar entry ${header.name}`));
      return;
    }
    mkdir(dirname(target), { recursive: true })
      .then(() => pipeline(stream, createWriteStream(target, { mode: 0o644 })))
      .then(() => next(), next);
  });
  await pipeline(Readable.fromWeb(res.body as never), ex);
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

async function du(dir: string): Promise<number> {
  let total = 0;
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    total += e.isDirectory() ? await du(p) : (await stat(p)).size;
  }
  return total;
}
