// The filesystem store's download path: two reused buffers, the next chunk read while the last is written.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { FsArtifactStore } from './artifact-store.js';

let root: string;
const blob = randomBytes(3 * 1024 * 1024 + 12_345);
const store = () => new FsArtifactStore(root);

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'berth-store-'));
  mkdirSync(join(root, 'job_a'));
  writeFileSync(join(root, 'job_a', 'blob'), blob);
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A sink that keeps what it is given, copying each chunk (the sender reuses its buffers), slowly if asked. */
function sink(o: { delayMs?: number; failAfter?: number } = {}) {
  const chunks: Buffer[] = [];
  let bytes = 0;
  const out = new Writable({
    highWaterMark: 1,
    write(chunk: Buffer, _enc, done) {
      chunks.push(Buffer.from(chunk));
      bytes += chunk.length;
      if (o.failAfter !== undefined && bytes > o.failAfter) out.destroy();
      setTimeout(done, o.delayMs ?? 0);
    },
  });
  return { out, body: () => Buffer.concat(chunks) };
}

const openFds = () => readdirSync('/proc/self/fd').length;

test('sends the whole blob, then a range, byte for byte, and ends the stream', async () => {
  const whole = sink({ delayMs: 1 });
  let begun = 0;
  await store().send('job_a', 'blob', undefined, whole.out, () => begun++);
  expect(begun).toBe(1);
  expect(whole.out.writableEnded).toBe(true);
  expect(whole.body().equals(blob)).toBe(true);

  const part = sink();
  await store().send('job_a', 'blob', { start: 1_000_000, end: 2_500_000 }, part.out, () => {});
  expect(part.body().equals(blob.subarray(1_000_000, 2_500_001))).toBe(true);
});

test('a client that goes away mid-download: the send stops and the file is closed', async () => {
  const before = openFds();
  const cut = sink({ failAfter: 1_500_000 });
  await store().send('job_a', 'blob', undefined, cut.out, () => {});
  expect(cut.out.destroyed).toBe(true);
  expect(cut.body().length).toBeLessThan(blob.length);
  expect(openFds()).toBe(before);
});

test('a missing blob fails before begin; a blob shorter than the range destroys the stream', async () => {
  let begun = false;
  await expect(store().send('job_a', 'nope', undefined, sink().out, () => (begun = true))).rejects.toThrow(/ENOENT/);
  expect(begun).toBe(false);
  const short = sink();
  const errored = new Promise((resolve) => short.out.once('error', resolve));
  await store().send('job_a', 'blob', { start: 0, end: blob.length + 100 }, short.out, () => {});
  expect(String(await errored)).toMatch(/ended at/);
  expect(short.out.writableEnded).toBe(false);
});
