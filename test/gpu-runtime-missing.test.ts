// A GPU job on a host whose Docker engine has no NVIDIA Container Toolkit: a clear GPU_RUNTIME_MISSING, no retry.
import type { BerthWorker } from '../apps/worker/src/worker.js';
import { startBareDockerd, type BareDockerd } from './support/bare-dockerd.js';
import { fixtureJob, startTestStack, startTestWorker, submit, waitForEnd, type TestStack } from './support/stack.js';

let bare: BareDockerd;
let stack: TestStack;
let worker: BerthWorker;

beforeAll(async () => {
  bare = await startBareDockerd(['berth/fixture:dev']);
  stack = await startTestStack('no-toolkit', { worker: false });
  worker = startTestWorker(stack.prefix, {
    engine: bare.docker,
    api: stack.workerApi,
    workerId: 'no-toolkit',
    concurrency: 2,
    mode: 'slots',
    gpus: '2',
    retry: { infraRetries: 2, backoffMs: 0 },
  });
  await worker.ready;
}, 60_000);

afterAll(async () => {
  await worker?.close();
  await stack?.close();
  await bare?.stop();
});

test('the job fails as GPU_RUNTIME_MISSING with what to install, once; a CPU job on the same host still runs', async () => {
  const gpu = await submit(stack.alice, fixtureJob(['true'], { resources: { gpus: 1 } }));
  const job = await waitForEnd(stack.alice, gpu.body.id, 30_000);
  expect(job).toMatchObject({ state: 'failed', reason: 'GPU_RUNTIME_MISSING', attempt: 1 });
  expect(job.message).toContain('NVIDIA Container Toolkit');
  expect(job.message).not.toContain('could not select device driver');

  const cpu = await submit(stack.alice, fixtureJob(['echo', 'cpu is fine']));
  expect(await waitForEnd(stack.alice, cpu.body.id, 30_000)).toMatchObject({ state: 'succeeded' });
});
