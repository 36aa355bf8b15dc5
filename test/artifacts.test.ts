// Artifacts end to end on the real engine: a job's /results uploaded whole (checkpoints while it runs), downloads with
// Range/ETag/sha256, folders as tar, `latest`, retention, traversal attempts, and a full disk.
import type { Artifact, JobRecord } from '@berth/contracts';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { extract } from 'tar-stream';
import { Readable } from 'node:stream';
import { fixtureJob, startTestStack, submit, waitForEnd, type TestStack } from './support/stack.js';

let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack('artifacts');
});
afterAll(async () => stack.close());

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

async function list(id: string): Promise<Artifact[]> {
  return ((await (await stack.alice.fetch(`/v1/jobs/${id}/artifacts`)).json()) as { artifacts: Artifact[] }).artifacts;
}

// Five checkpoints written the trainer's way (temp folder renamed into place), a prediction file, a link to a host
// file, and 100 KiB of model weights.
const writer = [
  'for s in 1 2 3 4 5; do d=/results/checkpoints/.tmp-step-0000000$s; mkdir -p $d;',
  'echo "state $s" > $d/state.pt; echo "{\\"step\\": $s}" > $d/meta.json;',
  'mv $d /results/checkpoints/step-0000000$s; sleep 0.4; done;',
  'mkdir -p /results/model; head -c 102400 /dev/urandom > /results/model/weights.bin;',
  'echo "{\\"f1\\": 88}" > /results/predictions.json; ln -s /etc/passwd /results/model/passwd;',
  'ln -s /etc /results/etc; echo done',
].join(' ');

let job: JobRecord;
test('results are uploaded whole: checkpoints while running, the rest at the end; links are not followed', async () => {
  const { body } = await submit(stack.alice, fixtureJob(['sh', '-c', writer]));
  // While the job runs, early checkpoints are already downloadable.
  let early: Artifact[] = [];
  for (let i = 0; i < 100 && early.length === 0; i++) {
    early = (await list(body.id)).filter((a) => a.kind === 'checkpoint');
    if (early.length === 0) await new Promise((r) => setTimeout(r, 50));
  }
  expect(early.length).toBeGreaterThan(0);
  job = await waitForEnd(stack.alice, body.id);
  expect(job.state).toBe('succeeded');
  expect(job.history.map((h) => h.state)).toContain('uploading');
  const all = await list(body.id);
  const paths = all.map((a) => a.path);
  // Retention keeps the newest three checkpoints.
  expect(paths.filter((p) => p.startsWith('checkpoints/'))).toEqual([
    'checkpoints/step-00000003/meta.json',
    'checkpoints/step-00000003/state.pt',
    'checkpoints/step-00000004/meta.json',
    'checkpoints/step-00000004/state.pt',
    'checkpoints/step-00000005/meta.json',
    'checkpoints/step-00000005/state.pt',
  ]);
  expect(paths).toEqual(expect.arrayContaining(['model/weights.bin', 'predictions.json', 'logs/attempt-1.log']));
  expect(paths.some((p) => p.includes('passwd') || p.startsWith('etc/'))).toBe(false);
  expect(all.find((a) => a.path === 'logs/attempt-1.log')).toMatchObject({ kind: 'log' });
  const onDisk = execFileSync('cat', [join(stack.dataDir, 'results', body.id, 'a1', 'model', 'weights.bin')]);
  expect(all.find((a) => a.path === 'model/weights.bin')).toMatchObject({ size: 102400, sha256: sha(onDisk) });
}, 60_000);

test('a download carries its sha256 and ETag; a Range download cut midway resumes to the same bytes', async () => {
  const url = `/v1/jobs/${job.id}/artifacts/model/weights.bin`;
  const whole = await stack.alice.fetch(url);
  const bytes = Buffer.from(await whole.arrayBuffer());
  expect(whole.headers.get('x-berth-sha256')).toBe(sha(bytes));
  expect(whole.headers.get('etag')).toBe(`"${sha(bytes)}"`);
  expect(whole.headers.get('content-disposition')).toContain('filename="weights.bin"');
  expect(whole.headers.get('accept-ranges')).toBe('bytes');

  const head = await stack.alice.fetch(url, { method: 'HEAD' });
  expect(head.headers.get('content-length')).toBe('102400');
  expect((await stack.alice.fetch(url, { headers: { 'if-none-match': `"${sha(bytes)}"` } })).status).toBe(304);

  // A client that got 40,000 bytes before the connection dropped asks for the rest.
  const first = await stack.alice.fetch(url, { headers: { range: 'bytes=0-39999' } });
  expect(first.status).toBe(206);
  expect(first.headers.get('content-range')).toBe('bytes 0-39999/102400');
  const rest = await stack.alice.fetch(url, { headers: { range: 'bytes=40000-', 'if-range': `"${sha(bytes)}"` } });
  expect(rest.status).toBe(206);
  const joined = Buffer.concat([Buffer.from(await first.arrayBuffer()), Buffer.from(await rest.arrayBuffer())]);
  expect(sha(joined)).toBe(sha(bytes));
  const tail = await stack.alice.fetch(url, { headers: { range: 'bytes=-100' } });
  expect(Buffer.from(await tail.arrayBuffer())).toEqual(bytes.subarray(102300));
  const beyond = await stack.alice.fetch(url, { headers: { range: 'bytes=200000-' } });
  expect(beyond.status).toBe(416);
  expect(beyond.headers.get('content-range')).toBe('bytes */102400');
});

test('a folder comes as a tar, and `latest` is the newest checkpoint', async () => {
  const res = await stack.alice.fetch(`/v1/jobs/${job.id}/artifacts/latest`);
  expect(res.headers.get('content-type')).toBe('application/x-tar');
  const entries = new Map<string, string>();
  const ex = extract();
  ex.on('entry', (header, stream, next) => {
    let data = '';
    stream.on('data', (d: Buffer) => (data += d.toString()));
    stream.on('end', () => {
      entries.set(header.name, data);
      next();
    });
  });
  await new Promise<void>((resolve, reject) => {
    ex.on('finish', resolve);
    ex.on('error', reject);
    Readable.fromWeb(res.body as never).pipe(ex);
  });
  expect([...entries.keys()]).toEqual(['step-00000005/meta.json', 'step-00000005/state.pt']);
  expect(entries.get('step-00000005/state.pt')).toBe('state 5\n');
  const one = await stack.alice.fetch(`/v1/jobs/${job.id}/artifacts/latest/meta.json`);
  expect(await one.text()).toBe('{"step": 5}\n');
});

test('paths are looked up in the index only: traversal and encoded variants never reach a file', async () => {
  for (const path of [
    '../../../../etc/passwd',
    '..%2F..%2F..%2Fetc%2Fpasswd',
    '%2e%2e/%2e%2e/etc/passwd',
    'model/..%2F..%2F..%2Fetc%2Fpasswd',
    'model/passwd',
    'etc/passwd',
    '%2Fetc%2Fpasswd',
    'model%5C..%5C..%5Cetc%5Cpasswd',
  ]) {
    const res = await stack.alice.fetch(`/v1/jobs/${job.id}/artifacts/${path}`);
    expect([400, 404]).toContain(res.status);
    expect(await res.text()).not.toContain('root:');
  }
});

test('deleting a file or a folder removes it from the list and its bytes from the store', async () => {
  const res = await stack.alice.fetch(`/v1/jobs/${job.id}/artifacts/checkpoints/step-00000003`, { method: 'DELETE' });
  expect(await res.json()).toEqual({
    deleted: ['checkpoints/step-00000003/meta.json', 'checkpoints/step-00000003/state.pt'],
  });
  expect((await list(job.id)).some((a) => a.path.startsWith('checkpoints/step-00000003'))).toBe(false);
  expect((await stack.alice.fetch(`/v1/jobs/${job.id}/artifacts/checkpoints/step-00000003/state.pt`)).status).toBe(404);
});

test('a full disk during an upload: ARTIFACT_UPLOAD_FAILED, and no half file is listed or left behind', async () => {
  const mount = mkdtempSync(join(tmpdir(), 'berth-full-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mount]);
  const small = await startTestStack('artifacts-full', { apiDataDir: mount });
  try {
    mkdirSync(join(mount, 'artifacts'), { recursive: true });
    const { body } = await submit(
      small.alice,
      fixtureJob(['sh', '-c', 'echo small > /results/ok.txt; head -c 3000000 /dev/zero > /results/big.bin']),
    );
    const ended = await waitForEnd(small.alice, body.id, 30_000);
    expect(ended).toMatchObject({ state: 'failed', reason: 'ARTIFACT_UPLOAD_FAILED' });
    expect(ended.message).toContain('big.bin');
    const paths = (
      (await (await small.alice.fetch(`/v1/jobs/${body.id}/artifacts`)).json()) as { artifacts: Artifact[] }
    ).artifacts.map((a) => a.path);
    expect(paths).not.toContain('big.bin');
    expect(readdirSync(join(mount, 'artifacts', '.tmp'))).toEqual([]);
  } finally {
    await small.close();
    execFileSync('umount', [mount]);
    rmSync(mount, { recursive: true, force: true });
  }
}, 60_000);
