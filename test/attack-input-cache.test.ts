// The worker's input cache is shared by every tenant on a host, so what it stores under a key must be what that key
// names. Attacks: an artifact that changes between the worker's HEAD and its GET (a `latest` that moves), one content
// under two names, a dataset pushed twice with different file names, and a crowd of attempts asking for one input at
// once. The datasets go through the real API; the moving artifact through a small server standing in for the API,
// which answers HEAD and GET as the race would.
import type { Dataset } from '@berth/contracts';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { InputCache } from '../apps/worker/src/inputs/input-cache.js';
import { startTestStack, type TestStack } from './support/stack.js';

jest.setTimeout(60_000);

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
const work = mkdtempSync(join(tmpdir(), 'berth-attack-input-cache-'));
let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack('attack-input-cache', { worker: false });
});
afterAll(async () => {
  await stack?.close();
  rmSync(work, { recursive: true, force: true });
});

/** Every file under `dir`, by path relative to it, with its bytes as text. */
function tree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile())
      out[join(e.parentPath, e.name).slice(dir.length + 1)] = readFileSync(join(e.parentPath, e.name), 'utf8');
  }
  return out;
}

/** A stand-in for the API's artifact route: each path answers HEAD and GET with what `route` says. */
async function fakeApi(
  route: (path: string, method: string) => { sha: string; body: Buffer; tar?: boolean } | undefined,
): Promise<{ url: string; gets: string[]; close: () => Promise<void> }> {
  const gets: string[] = [];
  const server: Server = createServer((req, res) => {
    const answer = route(req.url ?? '', req.method ?? '');
    if (!answer) {
      res.writeHead(404).end();
      return;
    }
    if (req.method === 'GET') gets.push(req.url ?? '');
    res.writeHead(200, {
      'content-type': answer.tar ? 'application/x-tar' : 'application/octet-stream',
      'content-length': answer.body.length,
      'x-berth-sha256': answer.sha,
    });
    // The body comes a little later, so concurrent fetches overlap.
    setTimeout(() => res.end(req.method === 'HEAD' ? undefined : answer.body), 50);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    gets,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

test('an artifact that changes between the HEAD and the GET does not poison the cache for another tenant', async () => {
  const old = Buffer.from('checkpoint step 100\n');
  const moved = Buffer.from('checkpoint step 200 — uploaded while the worker fetched\n');
  // Tenant one's `latest` moves from step 100 to step 200 between the worker's HEAD and its GET (the API answers
  // each request truthfully, for the moment it resolves `latest`). Tenant two's job has the step-100 bytes.
  let heads = 0;
  const api = await fakeApi((path, method) => {
    if (path === '/v1/jobs/job_tenantone/artifacts/latest') {
      if (method === 'HEAD') heads++;
      return method === 'HEAD' ? { sha: sha256(old), body: old } : { sha: sha256(moved), body: moved };
    }
    if (path === '/v1/jobs/job_tenanttwo/artifacts/latest') return { sha: sha256(old), body: old };
    return undefined;
  });
  try {
    const cache = new InputCache(join(work, 'race'), { url: api.url, token: 'worker' }, 1024 ** 3);
    // The first fetch is refused (what came is not what the HEAD announced) or holds the bytes it really got.
    const first = await cache.artifact('job_tenantone', 'latest').then(
      (dir) => ({ dir }),
      (err: unknown) => ({ err }),
    );
    expect(heads).toBe(1);
    if ('dir' in first) expect(Object.values(tree(first.dir))).toEqual([moved.toString()]);
    else expect(String(first.err)).toMatch(/changed while it was fetched/);
    // Tenant two asks for the step-100 bytes and must get them, not tenant one's step 200.
    const second = await cache.artifact('job_tenanttwo', 'latest');
    expect(Object.values(tree(second))).toEqual([old.toString()]);
  } finally {
    await api.close();
  }
});

/** A folder as the API's tar has it (files only, in the order given, under the folder's name) and the API's sha256
 * of it: each file's path inside the folder and sha256, in that order. */
function folderTar(folder: string, files: Record<string, string>): { sha: string; body: Buffer } {
  const dir = mkdtempSync(join(work, 'tar-'));
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, folder, name)), { recursive: true });
    writeFileSync(join(dir, folder, name), text);
  }
  const names = Object.keys(files);
  const body = execFileSync('tar', ['-cf', '-', '-C', dir, ...names.map((n) => `${folder}/${n}`)]);
  return { sha: sha256(names.map((n) => `${n} ${sha256(files[n]!)}\n`).join('')), body };
}

test('a body that does not hash to what the API announced is refused, a file or a folder', async () => {
  const real = Buffer.from('the checkpoint the API has\n');
  const v1 = folderTar('model', { 'config.json': '{"layers": 2}\n', 'weights.bin': 'step 100' });
  const v2 = folderTar('model', { 'config.json': '{"layers": 2}\n', 'weights.bin': 'step 200' });
  // Answers whose header says one thing and whose bytes are another (a torn or tampered answer): no header is
  // taken on trust, each is checked against the bytes that came.
  const api = await fakeApi((path) => {
    if (path === '/v1/jobs/job_liar/artifacts/model.pt') return { sha: sha256(real), body: Buffer.from('other bytes') };
    if (path === '/v1/jobs/job_liar/artifacts/model') return { sha: v1.sha, body: v2.body, tar: true };
    if (path === '/v1/jobs/job_honest/artifacts/model.pt') return { sha: sha256(real), body: real };
    if (path === '/v1/jobs/job_honest/artifacts/model') return { sha: v1.sha, body: v1.body, tar: true };
    return undefined;
  });
  try {
    const cache = new InputCache(join(work, 'liars'), { url: api.url, token: 'worker' }, 1024 ** 3);
    const lied = await Promise.allSettled([
      cache.artifact('job_liar', 'model.pt'),
      cache.artifact('job_liar', 'model'),
    ]);
    // Refused, or at least never the bytes the header named.
    for (const r of lied) {
      if (r.status === 'rejected') expect(String(r.reason)).toMatch(/changed while it was fetched/);
      else expect(Object.values(tree(r.value))).not.toContain(real.toString());
    }
    expect(lied.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(tree(await cache.artifact('job_honest', 'model.pt'))).toEqual({ 'model.pt': real.toString() });
    // A folder artifact is mounted as its own files (/init/config.json), a file under its name (/init/model.pt).
    expect(tree(await cache.artifact('job_honest', 'model'))).toEqual({
      'config.json': '{"layers": 2}\n',
      'weights.bin': 'step 100',
    });
  } finally {
    await api.close();
  }
});

test('one content under two names is cached once per name', async () => {
  const bytes = Buffer.from('the same weights\n');
  const api = await fakeApi((path) =>
    path === '/v1/jobs/job_a/artifacts/model.pt' || path === '/v1/jobs/job_b/artifacts/best.pt'
      ? { sha: sha256(bytes), body: bytes }
      : undefined,
  );
  try {
    const cache = new InputCache(join(work, 'names'), { url: api.url, token: 'worker' }, 1024 ** 3);
    expect(tree(await cache.artifact('job_a', 'model.pt'))).toEqual({ 'model.pt': bytes.toString() });
    expect(tree(await cache.artifact('job_b', 'best.pt'))).toEqual({ 'best.pt': bytes.toString() });
  } finally {
    await api.close();
  }
});

test('concurrent fetches of one input are one download', async () => {
  const bytes = Buffer.from('a large checkpoint, in spirit\n');
  const api = await fakeApi((path) =>
    path === '/v1/jobs/job_c/artifacts/model.pt' ? { sha: sha256(bytes), body: bytes } : undefined,
  );
  try {
    const cache = new InputCache(join(work, 'crowd'), { url: api.url, token: 'worker' }, 1024 ** 3);
    const dirs = await Promise.all(Array.from({ length: 5 }, () => cache.artifact('job_c', 'model.pt')));
    expect(new Set(dirs).size).toBe(1);
    expect(tree(dirs[0]!)).toEqual({ 'model.pt': bytes.toString() });
    expect(api.gets).toEqual(['/v1/jobs/job_c/artifacts/model.pt']);
    // And a later fetch is served from the cache.
    await cache.artifact('job_c', 'model.pt');
    expect(api.gets).toHaveLength(1);
  } finally {
    await api.close();
  }
});

test('a dataset pushed twice with different file names is not served from the wrong cache entry', async () => {
  const corpus = Buffer.from('The first sentence.\nThe second one.\n\nA new document.\n');
  const push = async (filename: string): Promise<Dataset> => {
    const res = await stack.alice.fetch(
      `/v1/datasets?${new URLSearchParams({ name: `corpus as ${filename}`, format: 'corpus', filename })}`,
      { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: new Uint8Array(corpus) },
    );
    expect(res.status).toBe(201);
    return (await res.json()) as Dataset;
  };
  const train = await push('train.txt');
  const other = await push('wiki.txt');
  // The same upload: the API's record gives both one sha256.
  expect(other.sha256).toBe(train.sha256);
  const cache = new InputCache(join(work, 'datasets'), stack.workerApi, 1024 ** 3);
  expect(tree(await cache.dataset(train.id))).toEqual({ 'train.txt': corpus.toString() });
  expect(tree(await cache.dataset(other.id))).toEqual({ 'wiki.txt': corpus.toString() });
  // Fetched again (from the cache now), each still has its own name.
  expect(tree(await cache.dataset(train.id))).toEqual({ 'train.txt': corpus.toString() });
});

test('a mounted folder holds its entry in the cache until released, then the entry may be evicted', async () => {
  const small = folderTar('model', { 'weights.bin': 'a'.repeat(600) });
  const other = folderTar('model', { 'weights.bin': 'b'.repeat(600) });
  const api = await fakeApi((path) => {
    if (path === '/v1/jobs/job_a/artifacts/model') return { ...small, tar: true };
    if (path === '/v1/jobs/job_b/artifacts/model') return { ...other, tar: true };
    if (path === '/v1/jobs/job_c/artifacts/model')
      return { ...folderTar('model', { 'w.bin': 'c'.repeat(600) }), tar: true };
    return undefined;
  });
  try {
    // Room for one entry: each new one evicts every entry not in use.
    const root = join(work, 'evict');
    const cache = new InputCache(root, { url: api.url, token: 'worker' }, 1000);
    const a = await cache.artifact('job_a', 'model');
    const b = await cache.artifact('job_b', 'model');
    // a is in use (mounted by a running attempt): b's arrival leaves it.
    expect(tree(a)).toEqual({ 'weights.bin': 'a'.repeat(600) });
    cache.release(a);
    cache.release(b);
    await cache.artifact('job_c', 'model');
    // Released by the folder it mounted, both entries could go.
    expect(readdirSync(root).filter((n) => !n.startsWith('.'))).toHaveLength(1);
  } finally {
    await api.close();
  }
});
