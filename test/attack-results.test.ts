// Attacks through /results on the real engine: a job that swaps a checkpoint folder for a link to the host's secrets
// while the worker scans, and jobs that try to fill the host's disk with many files or one huge sparse file.
import type { Artifact } from '@berth/contracts';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixtureJob, startTestStack, submit, waitForEnd, type TestStack } from './support/stack.js';

let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack('attack-results', { resultsBudget: { maxBytes: 64 * 1024 ** 2, maxFiles: 2_000 } });
});
afterAll(async () => stack.close());

async function artifacts(id: string): Promise<Artifact[]> {
  return ((await (await stack.alice.fetch(`/v1/jobs/${id}/artifacts`)).json()) as { artifacts: Artifact[] }).artifacts;
}

test('a job swapping checkpoints/step-1 for a link to a host folder never gets a host file back', async () => {
  // Stands for the worker's data dir: the admin token, the worker token, the NGC key, …
  const secrets = mkdtempSync(join(tmpdir(), 'berth-host-secrets-'));
  const names = Array.from({ length: 20 }, (_, i) => `secret-${i}`);
  for (const name of names) writeFileSync(join(secrets, name), 'HOST-SECRET\n');
  // The job's decoy folder has the same names, so each listing of it gives the worker twenty opens to get wrong. The
  // link's target is a host path: the container cannot see it, but a worker that follows the link on the host can.
  // Each decoy is written aside and renamed in, so a scan never catches one half-written: any other content that
  // comes back can only be a host file.
  const decoy =
    `mkdir checkpoints/step-1; for n in ${names.join(' ')}; do ` +
    `echo decoy > .stage && mv .stage checkpoints/step-1/$n; done`;
  const swap =
    `cd /results && mkdir -p checkpoints && end=$(( $(date +%s) + 12 )); while [ $(date +%s) -lt $end ]; do ` +
    `rm -rf checkpoints/step-1; ${decoy}; rm -rf checkpoints/step-1; ln -s ${secrets} checkpoints/step-1; done; ` +
    `echo swapped`;
  const { status, body } = await submit(stack.alice, fixtureJob(['sh', '-c', swap]));
  expect(status).toBe(201);
  const job = await waitForEnd(stack.alice, body.id);
  expect(job.state).toBe('succeeded');
  const sent = (await artifacts(body.id)).filter((a) => a.path.startsWith('checkpoints/step-1/'));
  // The loop ends on the link, which the end-of-job upload skips: what went up during the run stays as it was sent.
  // Decoys went up (so the scans did run over the folder) and nothing else under their names.
  expect(sent.length).toBeGreaterThan(0);
  for (const a of sent) {
    const text = await (await stack.alice.fetch(`/v1/jobs/${body.id}/artifacts/${a.path}`)).text();
    expect(text).toBe('decoy\n');
  }
}, 60_000);

test('a job making more entries under /results than its budget is stopped with RESULTS_TOO_LARGE', async () => {
  const bomb = 'echo bombing; i=0; while [ $i -lt 3000 ]; do : > /results/f$i; i=$((i+1)); done; sleep 60';
  const { body } = await submit(stack.alice, fixtureJob(['sh', '-c', bomb]));
  const started = Date.now();
  const job = await waitForEnd(stack.alice, body.id);
  expect(job).toMatchObject({ state: 'failed', reason: 'RESULTS_TOO_LARGE' });
  expect(job.message).toMatch(/more than 2000 entries under \/results/);
  // Stopped at a scan, without the stop grace or the job's own sleep.
  expect(Date.now() - started).toBeLessThan(30_000);
  // The tree is gone from the host; the attempt's log still went up.
  expect(existsSync(join(stack.dataDir, 'results', body.id, 'a1'))).toBe(false);
  expect((await artifacts(body.id)).map((a) => a.path)).toEqual(['logs/attempt-1.log']);
}, 60_000);

test('a huge sparse file counts at its length: the job is stopped and nothing of it is uploaded', async () => {
  const sparse = 'truncate -s 1099511627776 /results/huge.bin && echo made && sleep 60';
  const { body } = await submit(stack.alice, fixtureJob(['sh', '-c', sparse]));
  const job = await waitForEnd(stack.alice, body.id);
  expect(job).toMatchObject({ state: 'failed', reason: 'RESULTS_TOO_LARGE' });
  expect(job.message).toMatch(/more than 67108864 bytes under \/results/);
  expect((await artifacts(body.id)).some((a) => a.path === 'huge.bin')).toBe(false);
}, 60_000);

test('FIFOs and hard links left in /results do not hang or leak the end-of-job upload', async () => {
  const odd =
    'mkfifo /results/pipe && echo x > /results/file && ln /results/file /results/hard && ' +
    'echo ok > /results/plain.txt && echo odd';
  const { body } = await submit(stack.alice, fixtureJob(['sh', '-c', odd]));
  const job = await waitForEnd(stack.alice, body.id);
  expect(job.state).toBe('succeeded');
  const paths = (await artifacts(body.id)).map((a) => a.path).sort();
  expect(paths).toEqual(['logs/attempt-1.log', 'plain.txt']);
}, 60_000);
