// Twenty jobs at once: every one finishes and every one ran exactly one container (counted from the engine's events).
import { createdContainers, fixtureJob, startTestStack, submit, waitForEnd, type TestStack } from './support/stack.js';

let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack('twins', { concurrency: 8 });
});
afterAll(async () => stack.close());

test('20 jobs submitted at once all finish and none runs twice', async () => {
  const since = Math.floor(Date.now() / 1000) - 1;
  const submitted = await Promise.all(
    Array.from({ length: 20 }, (_, i) => submit(stack.alice, fixtureJob(['sh', '-c', `echo job ${i}`]))),
  );
  expect(submitted.map((s) => s.status)).toEqual(Array(20).fill(201));
  const ids = submitted.map((s) => s.body.id as string);
  expect(new Set(ids).size).toBe(20);

  const jobs = await Promise.all(ids.map((id) => waitForEnd(stack.alice, id, 120_000)));
  expect(jobs.map((j) => j.state)).toEqual(Array(20).fill('succeeded'));

  const created = await createdContainers(since, `berth.worker=${stack.workerId}`);
  expect(created.sort()).toEqual([...ids].sort());

  for (const [i, id] of ids.entries()) {
    expect(await (await stack.alice.fetch(`/v1/jobs/${id}/logs`)).text()).toBe(`job ${i}\n`);
  }
});
