// A worker killed mid-job: the job's lock lapses, another worker takes it over and re-attaches to the same
// container (deterministic name) — no second container, no lost or repeated line.
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { testPrefix, testRedisUrl } from './support/env.js';
import { createdContainers, fixtureJob, startTestStack, submit, waitForEnd, type TestStack } from './support/stack.js';

const prefix = testPrefix('crash');
let stack: TestStack;
afterAll(async () => stack?.close());

test('a second delivery re-attaches to the running container instead of starting a twin', async () => {
  const since = Math.floor(Date.now() / 1000) - 1;
  stack = await startTestStack('crash', { prefix, worker: false });
  const doomed = spawn(process.execPath, [resolve(__dirname, '../apps/worker/dist/main.js')], {
    env: {
      ...process.env,
      REDIS_URL: testRedisUrl(),
      BERTH_PREFIX: prefix,
      BERTH_WORKER_ID: 'doomed',
      BERTH_WORKER_LOCK_MS: '2000',
      BERTH_DATA_DIR: '/tmp/berth-test-data/crash',
      LOG_LEVEL: 'silent',
    },
    stdio: 'ignore',
  });
  const { body } = await submit(
    stack.url,
    fixtureJob(['sh', '-c', 'i=1; while [ $i -le 80 ]; do echo tick $i; i=$((i+1)); sleep 0.1; done']),
  );

  // Kill the first worker once some lines are in.
  for (let i = 0; i < 200; i++) {
    const text = await (await fetch(`${stack.url}/v1/jobs/${body.id}/logs`)).text();
    if (text.includes('tick 5\n')) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  doomed.kill('SIGKILL');
  await new Promise((r) => doomed.once('exit', r));

  const rescuer = await startTestStack('crash', { prefix, lockMs: 2000 });
  const job = await waitForEnd(rescuer.url, body.id, 60_000);
  await rescuer.close();

  expect(job).toMatchObject({ state: 'succeeded', attempt: 1, exitCode: 0 });
  expect(job.worker).not.toBe('doomed');
  const text = await (await fetch(`${stack.url}/v1/jobs/${body.id}/logs`)).text();
  expect(text).toBe(Array.from({ length: 80 }, (_, i) => `tick ${i + 1}\n`).join(''));
  expect(await createdContainers(since, `berth.job=${body.id}`)).toEqual([body.id]);
});
