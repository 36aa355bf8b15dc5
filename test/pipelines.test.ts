// Pipelines on the real engine: the domain-adapt template end to end on the CPU image (TensorRT skipped with the
// reason), a failed step skipping the steps after it, and a cancelled pipeline cancelling its steps.
import type { Dataset, Pipeline } from '@berth/contracts';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fixtureJob, startTestStack, type TestStack } from './support/stack.js';

const demo = resolve(__dirname, '../payloads/bert/demo/data');
let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack('pipelines', { concurrency: 2 });
});
afterAll(async () => stack.close());

async function dataset(body: Buffer, query: Record<string, string>): Promise<Dataset> {
  const res = await stack.alice.fetch(`/v1/datasets?${new URLSearchParams(query)}`, {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream' },
    body: new Uint8Array(body),
  });
  expect(res.status).toBe(201);
  return (await res.json()) as Dataset;
}

async function create(spec: unknown): Promise<Pipeline> {
  const res = await stack.alice.fetch(`/v1/pipelines`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(spec),
  });
  const body = await res.json();
  expect([res.status, body.error]).toEqual([201, undefined]);
  return body as Pipeline;
}

async function settle(id: string, timeoutMs: number): Promise<Pipeline> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const p = (await (await stack.alice.fetch(`/v1/pipelines/${id}`)).json()) as Pipeline;
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
