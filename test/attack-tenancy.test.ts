// Attacks across tenants and attempts, on the real API and real Redis: another member's job ids in the workers
// listing, a written-off attempt that keeps uploading, uploads after the job ended, open streams that outlive their
// token or signed URL, and more concurrent streams than a user may hold.
// A worker is played through the store's own classes (register, claim, transition) so that which attempt owns the
// job, and when it is written off, is exact rather than a race against a container.
import type { Artifact } from '@berth/contracts';
import { connectRedis, JobStore, Placement, WorkerRegistry, type Redis } from '@berth/store';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testRedisUrl } from './support/env.js';
import { fixtureJob, startTestStack, submit, type TestClient, type TestStack } from './support/stack.js';

let stack: TestStack;
let redis: Redis;
let apiDataDir: string;
const workerId = 'w-played';

beforeAll(async () => {
  apiDataDir = mkdtempSync(join(tmpdir(), 'berth-attack-tenancy-'));
  stack = await startTestStack('attack-tenancy', { worker: false, apiDataDir, apiConfig: { maxStreamsPerUser: 3 } });
  redis = connectRedis(testRedisUrl());
  await new WorkerRegistry(redis, stack.prefix).register({
    id: workerId,
    host: 'played',
    mode: 'slots',
    concurrency: 8,
    gpus: [],
    gpuSource: 'none',
    startedAt: new Date().toISOString(),
  });
});
afterAll(async () => {
  redis?.disconnect();
  await stack?.close();
});

/** Places queued jobs on the played worker and moves the placed one to `running`, as a worker would. */
async function runAs(jobId: string): Promise<number> {
  const claims = await new Placement(redis, stack.prefix).claim(
    { id: workerId, mode: 'slots', concurrency: 8, gpus: [] },
    { maxBypass: 10 },
  );
  const claim = claims.find((c) => c.jobId === jobId);
  if (!claim) throw new Error(`job ${jobId} was not placed`);
  const store = new JobStore(redis, stack.prefix);
  const owner = `${workerId}|${claim.attempt}`;
  for (const state of ['pulling', 'starting', 'running'] as const) {
    const t = await store.transition(
      jobId,
      state === 'pulling'
        ? { state, attempt: claim.attempt, worker: workerId, newAttempt: { worker: workerId, gpus: [] } }
        : { state },
      { owner },
    );
    if (typeof t === 'string') throw new Error(`${state}: ${t}`);
  }
  return claim.attempt;
}

/** The attempt is written off (its worker was lost): the job goes back to the queue, as the housekeeper does it. */
async function writeOff(jobId: string, attempt: number): Promise<void> {
  const t = await new JobStore(redis, stack.prefix).transition(
    jobId,
    { state: 'queued', reason: 'WORKER_LOST' },
    { owner: `${workerId}|${attempt}`, release: workerId, requeueAt: 0 },
  );
  if (typeof t === 'string') throw new Error(`write-off: ${t}`);
}

async function upload(jobId: string, path: string, attempt: number, body: string): Promise<Response> {
  return fetch(`${stack.url}/v1/jobs/${jobId}/artifacts/${path}`, {
    method: 'PUT',
    headers: {
      authorization: `Bearer ${stack.workerApi.token}`,
      'content-type': 'application/octet-stream',
      'x-berth-attempt': String(attempt),
      'x-berth-kind': path.startsWith('checkpoints/') ? 'checkpoint' : 'other',
    },
    body,
  });
}

const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const blobs = (jobId: string): string[] => {
  const dir = join(apiDataDir, 'artifacts', jobId);
  return existsSync(dir) ? readdirSync(dir) : [];
};
async function listed(client: TestClient, jobId: string): Promise<Artifact[]> {
  return ((await (await client.fetch(`/v1/jobs/${jobId}/artifacts`)).json()) as { artifacts: Artifact[] }).artifacts;
}

test("GET /v1/workers shows a member none of another member's running job ids", async () => {
  const { body: job } = await submit(stack.alice, fixtureJob(['true']));
  await runAs(job.id);
  const asBob = await (await stack.bob.fetch('/v1/workers')).text();
  const asAlice = await (await stack.alice.fetch('/v1/workers')).text();
  const asAdmin = await (await stack.admin.fetch('/v1/workers')).text();
  expect(asAlice).toContain(job.id);
  expect(asAdmin).toContain(job.id);
  expect(asBob).not.toContain(job.id);
  // The same walk over every other listing bob can call.
  for (const path of ['/v1/queue', '/v1/jobs', '/v1/jobs?state=running', '/v1/datasets', '/v1/pipelines']) {
    expect({ path, leaked: (await (await stack.bob.fetch(path)).text()).includes(job.id) }).toEqual({
      path,
      leaked: false,
    });
  }
});

test('a written-off attempt cannot upload: 409 ATTEMPT_FENCED, no blob, no index entry; latest stays current', async () => {
  const { body: job } = await submit(stack.alice, fixtureJob(['true']));
  const first = await runAs(job.id);
  expect((await upload(job.id, 'checkpoints/step-1/state.pt', first, 'first attempt, step 1')).status).toBe(201);
  await writeOff(job.id, first);

  // Written off and back in the queue: nothing the old attempt sends is taken.
  const queued = await upload(job.id, 'checkpoints/step-9/state.pt', first, 'stale while queued');
  expect(queued.status).toBe(409);
  expect(((await queued.json()) as { error: { code: string } }).error.code).toBe('ATTEMPT_FENCED');

  const second = await runAs(job.id);
  expect(second).toBe(first + 1);
  expect((await upload(job.id, 'checkpoints/step-2/state.pt', second, 'second attempt, step 2')).status).toBe(201);
  // The stale attempt races the live one with a higher step and with the live one's own path.
  const stale = await upload(job.id, 'checkpoints/step-50/state.pt', first, 'stale step 50');
  const overwrite = await upload(job.id, 'checkpoints/step-2/state.pt', first, 'stale overwrite');
  const future = await upload(job.id, 'checkpoints/step-60/state.pt', second + 1, 'an attempt that never was');
  expect([stale.status, overwrite.status, future.status]).toEqual([409, 409, 409]);

  const all = await listed(stack.alice, job.id);
  expect(all.map((a) => `${a.path}@${a.attempt}`)).toEqual([
    'checkpoints/step-1/state.pt@1',
    'checkpoints/step-2/state.pt@2',
  ]);
  // Nothing stale is left on disk either.
  const onDisk = blobs(job.id);
  for (const body of ['stale while queued', 'stale step 50', 'stale overwrite', 'an attempt that never was']) {
    expect(onDisk).not.toContain(sha(body));
  }
  // `latest` is the live attempt's newest checkpoint (step 2), not the first attempt's, whatever their steps.
  await upload(job.id, 'checkpoints/step-1/state.pt', second, 'second attempt, step 1');
  const latest = await stack.alice.fetch(`/v1/jobs/${job.id}/artifacts/latest/state.pt`);
  expect(latest.status).toBe(200);
  expect(await latest.text()).toBe('second attempt, step 2');
});

test('latest resolves within the current attempt only, not to an older attempt with a higher step', async () => {
  const { body: job } = await submit(stack.alice, fixtureJob(['true']));
  const first = await runAs(job.id);
  expect((await upload(job.id, 'checkpoints/step-7/state.pt', first, 'first attempt, step 7')).status).toBe(201);
  await writeOff(job.id, first);
  const second = await runAs(job.id);
  expect((await upload(job.id, 'checkpoints/step-3/state.pt', second, 'second attempt, step 3')).status).toBe(201);
  const latest = await stack.alice.fetch(`/v1/jobs/${job.id}/artifacts/latest/state.pt`);
  expect(await latest.text()).toBe('second attempt, step 3');
});

test('nothing is accepted after the job ended, not even from its last attempt', async () => {
  const { body: job } = await submit(stack.alice, fixtureJob(['true']));
  const attempt = await runAs(job.id);
  const store = new JobStore(redis, stack.prefix);
  const owner = `${workerId}|${attempt}`;
  expect(typeof (await store.transition(job.id, { state: 'uploading' }, { owner }))).not.toBe('string');
  // Uploading is still the attempt's to do.
  expect((await upload(job.id, 'predictions.json', attempt, '{"f1": 90}')).status).toBe(201);
  const ended = await store.transition(job.id, { state: 'succeeded' }, { owner, release: workerId });
  expect(typeof ended).not.toBe('string');
  const late = await upload(job.id, 'predictions.json', attempt, '{"f1": 100}');
  expect(late.status).toBe(409);
  expect(((await late.json()) as { error: { code: string } }).error.code).toBe('ATTEMPT_FENCED');
  const all = await listed(stack.alice, job.id);
  expect(all.map((a) => a.sha256)).toEqual([sha('{"f1": 90}')]);
  expect(blobs(job.id)).not.toContain(sha('{"f1": 100}'));
});

test('an attempt written off while its upload streams in is refused at the index write, and its blob is removed', async () => {
  const { body: job } = await submit(stack.alice, fixtureJob(['true']));
  const attempt = await runAs(job.id);
  const head = 'x'.repeat(64 * 1024);
  const tail = 'y'.repeat(64 * 1024);
  let finish: () => void = () => {};
  const body = new ReadableStream<Uint8Array>({
    async start(controller) {
      controller.enqueue(new TextEncoder().encode(head));
      await new Promise<void>((r) => (finish = r));
      controller.enqueue(new TextEncoder().encode(tail));
      controller.close();
    },
  });
  const answer = fetch(`${stack.url}/v1/jobs/${job.id}/artifacts/checkpoints/step-5/state.pt`, {
    method: 'PUT',
    headers: {
      authorization: `Bearer ${stack.workerApi.token}`,
      'content-type': 'application/octet-stream',
      'x-berth-attempt': String(attempt),
      'x-berth-kind': 'checkpoint',
    },
    body,
    duplex: 'half',
  } as RequestInit);
  // The API has taken the first part (it passed every check made before the body), then the attempt is written off.
  for (let i = 0; i < 100 && !existsSync(join(apiDataDir, 'artifacts', '.tmp')); i++) await tick(20);
  await tick(100);
  await writeOff(job.id, attempt);
  finish();
  const res = await answer;
  expect(res.status).toBe(409);
  expect(((await res.json()) as { error: { code: string } }).error.code).toBe('ATTEMPT_FENCED');
  expect(await listed(stack.alice, job.id)).toEqual([]);
  expect(blobs(job.id)).not.toContain(sha(head + tail));
});

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));
