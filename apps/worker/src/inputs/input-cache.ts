// Job inputs on the worker host: datasets and other jobs' artifacts, fetched once from the API, cached by content
// and evicted least-recently-used beyond a size cap. Mounted read-only into containers.
//
// The cache is shared by every tenant on the host, so an entry's name is computed here from what was downloaded —
// the sha256 of its files' names and contents, hashed while they stream to disk — never taken from a header. Two
// uploads of one file under different names are two entries; a body that is not what the API announced (an
// artifact's `latest` that moved between the HEAD and the GET) is refused and nothing is stored.
import { ApiAway, apiBusy, authorization, untilApiAnswers, type ApiTarget } from '../api-client.js';
import { LaunchError } from '../executor/container-runtime.js';
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { dirname, join, normalize, sep } from 'node:path';
import { Readable, Transform, type PipelineSource } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { extract } from 'tar-stream';

const sha256Hex = /^[a-f0-9]{64}$/;

/** The API has no such input (404): an error for a job's declared input, an answer for an optional one. */
class InputGone extends LaunchError {}
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** What the API says it serves at a path: the same for a HEAD and the GET that follows, or the input changed. */
interface Announcement {
  sha256: string;
  tar: boolean;
  disposition: string;
}

/** A file written into an entry, by its path inside the entry, with the sha256 of the bytes written. */
interface Written {
  name: string;
  sha256: string;
}

export class InputCache {
  /** Cache entries in use by running attempts: never evicted. */
  private readonly inUse = new Map<string, number>();
  /** Lookups and downloads in flight, by what the API announced at a path: concurrent fetches share one. */
  private readonly pending = new Map<string, Promise<{ dir: string; fresh: boolean }>>();

  constructor(
    private readonly root: string,
    private readonly api: ApiTarget,
    private readonly maxBytes: number,
  ) {}

  /** A local folder holding the dataset's files. */
  async dataset(id: string): Promise<string> {
    return this.fetch(`/v1/datasets/${id}/content`, `dataset ${id}`, 'dataset');
  }

  /**
   * A local folder to mount at /init, holding what a job's artifact holds: a folder artifact's own files at its top
   * (`config.json`, `model.safetensors`, …, however the folder was named in the job), or the one file of a file
   * artifact under its name. The API sends a folder as a tar of `<folder name>/…`; that one folder is what is mounted.
   */
  async artifact(job: string, artifact: string): Promise<string> {
    const path = artifact.split('/').map(encodeURIComponent).join('/');
    const dir = await this.fetch(
      `/v1/jobs/${job}/artifacts/${path}`,
      `artifact ${artifact} of ${job}`,
      'artifact',
      artifact.split('/').at(-1),
    );
    const top = await readdir(dir, { withFileTypes: true });
    return top.length === 1 && top[0]!.isDirectory() ? join(dir, top[0]!.name) : dir;
  }

  /**
   * The newest checkpoint a job's attempt left (its current one unless `attempt` names another), as the cache entry
   * holding its folder (`step-…/`); undefined when it left none. What a resumed attempt starts from.
   */
  async checkpoint(job: string, attempt?: number): Promise<string | undefined> {
    const query = attempt === undefined ? '' : `?attempt=${attempt}`;
    return this.fetch(`/v1/jobs/${job}/artifacts/latest${query}`, `the newest checkpoint of ${job}`, 'artifact').catch(
      (err: unknown) => {
        if (err instanceof InputGone) return undefined;
        throw err;
      },
    );
  }

  /** Marks an entry free again once its attempt ended; `path` is what dataset or artifact gave, or a path inside it. */
  release(path: string): void {
    const dir = join(this.root, path.slice(this.root.length + 1).split(sep)[0]!);
    const n = (this.inUse.get(dir) ?? 1) - 1;
    if (n <= 0) this.inUse.delete(dir);
    else this.inUse.set(dir, n);
  }

  /** Fetches an input, waiting out an API that is away (restarting): a job does not fail because the API did. */
  private async fetch(path: string, what: string, kind: 'dataset' | 'artifact', fileName = 'data'): Promise<string> {
    return untilApiAnswers(() => this.fetchOnce(path, what, kind, fileName), this.api.graceMs).catch((err: unknown) => {
      throw err instanceof ApiAway ? new LaunchError('INFRA_ERROR', `${err.message}, and kept failing`) : err;
    });
  }

  private async fetchOnce(path: string, what: string, kind: 'dataset' | 'artifact', fileName: string): Promise<string> {
    const url = new URL(path, this.api.url);
    const announced = announcement(await request(url, 'HEAD', what, this.api));
    if (!sha256Hex.test(announced.sha256)) throw new LaunchError('INFRA_ERROR', `the API gave no checksum for ${what}`);
    // The path and everything the API announced for it: a dataset never changes, an artifact path such as `latest`
    // does, and then its announcement changes too.
    const ref = sha256(JSON.stringify([path, announced.sha256, announced.tar, announced.disposition, fileName]));
    let lookup = this.pending.get(ref);
    if (!lookup) {
      lookup = this.lookupOrDownload(ref, url, what, kind, fileName, announced).finally(() => this.pending.delete(ref));
      this.pending.set(ref, lookup);
    }
    const { dir, fresh } = await lookup;
    this.inUse.set(dir, (this.inUse.get(dir) ?? 0) + 1);
    if (fresh) await this.evict();
    return dir;
  }

  private async lookupOrDownload(
    ref: string,
    url: URL,
    what: string,
    kind: 'dataset' | 'artifact',
    fileName: string,
    announced: Announcement,
  ): Promise<{ dir: string; fresh: boolean }> {
    // A ref names the entry a download of this very announcement produced; the entry's own name is its content.
    const refFile = join(this.root, '.refs', ref);
    const known = (await readFile(refFile, 'utf8').catch(() => '')).trim();
    if (sha256Hex.test(known)) {
      const dir = join(this.root, known);
      if (await exists(dir)) {
        const now = new Date();
        await utimes(dir, now, now);
        return { dir, fresh: false };
      }
    }
    const dir = await this.download(url, what, kind, fileName, announced);
    await mkdir(dirname(refFile), { recursive: true });
    const tmpRef = `${refFile}.${randomBytes(4).toString('hex')}`;
    await writeFile(tmpRef, dir.slice(this.root.length + 1));
    await rename(tmpRef, refFile);
    return { dir, fresh: true };
  }

  private async download(
    url: URL,
    what: string,
    kind: 'dataset' | 'artifact',
    fileName: string,
    announced: Announcement,
  ): Promise<string> {
    const tmp = join(this.root, `.fetching-${process.pid}-${randomBytes(6).toString('hex')}`);
    try {
      const res = await request(url, 'GET', what, this.api);
      const got = announcement(res);
      if (got.sha256 !== announced.sha256 || got.tar !== announced.tar || got.disposition !== announced.disposition) {
        await res.body?.cancel();
        throw changed(what, announced.sha256, `an answer announcing ${got.sha256 || 'no checksum'}`);
      }
      await mkdir(tmp, { recursive: true });
      const files = got.tar
        ? await untar(res, tmp)
        : [{ name: fileName, sha256: await saveHashed(Readable.fromWeb(res.body as never), join(tmp, fileName)) }];
      // An artifact's announced sha256 is its file's, or its folder's listing (what the API hashes, below); a
      // dataset's is that of the upload it was unpacked from, which cannot be recomputed here.
      if (kind === 'artifact') {
        const received = got.tar ? folderSha256(files) : files[0]!.sha256;
        if (received !== announced.sha256) throw changed(what, announced.sha256, `bytes hashing to ${received}`);
      }
      const key = sha256(
        [...files]
          .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
          .map((f) => `${f.name} ${f.sha256}\n`)
          .join(''),
      );
      const dir = join(this.root, key);
      await rename(tmp, dir).catch(async (err: NodeJS.ErrnoException) => {
        // The same files are cached already (another input, or another attempt meanwhile): theirs is as good.
        if (err.code !== 'ENOTEMPTY' && err.code !== 'EEXIST') throw err;
        await rm(tmp, { recursive: true, force: true });
      });
      return dir;
    } catch (err) {
      await rm(tmp, { recursive: true, force: true });
      if (err instanceof LaunchError || err instanceof ApiAway) throw err;
      // fetch's body failing mid-way (the connection cut, the API stopped) is a TypeError; a local failure is not.
      if (err instanceof TypeError) throw new ApiAway(`fetching ${what} was cut off: ${err.message}`);
      throw new LaunchError(
        'INFRA_ERROR',
        `fetching ${what} failed: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
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
    throw new ApiAway(`the API is unreachable for ${what}: ${(err as Error).message}`);
  });
  if (res.status === 404) throw new InputGone('INFRA_ERROR', `${what} no longer exists`);
  if (apiBusy(res.status)) throw new ApiAway(`fetching ${what}: the API answered ${res.status}`);
  if (!res.ok) throw new LaunchError('INFRA_ERROR', `fetching ${what} failed: the API answered ${res.status}`);
  return res;
}

function announcement(res: Response): Announcement {
  return {
    sha256: res.headers.get('x-berth-sha256') ?? '',
    tar: res.headers.get('content-type')?.startsWith('application/x-tar') ?? false,
    disposition: res.headers.get('content-disposition') ?? '',
  };
}

function changed(what: string, announcedSha: string, received: string): LaunchError {
  return new LaunchError(
    'INFRA_ERROR',
    `${what} changed while it was fetched (announced sha256 ${announcedSha}, received ${received}); nothing was cached`,
  );
}

/** The API's sha256 of a folder artifact: each file's path inside the folder and sha256, in the tar's order. The tar
 * names each file under the folder's own name, which the listing leaves out. */
function folderSha256(files: readonly Written[]): string {
  const top = files[0]?.name.split('/')[0] ?? '';
  if (files.some((f) => !f.name.startsWith(`${top}/`))) return 'a tar that is not one folder';
  return sha256(files.map((f) => `${f.name.slice(top.length + 1)} ${f.sha256}\n`).join(''));
}

/** Writes a stream to `file`, hashing the bytes on their way; returns their sha256. */
async function saveHashed(source: PipelineSource<unknown>, file: string): Promise<string> {
  const hash = createHash('sha256');
  const hashing = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      done(null, chunk);
    },
  });
  await pipeline(source, hashing, createWriteStream(file, { mode: 0o644 }));
  return hash.digest('hex');
}

/** Unpacks our own API's tar, hashing each file; names are still checked, so nothing lands outside `dest`. */
async function untar(res: Response, dest: string): Promise<Written[]> {
  const written: Written[] = [];
  const seen = new Set<string>();
  const ex = extract();
  ex.on('entry', (header, stream, next) => {
    const target = normalize(join(dest, header.name));
    // A name twice would leave one file on disk and two in the listing the entry is named by.
    if (header.type !== 'file' || !target.startsWith(dest + sep) || seen.has(target)) {
      stream.resume();
      next(new Error(`unexpected tar entry ${header.name}`));
      return;
    }
    seen.add(target);
    mkdir(dirname(target), { recursive: true })
      .then(() => saveHashed(stream, target))
      .then((hash) => {
        written.push({ name: target.slice(dest.length + 1), sha256: hash });
        next();
      }, next);
  });
  await pipeline(Readable.fromWeb(res.body as never), ex);
  return written;
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
