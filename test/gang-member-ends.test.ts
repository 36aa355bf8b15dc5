// A member of a multi-node job says on the job how it ended even when its container never ran: stopped while its
// image was still pulling (a large NGC image on a fresh host), it used to leave no end at all, so the job's
// members list showed it with no state for ever.
import type { Dataset, JobRecord } from '@berth/contracts';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ImageSource } from '../apps/worker/src/executor/container-runtime.js';
import type { BerthWorker } from '../apps/worker/src/worker.js';
import {
  startTestStack,
  startTestWorker,
  submit,
  uploadDemoCorpus,
  waitForEnd,
  type TestStack,
} from './support/stack.js';

// A registry that never finishes sending the image: the pull ends only when berth aborts it. No real registry is
// reachable here, and the recipe's image is already on this engine, so nothing would be pulled at all.
const pulls: string[] = [];
const stalled: ImageSource = {
  ensure: (image, _progress, signal) => {
    pulls.push(image);
    return new Promise((_resolve, reject) => {
      const abort = () => reject(Object.assign(new Error('the pull was aborted'), { name: 'AbortError' }));
      if (signal?.aborted) abort();
      else signal?.addEventListener('abort', abort, { once: true });
    });
  },
};

let stack: TestStack;
let second: BerthWorker;
let corpus: Dataset;
beforeAll(async () => {
  stack = await startTestStack('gang-ends', { gangReservationMs: 5000, images: stalled });
  second = startTestWorker(stack.prefix, {
    workerId: `w2-${stack.prefix}`,
    api: stack.workerApi,
    dataDir: join(tmpdir(), 'berth-test-data', `${stack.prefix}-w2`),
    gangReservationMs: 5000,
    images: stalled,
  });
  await second.ready;
  corpus = await uploadDemoCorpus(stack.alice);
});
afterAll(async () => {
  await second?.close();
  await stack?.close();
});

test('a gang cancelled while its members pull: every member ends cancelled, none without a state', async () => {
  const { status, body } = await submit(stack.alice, {
    manifest: 'bert-pretrain',
    params: { train_file: 'corpus.txt', model_config: 'tiny', max_steps: 10, precision: 'fp32' },
    inputs: { dataset: corpus.id },
    resources: { gpus: 0, nodes: 2 },
  });
  expect(status).toBe(201);
  // Both members placed and pulling.
  for (let i = 0; i < 300 && pulls.length < 2; i++) await new Promise((r) => setTimeout(r, 100));
  expect(pulls).toEqual(['berth/bert-cpu:dev', 'berth/bert-cpu:dev']);
  expect((await stack.alice.fetch(`/v1/jobs/${body.id}/cancel`, { method: 'POST' })).status).toBe(202);
  const done = await waitForEnd(stack.alice, body.id, 60_000);
  expect(done.state).toBe('cancelled');
  // Each member notes its own end; rank 1's may come a moment after the head's record.
  let job: JobRecord = done;
  for (let i = 0; i < 100 && !job.attempts[0]?.members?.every((m) => m.state); i++) {
    await new Promise((r) => setTimeout(r, 100));
    job = (await (await stack.alice.fetch(`/v1/jobs/${body.id}`)).json()) as JobRecord;
  }
  expect(job.attempts[0]!.members!.map((m) => [m.rank, m.state, m.exitCode])).toEqual([
    [0, 'cancelled', undefined],
    [1, 'cancelled', undefined],
  ]);
}, 120_000);
