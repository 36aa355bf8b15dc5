// Pipelines on the real engine: the domain-adapt template end to end on the CPU image (TensorRT skipped with the
// reason), a failed step skipping the steps after it, a cancelled pipeline cancelling its steps, steps that wait out
// a full quota or a missing GPU worker instead of failing, and cancels racing the coordinator's submits.
import { jobStates, terminalStates, type Dataset, type JobRecord, type Pipeline } from '@berth/contracts';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { BerthWorker } from '../apps/worker/src/worker.js';
import {
  addUser,
  fixtureJob,
  startTestStack,
  startTestWorker,
  submit,
  waitForEnd,
  type TestClient,
  type TestStack,
} from './support/stack.js';

const demo = resolve(__dirname, '../payloads/bert/demo/data');
let stack: TestStack;
// A worker with a GPU, started by the test that needs one to join late (the first test needs none to be live).
let gpuWorker: BerthWorker | undefined;
beforeAll(async () => {
  stack = await startTestStack('pipelines', { concurrency: 2 });
});
afterAll(async () => {
  await gpuWorker?.close();
  await stack.close();
});

async function dataset(body: Buffer, query: Record<string, string>): Promise<Dataset> {
  const res = await stack.alice.fetch(`/v1/datasets?${new URLSearchParams(query)}`, {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream' },
    body: new Uint8Array(body),
  });
  expect(res.status).toBe(201);
  return (await res.json()) as Dataset;
}

async function create(spec: unknown, client: TestClient = stack.alice): Promise<Pipeline> {
  const res = await client.fetch(`/v1/pipelines`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(spec),
  });
  const body = await res.json();
  expect([res.status, body.error]).toEqual([201, undefined]);
  return body as Pipeline;
}

async function settle(id: string, timeoutMs: number, client: TestClient = stack.alice): Promise<Pipeline> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const p = (await (await client.fetch(`/v1/pipelines/${id}`)).json()) as Pipeline;
    if (p.state !== 'running') return p;
    if (Date.now() > deadline) throw new Error(`pipeline still running: ${JSON.stringify(p.steps)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

test('domain-adapt runs pretrain → fine-tune → ONNX export on the CPU image; the TensorRT steps say why they were skipped', async () => {
  const corpus = await dataset(readFileSync(join(demo, 'corpus.txt')), {
    name: 'corpus',
    format: 'corpus',
    filename: 'corpus.txt',
  });
  const archive = join(mkdtempSync(join(tmpdir(), 'berth-pl-')), 'squad.tar');
  execFileSync('tar', ['-cf', archive, '-C', demo, 'train.json', 'dev.json']);
  const squad = await dataset(readFileSync(archive), { name: 'squad', format: 'squad' });

  const created = await create({
    template: 'domain-adapt',
    params: {
      corpus: corpus.id,
      squad: squad.id,
      modelConfig: 'tiny',
      pretrainSteps: 10,
      finetuneSteps: 6,
      gpus: 0,
    },
  });
  expect(created.steps.map((s) => s.name)).toEqual(['pretrain', 'finetune', 'export', 'trt-build', 'trt-perf']);
  const done = await settle(created.id, 400_000);
  expect(done.steps.map((s) => s.state)).toEqual(['succeeded', 'succeeded', 'succeeded', 'skipped', 'skipped']);
  expect(done.state).toBe('succeeded');
  expect(done.steps[3]).toMatchObject({
    skip: 'not-applicable',
    reason: expect.stringContaining('no live worker has a GPU'),
  });
  expect(done.steps[4]).toMatchObject({ skip: 'not-applicable', reason: 'step trt-build was skipped' });

  // The fine-tune started from the pretraining's model, and the export from the fine-tune's.
  const finetune = await (await stack.alice.fetch(`/v1/jobs/${done.steps[1]!.job}`)).json();
  expect(finetune.spec.inputs.initFrom).toEqual({ job: done.steps[0]!.job, artifact: 'model' });
  const exported = (await (await stack.alice.fetch(`/v1/jobs/${done.steps[2]!.job}/artifacts`)).json()) as {
    artifacts: { path: string; kind: string }[];
  };
  expect(exported.artifacts).toEqual(expect.arrayContaining([expect.objectContaining({ path: 'model.onnx' })]));
}, 420_000);

test('a failed step skips the steps after it, with the reason; the pipeline fails', async () => {
  const created = await create({
    name: 'breaks',
    steps: [
      { name: 'first', ...fixtureJob(['sh', '-c', 'echo nope; exit 2']) },
      { name: 'second', ...fixtureJob(['true']), dependsOn: ['first'] },
      { name: 'third', ...fixtureJob(['true']), dependsOn: ['second'] },
    ],
  });
  const done = await settle(created.id, 60_000);
  expect(done.state).toBe('failed');
  expect(done.steps.map((s) => [s.name, s.state, s.skip, s.reason])).toEqual([
    ['first', 'failed', undefined, undefined],
    ['second', 'skipped', 'after-failure', 'step first did not succeed (failed)'],
    ['third', 'skipped', 'after-failure', 'step second did not succeed (skipped)'],
  ]);
});

test('cancelling a pipeline cancels its running step and the ones waiting', async () => {
  const created = await create({
    name: 'long',
    steps: [
      { name: 'slow', ...fixtureJob(['sleep', '60']) },
      { name: 'after', ...fixtureJob(['true']), dependsOn: ['slow'] },
    ],
  });
  for (let i = 0; i < 100; i++) {
    const p = (await (await stack.alice.fetch(`/v1/pipelines/${created.id}`)).json()) as Pipeline;
    if (p.steps[0]!.state === 'running') break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const res = await stack.alice.fetch(`/v1/pipelines/${created.id}/cancel`, { method: 'POST' });
  expect(((await res.json()) as Pipeline).state).toBe('cancelled');
  const job = await (await stack.alice.fetch(`/v1/jobs/${created.steps[0]!.job ?? ''}`)).json();
  expect(job.id).toBeDefined();
  for (let i = 0; i < 100; i++) {
    const j = await (await stack.alice.fetch(`/v1/jobs/${job.id}`)).json();
    if (j.state === 'cancelled') break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const p = (await (await stack.alice.fetch(`/v1/pipelines/${created.id}`)).json()) as Pipeline;
  expect(p.steps[1]).toMatchObject({ state: 'cancelled', reason: 'the pipeline was cancelled' });
  expect((await (await stack.alice.fetch(`/v1/jobs/${job.id}`)).json()).state).toBe('cancelled');
});

async function startGpuWorker(): Promise<void> {
  if (gpuWorker) return;
  gpuWorker = startTestWorker(stack.prefix, {
    workerId: `w-${stack.prefix}-gpu`,
    gpus: '1',
    concurrency: 2,
    api: stack.workerApi,
  });
  await gpuWorker.ready;
  // A submit checks a job's size against the workers as seen within the last second: let that view include this one.
  await new Promise((r) => setTimeout(r, 1100));
}

/** The jobs of this user's that have not ended, as `id state step`. */
async function openJobs(client: TestClient): Promise<string[]> {
  const open: string[] = [];
  for (const state of jobStates.filter((s) => !terminalStates.has(s))) {
    const { jobs } = (await (await client.fetch(`/v1/jobs?state=${state}&limit=200`)).json()) as { jobs: JobRecord[] };
    open.push(...jobs.map((j) => `${j.id} ${j.state} ${j.spec.labels?.['berth.step']}`));
  }
  return open;
}

const waitingToSubmit = (code: string) => new RegExp(`^waiting to submit: ${code} .+, next try in \\d+ s$`);

test('a step no live worker is big enough for waits, saying why, and starts once a GPU worker joins', async () => {
  const created = await create({
    name: 'needs-a-gpu',
    steps: [
      {
        name: 'on-gpu',
        ...fixtureJob(['sh', '-c', 'echo "devices=$NVIDIA_VISIBLE_DEVICES"'], { resources: { gpus: 1 } }),
      },
    ],
  });
  // Only the CPU worker is live: the submit is refused for now, and the step says so instead of failing.
  expect(created.state).toBe('running');
  expect(created.steps[0]).toMatchObject({
    state: 'waiting',
    reason: expect.stringMatching(waitingToSubmit('RESOURCES_UNSATISFIABLE')),
  });
  expect(created.steps[0]!.reason).toContain('the job needs 1 GPUs; the largest live worker has 0');
  expect(created.steps[0]!.job).toBeUndefined();
  // Still waiting a few tries later.
  await new Promise((r) => setTimeout(r, 2500));
  const later = (await (await stack.alice.fetch(`/v1/pipelines/${created.id}`)).json()) as Pipeline;
  expect(later.steps[0]).toMatchObject({
    state: 'waiting',
    reason: expect.stringMatching(waitingToSubmit('RESOURCES_UNSATISFIABLE')),
  });

  await startGpuWorker();
  const done = await settle(created.id, 60_000);
  expect(done.state).toBe('succeeded');
  expect(done.steps[0]).toMatchObject({ state: 'succeeded', job: expect.any(String) });
  expect(done.steps[0]!.reason).toBeUndefined();
  const job = (await (await stack.alice.fetch(`/v1/jobs/${done.steps[0]!.job}`)).json()) as JobRecord;
  expect(job.attempts[0]!.gpus).toHaveLength(1);
});

test("a step whose submit is over its owner's GPU quota waits until their running job ends, then starts", async () => {
  await startGpuWorker();
  const dave = await addUser(stack.admin, 'dave', 'member', { gpus: 1 });
  const blocker = await submit(dave, fixtureJob(['sleep', '4'], { resources: { gpus: 1 } }));
  expect(blocker.status).toBe(201);
  const created = await create(
    { name: 'over-quota', steps: [{ name: 'after', ...fixtureJob(['true'], { resources: { gpus: 1 } }) }] },
    dave,
  );
  expect(created.steps[0]).toMatchObject({
    state: 'waiting',
    reason: expect.stringMatching(waitingToSubmit('QUOTA_EXCEEDED')),
  });
  expect(created.steps[0]!.reason).toContain('quota gpus is 1');
  const done = await settle(created.id, 60_000, dave);
  expect(done.state).toBe('succeeded');
  expect(done.steps[0]!.reason).toBeUndefined();
  // The step's job was recorded only after the blocking job had ended and given its GPU back.
  const ended = await waitForEnd(dave, blocker.body.id);
  expect(ended.state).toBe('succeeded');
  const step = (await (await dave.fetch(`/v1/jobs/${done.steps[0]!.job}`)).json()) as JobRecord;
  expect(Date.parse(step.createdAt)).toBeGreaterThanOrEqual(Date.parse(ended.finishedAt!));
});

test("cancels racing the coordinator as it submits a pipeline's next steps leave no step job running", async () => {
  const erin = await addUser(stack.admin, 'erin', 'member');
  const answered: string[] = [];
  const pipelines: string[] = [];
  let open: string[] = [];
  for (let round = 0; round < 12; round++) {
    const created = await create(
      {
        name: `race-${round}`,
        steps: [
          { name: 'first', ...fixtureJob(['true']) },
          ...Array.from({ length: 24 }, (_, i) => ({
            name: `s${i}`,
            ...fixtureJob(['sleep', '60']),
            dependsOn: ['first'],
          })),
        ],
      },
      erin,
    );
    pipelines.push(created.id);
    await waitForEnd(erin, created.steps[0]!.job!);
    // The coordinator submits the other steps at its next sweep after the first job ended: spread the cancels
    // over the time between sweeps, so some land while it is submitting.
    await new Promise((r) => setTimeout(r, (round * 97) % 500));
    const res = await erin.fetch(`/v1/pipelines/${created.id}/cancel`, { method: 'POST' });
    answered.push(((await res.json()) as Pipeline).state);
    // Every job of the pipeline ends (cancelled, or the first step's success) within the worker's stop grace.
    const deadline = Date.now() + 15_000;
    while ((open = await openJobs(erin)).length > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 250));
    }
    if (open.length > 0) break;
  }
  expect({ answered, open }).toEqual({ answered: Array(12).fill('cancelled'), open: [] });
  // A step the coordinator submitted names its job; the others say they were cancelled.
  for (const id of pipelines) {
    const p = (await (await erin.fetch(`/v1/pipelines/${id}`)).json()) as Pipeline;
    expect(p.state).toBe('cancelled');
    for (const step of p.steps.slice(1)) {
      if (!step.job) expect(step).toMatchObject({ state: 'cancelled', reason: 'the pipeline was cancelled' });
    }
  }
}, 180_000);
