// A cancelled pretraining run continues where it stopped: cancel makes the trainer checkpoint and exit 75, and
// `resume` starts a new job whose /results already holds that checkpoint, so it resumes instead of starting over. A
// run stopped from outside (a host's SIGTERM) is retried by the recipe's own rule and resumes the same way.
import type { Dataset, JobRecord } from '@berth/contracts';
import { execFileSync } from 'node:child_process';
import { fixtureJob, startTestStack, submit, uploadDemoCorpus, waitForEnd, type TestStack } from './support/stack.js';

let stack: TestStack;
let corpus: Dataset;
beforeAll(async () => {
  stack = await startTestStack('resume');
  corpus = await uploadDemoCorpus(stack.alice);
});
afterAll(async () => stack?.close());

const logOf = async (id: string) => (await stack.alice.fetch(`/v1/jobs/${id}/logs`)).text();
/** The steps a log's DLLogger records logged, in order. */
const steps = (log: string) => [...log.matchAll(/"step": \[\d+, (\d+)\]/g)].map((m) => Number(m[1]));
/** Long enough that a stop at step 30 lands well before the end (about 0.1 s a step here), short enough to finish. */
const MAX_STEPS = 150;
const pretrain = {
  manifest: 'bert-pretrain',
  params: {
    train_file: 'corpus.txt',
    model_config: 'tiny',
    max_steps: MAX_STEPS,
    batch_size: 8,
    precision: 'fp32',
    log_every: 5,
    save_every: 10,
  },
  resources: { gpus: 0 },
};
/** Waits until the job's log has reached `step`; the highest step it logged. */
async function reached(id: string, step: number): Promise<number> {
  for (let i = 0; i < 600 && !steps(await logOf(id)).some((s) => s >= step); i++) {
    await new Promise((r) => setTimeout(r, 100));
  }
  return Math.max(...steps(await logOf(id)));
}
const resume = (id: string) => stack.alice.fetch(`/v1/jobs/${id}/resume`, { method: 'POST' });

test('a cancelled run resumes from its newest checkpoint as a new job, and goes on to the end', async () => {
  const { body: first } = await submit(stack.alice, { ...pretrain, inputs: { dataset: corpus.id } });
  await reached(first.id, 30);
  expect((await stack.alice.fetch(`/v1/jobs/${first.id}/cancel`, { method: 'POST' })).status).toBe(202);
  const cancelled = await waitForEnd(stack.alice, first.id, 120_000);
  // SIGTERM made the trainer save where it was and exit 75.
  expect(cancelled).toMatchObject({ state: 'cancelled', exitCode: 75 });
  const stoppedAt = Math.max(...steps(await logOf(first.id)));
  expect(stoppedAt).toBeLessThan(MAX_STEPS);

  const res = await resume(first.id);
  expect(res.status).toBe(201);
  const next = (await res.json()) as JobRecord;
  expect(next.spec.inputs?.resumeFrom).toBe(first.id);
  expect(next.spec.labels?.['berth.resume-of']).toBe(first.id);
  const done = await waitForEnd(stack.alice, next.id, 240_000);
  expect([done.state, done.reason]).toEqual(['succeeded', undefined]);
  const log = await logOf(next.id);
  expect(log).toMatch(/checkpoint: resumed from \S+ \(step \d+\)/);
  // It went on from where the first run saved, not from step 0, to the end.
  const resumedAt = Number(/\(step (\d+)\)/.exec(log)![1]);
  expect(resumedAt).toBeGreaterThanOrEqual(stoppedAt - 10);
  expect(steps(log)[0]).toBeGreaterThan(resumedAt);
  expect(steps(log).at(-1)).toBe(MAX_STEPS);

  // Only what can continue resumes: a job that succeeded, or one of a recipe that does not resume.
  const again = await resume(next.id);
  expect(again.status).toBe(409);
  expect((await again.json()).error.code).toBe('NOTHING_TO_RESUME');
  const { body: custom } = await submit(stack.alice, fixtureJob(['sh', '-c', 'exit 1']));
  await waitForEnd(stack.alice, custom.id);
  const refused = await resume(custom.id);
  expect(refused.status).toBe(409);
  expect((await refused.json()).error.message).toMatch(/does not resume from a checkpoint/);
}, 600_000);

test("a run stopped by the host's SIGTERM is retried by the recipe's rule, and attempt 2 resumes attempt 1's checkpoint", async () => {
  const { body } = await submit(stack.alice, { ...pretrain, inputs: { dataset: corpus.id } });
  await reached(body.id, 30);
  const running = (await (await stack.alice.fetch(`/v1/jobs/${body.id}`)).json()) as JobRecord;
  // Not berth's cancel: the engine signals the container, as a host being drained or preempted does.
  execFileSync('docker', ['kill', '--signal', 'TERM', running.container!]);
  const done = await waitForEnd(stack.alice, body.id, 300_000);
  expect([done.state, done.attempt]).toEqual(['succeeded', 2]);
  expect(done.attempts[0]).toMatchObject({ state: 'failed', reason: 'EXIT_NONZERO', exitCode: 75 });
  const first = await (await stack.alice.fetch(`/v1/jobs/${body.id}/logs?attempt=1`)).text();
  const second = await (await stack.alice.fetch(`/v1/jobs/${body.id}/logs?attempt=2`)).text();
  const stoppedAt = Math.max(...steps(first));
  expect(stoppedAt).toBeLessThan(MAX_STEPS);
  const resumedAt = Number(/checkpoint: resumed from \S+ \(step (\d+)\)/.exec(second)?.[1]);
  expect(resumedAt).toBeGreaterThanOrEqual(stoppedAt - 10);
  expect(steps(second)[0]).toBeGreaterThan(resumedAt);
  expect(steps(second).at(-1)).toBe(MAX_STEPS);
}, 600_000);
