// The worker tests start is assembled as main.ts assembles it (assemble.ts): the settings of its config reach every
// container it launches, so a wiring slip between config and runtime fails here.
import { fixtureJob, jobContainer, startTestStack, submit, waitForEnd, type TestStack } from './support/stack.js';

let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack('assembly', {
    config: {
      jobDefaults: { memory: '300m', cpus: 0.5, network: 'bridge' },
      containerLog: { maxSize: '10m', maxFiles: 2 },
    },
  });
});
afterAll(async () => stack?.close());

test("a job that sets no limits gets the config's defaults, and the engine rotates its log as configured", async () => {
  const { body } = await submit(stack.alice, fixtureJob(['sleep', '3']));
  const info = await jobContainer(body.id);
  // The job ends before anything is checked: a failed check must not leave its attempt running under close().
  const job = await waitForEnd(stack.alice, body.id);
  expect(info.HostConfig.Memory).toBe(300 * 1024 ** 2);
  expect(info.HostConfig.NanoCpus).toBe(500_000_000);
  expect(info.HostConfig.LogConfig).toEqual({ Type: 'json-file', Config: { 'max-size': '10m', 'max-file': '2' } });
  expect(job.state).toBe('succeeded');
});
