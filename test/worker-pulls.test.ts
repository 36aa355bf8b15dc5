// Pulls as jobs see them, through a real engine and a local v2 registry: progress as job events, a missing image
// failing in seconds without a retry, a failing registry retried as new attempts, the NGC key used and never shown.
import { randomBytes } from 'node:crypto';
import { ImagePuller, ngcCredential } from '../apps/worker/src/executor/image-puller.js';
import { FakeRegistry } from './support/fake-registry.js';
import { docker, startTestStack, submit, waitForEnd, type TestStack } from './support/stack.js';

const run = randomBytes(3).toString('hex');
const key = `nvapi-${randomBytes(12).toString('hex')}`;
let open: FakeRegistry;
let secured: FakeRegistry;
let stack: TestStack;
const pulled: string[] = [];

beforeAll(async () => {
  [open, secured] = await Promise.all([
    FakeRegistry.start(),
    FakeRegistry.start({ basicAuth: { username: '$oauthtoken', password: key } }),
  ]);
  // The secured registry stands in for nvcr.io: the worker's NGC credential is configured for its host.
  const credential = ngcCredential({ key, registry: secured.host })!;
  stack = await startTestStack('pulls', {
    images: new ImagePuller(docker, { attempts: 1, progressIntervalMs: 0, credentials: [credential] }),
    retry: { infraRetries: 2, backoffMs: 0 },
  });
});

afterAll(async () => {
  await stack?.close();
  for (const image of pulled)
    await docker
      .getImage(image)
      .remove()
      .catch(() => {});
  await Promise.all([open?.close(), secured?.close()]);
});

function imageJob(image: string) {
  pulled.push(image);
  return { manifest: 'custom', params: { image, command: ['echo', 'pulled and ran'] } };
}

async function events(id: string): Promise<{ type: string; data: Record<string, unknown> }[]> {
  return ((await (await stack.alice.fetch(`/v1/jobs/${id}/events`)).json()) as { events: never[] }).events;
}

test('a job whose image is missing pulls it first and records the pull progress as events', async () => {
  const { body } = await submit(stack.alice, imageJob(`${open.host}/berth-wp-${run}/ok:v1`));
  const job = await waitForEnd(stack.alice, body.id, 30_000);
  expect(job).toMatchObject({ state: 'succeeded', attempt: 1 });
  expect(job.history.map((h) => h.state)).toEqual([
    'queued',
    'pulling',
    'starting',
    'running',
    'uploading',
    'succeeded',
  ]);
  const seen = await events(body.id);
  const progress = seen.filter((e) => e.type === 'pull-progress').map((e) => e.data);
  expect(progress.length).toBeGreaterThan(0);
  expect(progress.at(-1)).toMatchObject({ layers: 1, layersDone: 1 });
  expect(progress.at(-1)!.bytesDone).toBeGreaterThan(0);
  expect(seen.map((e) => e.type)).toContain('pull-done');
});

test('an image the registry does not have fails in seconds as IMAGE_PULL_FAILED, not retried', async () => {
  const image = `${open.host}/berth-wp-${run}/absent:v1`;
  open.script(`berth-wp-${run}/absent`, { manifestStatus: 404 });
  const t0 = Date.now();
  const { body } = await submit(stack.alice, imageJob(image));
  const job = await waitForEnd(stack.alice, body.id, 30_000);
  expect(Date.now() - t0).toBeLessThan(5000);
  expect(job).toMatchObject({ state: 'failed', reason: 'IMAGE_PULL_FAILED', attempt: 1 });
  expect(job.message).toContain(image);
  expect(job.attempts).toHaveLength(1);
});

test('a registry that keeps failing (5xx) is an infrastructure failure: retried as new attempts, then INFRA_ERROR', async () => {
  open.script(`berth-wp-${run}/flaky`, { manifestStatus: 500 });
  const { body } = await submit(stack.alice, imageJob(`${open.host}/berth-wp-${run}/flaky:v1`));
  const job = await waitForEnd(stack.alice, body.id, 30_000);
  expect(job).toMatchObject({ state: 'failed', reason: 'INFRA_ERROR', attempt: 3 });
  expect(job.attempts.map((a) => a.reason)).toEqual(['INFRA_ERROR', 'INFRA_ERROR', 'INFRA_ERROR']);
  expect((await events(body.id)).filter((e) => e.type === 'retry')).toHaveLength(2);
});

test('an NGC-style registry is pulled with the worker key as $oauthtoken; the key shows up nowhere', async () => {
  const { body } = await submit(stack.alice, imageJob(`${secured.host}/berth-wp-${run}/private:v1`));
  const job = await waitForEnd(stack.alice, body.id, 30_000);
  expect(job).toMatchObject({ state: 'succeeded' });
  const basic = `Basic ${Buffer.from(`$oauthtoken:${key}`).toString('base64')}`;
  expect(secured.requestsFor(`berth-wp-${run}/private`).some((r) => r.headers.authorization === basic)).toBe(true);
  for (const path of [`/v1/jobs/${body.id}`, `/v1/jobs/${body.id}/events`, `/v1/jobs/${body.id}/logs`, '/v1/workers']) {
    expect(await (await stack.alice.fetch(`${path}`)).text()).not.toContain(key);
  }
  expect(secured.requests.every((r) => !r.url.includes(key))).toBe(true);
});
