// The real trainer through berth: a short pretrain → SQuAD run of the CPU image, with DLLogger metrics in the log
// and a Hugging Face model folder in the attempt's /results on the host.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startTestStack, submit, waitForEnd, type TestStack } from './support/stack.js';

let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack('bert');
});
afterAll(async () => stack.close());

test('a short BERT demo job trains, reports F1 as a DLLogger line and leaves its model in /results', async () => {
  const { status, body } = await submit(stack.alice, {
    manifest: 'custom',
    params: {
      image: 'berth/bert-cpu:dev',
      command: ['python3', '-m', 'berth_bert', 'demo', '--pretrain-steps', '10', '--squad-epochs', '0.2'],
    },
  });
  expect(status).toBe(201);
  const job = await waitForEnd(stack.alice, body.id, 300_000);
  const log = await (await stack.alice.fetch(`/v1/jobs/${body.id}/logs`)).text();
  expect(job.state).toBe('succeeded');

  const dll = log
    .split('\n')
    .filter((l) => l.startsWith('DLLL '))
    .map((l) => JSON.parse(l.slice(5)));
  const losses = dll.filter((r) => r.type === 'LOG' && typeof r.data?.step_loss === 'number');
  expect(losses.length).toBeGreaterThan(0);
  const summary = dll.find((r) => r.type === 'LOG' && Array.isArray(r.step) && r.step.length === 0 && 'F1' in r.data);
  expect(summary.data.F1).toBeGreaterThanOrEqual(0);
  expect(summary.data.F1).toBeLessThanOrEqual(100);

  const model = join(stack.dataDir, 'results', body.id, 'a1', 'squad', 'model');
  for (const f of ['config.json', 'model.safetensors', 'vocab.txt']) expect(existsSync(join(model, f))).toBe(true);
  expect(JSON.parse(readFileSync(join(model, 'config.json'), 'utf8')).hidden_size).toBe(128);
}, 320_000);
