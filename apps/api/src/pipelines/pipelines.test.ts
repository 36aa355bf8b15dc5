// The coordinator on real Redis with short retry times and no worker: a step refused for a passing reason waits and
// then gives up with the last error, a wrong step fails at once, and a cancel waits for a pass holding the pipeline.
import type { PipelineStep, User } from '@berth/contracts';
import { PipelineStore, redisReady } from '@berth/store';
import Fastify, { type FastifyInstance } from 'fastify';
import { testPrefix } from '../../../../test/support/env.js';
import { testApiConfig } from '../../../../test/support/stack.js';
import { submitJob } from '../jobs/job-service.js';
import { artifactsPlugin } from '../plugins/artifacts.js';
import { configPlugin } from '../plugins/config.js';
import { datasetsPlugin } from '../plugins/datasets.js';
import { storesPlugin } from '../plugins/stores.js';
import { workersPlugin } from '../plugins/workers.js';
import { Pipelines } from './pipelines.js';

/** The stores a coordinator uses, as the API makes them, without its routes or its own sweeping coordinator. */
let app: FastifyInstance;
let store: PipelineStore;
let owner: User;
let pipelines: Pipelines;

beforeAll(async () => {
  const config = testApiConfig(testPrefix('pipelines-unit'));
  app = Fastify();
  await app.register(configPlugin, { config });
  for (const plugin of [storesPlugin, workersPlugin, artifactsPlugin, datasetsPlugin]) await app.register(plugin);
  expect(await redisReady(app.redis, 5000)).toBe(true);
  store = new PipelineStore(app.redis, config.prefix);
  // No GPU may be asked for: every GPU step's submit is over the quota, for as long as the quota stays.
  owner = (await app.authStore.createUser('frank', 'member', { queuedJobs: null, gpus: 0 }))!;
  pipelines = new Pipelines(app, store, {
    retry: { firstDelayMs: 20, maxDelayMs: 40, giveUpAfterMs: 400 },
    cancelWaitMs: 5000,
  });
});
afterAll(async () => app.close());

const job = { manifest: 'custom', params: { image: 'berth/fixture:dev', command: ['true'] }, resources: {} };
const step = (name: string, extra: Partial<PipelineStep> = {}): PipelineStep => ({ name, ...job, ...extra });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('a step over its quota waits, saying why, then fails with the last error once it waited too long', async () => {
  const created = await pipelines.create({ name: 'quota', steps: [step('gpu', { resources: { gpus: 1 } })] }, owner.id);
  const error = 'QUOTA_EXCEEDED quota gpus is 0; you have 0 GPUs asked for by unfinished jobs';
  expect(created).toMatchObject({ state: 'running' });
  expect(created.steps[0]).toEqual({
    name: 'gpu',
    state: 'waiting',
    reason: `waiting to submit: ${error}, next try in 1 s`,
  });
  expect(Object.keys((await store.getWithRetries(created.id))!.retries)).toEqual(['gpu']);
  for (let i = 0; i < 100 && (await store.get(created.id))!.state === 'running'; i++) {
    await sleep(20);
    await pipelines.advance(created.id);
  }
  const done = (await store.getWithRetries(created.id))!;
  expect(done.pipeline.state).toBe('failed');
  expect(done.pipeline.steps[0]).toEqual({
    name: 'gpu',
    state: 'failed',
    reason: `could not submit, still after 1 s of tries: ${error}`,
  });
  expect(done.retries).toEqual({});
});

test('a step whose input does not exist fails at once', async () => {
  const missing = 'job_aaaaaaaaaaaaaaaaaaaa';
  const created = await pipelines.create(
    { name: 'wrong', steps: [step('from-nothing', { inputs: { initFrom: { job: missing } } })] },
    owner.id,
  );
  expect(created.state).toBe('failed');
  expect(created.steps[0]).toEqual({
    name: 'from-nothing',
    state: 'failed',
    reason: `could not submit: the job inputs do not exist (inputs.initFrom: no job ${missing})`,
  });
});

/** A pipeline whose first job stays queued (no worker runs here), so its second step waits for it. */
async function twoSteps(name: string) {
  const created = await pipelines.create(
    { name, steps: [step('first'), step('second', { dependsOn: ['first'] })] },
    owner.id,
  );
  expect(created.steps.map((s) => s.state)).toEqual(['queued', 'waiting']);
  return created;
}

/** What a coordinator pass does for the second step once the first succeeded: its job, under the step's key. */
async function submitSecond(pipelineId: string) {
  const { record } = await submitJob(app, job, owner, `pipeline:${pipelineId}:second`);
  return record;
}

test('a cancel waits for the pass holding the pipeline, and cancels the job that pass submitted', async () => {
  const created = await twoSteps('held');
  let cancelled: Promise<unknown> | undefined;
  const settled = { cancel: false };
  await store.withLock(created.id, async () => {
    cancelled = pipelines.cancel(created.id).then(() => (settled.cancel = true));
    await sleep(300);
    expect(settled.cancel).toBe(false);
    const p = (await store.get(created.id))!;
    const record = await submitSecond(p.id);
    Object.assign(p.steps[1]!, { job: record.id, state: record.state });
    await store.save(p);
  });
  await cancelled;
  const p = (await store.get(created.id))!;
  expect(p.state).toBe('cancelled');
  const jobs = await Promise.all(p.steps.map((s) => app.store.get(s.job!)));
  expect(jobs.map((j) => j?.state)).toEqual(['cancelled', 'cancelled']);
});

test('a cancel finds the job of a submit whose pass died before saving the pipeline', async () => {
  const created = await twoSteps('died');
  const record = await submitSecond(created.id);
  const p = await pipelines.cancel(created.id);
  expect(p.state).toBe('cancelled');
  expect(p.steps[1]).toEqual({ name: 'second', job: record.id, state: 'cancelled' });
  expect((await app.store.get(record.id))?.state).toBe('cancelled');
});
