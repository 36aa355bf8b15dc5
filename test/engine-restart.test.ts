// The worker's Docker engine restarts under a running job, on an engine of the test's own (its own socket, data root
// and bridge; never the machine's main one). With live-restore the container runs on: the worker waits the engine
// out, follows the log again from where it was, and the job succeeds in its first attempt with every line once.
// Without it the container dies with the engine: the attempt is INFRA_ERROR saying so, and the retry succeeds.
import type { JobRecord } from '@berth/contracts';
import { startBareDockerd, type BareDockerd } from './support/bare-dockerd.js';
import { fixtureJob, startTestStack, submit, waitForEnd, type TestStack } from './support/stack.js';

let engine: BareDockerd;
let stack: TestStack;
beforeAll(async () => {
  engine = await startBareDockerd(['berth/fixture:dev'], {
    daemonConfig: { 'live-restore': true },
    bridgeCidr: '10.214.0.1/24',
  });
  stack = await startTestStack('engine-restart', { engine: engine.docker });
}, 120_000);
afterAll(async () => {
  await stack?.close();
  await engine?.stop();
});

// The shell stops at once on SIGTERM (as a trainer that checkpoints does, with an exit code of its own).
const ticks = (n: number) =>
  fixtureJob([
    'sh',
    '-c',
    `trap 'exit 143' TERM; i=1; while [ $i -le ${n} ]; do echo tick $i; i=$((i+1)); sleep 0.1; done`,
  ]);
const expected = (n: number) => Array.from({ length: n }, (_, i) => `tick ${i + 1}`);
const logOf = async (id: string, attempt?: number) =>
  (await (await stack.alice.fetch(`/v1/jobs/${id}/logs${attempt ? `?attempt=${attempt}` : ''}`)).text())
    .split('\n')
    .filter(Boolean);

async function untilTicking(id: string): Promise<void> {
  for (let i = 0; i < 300 && (await logOf(id)).length < 10; i++) await new Promise((r) => setTimeout(r, 50));
  const job = (await (await stack.alice.fetch(`/v1/jobs/${id}`)).json()) as JobRecord;
  expect(job.state).toBe('running');
}

test('with live-restore a dockerd restart leaves the job running: one attempt, every line once, in order', async () => {
  const { body } = await submit(stack.alice, ticks(100));
  await untilTicking(body.id);
  await engine.restart({ awayMs: 1500 });
  const done = await waitForEnd(stack.alice, body.id, 60_000);
  expect([done.state, done.attempt, done.reason]).toEqual(['succeeded', 1, undefined]);
  expect(await logOf(body.id)).toEqual(expected(100));
}, 120_000);

test('without live-restore the container dies with the engine: INFRA_ERROR that says so, and the retry succeeds', async () => {
  await engine.restart({ daemonConfig: {} });
  const { body } = await submit(stack.alice, ticks(60));
  await untilTicking(body.id);
  await engine.restart({ awayMs: 500 });
  const done = await waitForEnd(stack.alice, body.id, 60_000);
  expect([done.state, done.attempt]).toEqual(['succeeded', 2]);
  expect(done.attempts[0]).toMatchObject({ reason: 'INFRA_ERROR', message: expect.stringMatching(/live-restore/) });
  expect(await logOf(body.id, 2)).toEqual(expected(60));
}, 120_000);
