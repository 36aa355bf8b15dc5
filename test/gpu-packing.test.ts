// GPU packing on the real engine with the stand-in GPU hook: each container prints the devices it was given.
import type { JobRecord } from '@berth/contracts';
import { fixtureJob, startTestStack, submit, waitForEnd, type TestStack } from './support/stack.js';

const stacks: TestStack[] = [];
afterAll(async () => {
  for (const s of stacks) await s.close();
});

const seconds = (iso: string | undefined) => Date.parse(iso!) / 1000;

function printsDevices(sleep: number, gpus: number) {
  return fixtureJob(['sh', '-c', `echo "devices=$NVIDIA_VISIBLE_DEVICES"; sleep ${sleep}`], { resources: { gpus } });
}

test('50 mixed 1/2/4-GPU jobs on an 8-GPU worker: no device shared by overlapping containers, GPUs busy ≥ 85 %', async () => {
  const stack = await startTestStack('packing', { gpus: '8', mode: 'slots', concurrency: 8 });
  stacks.push(stack);
  // A fixed mix (deterministic): sizes cycle 1, 2, 4 with varied lengths of 2–4.5 s.
  const sizes = Array.from({ length: 50 }, (_, i) => [1, 2, 4, 1, 2][i % 5]!);
  const lengths = sizes.map((_, i) => 2 + ((i * 7) % 6) * 0.5);
  const submitted = [];
  for (const [i, gpus] of sizes.entries()) submitted.push(await submit(stack.alice, printsDevices(lengths[i]!, gpus)));
  const jobs: JobRecord[] = await Promise.all(submitted.map((s) => waitForEnd(stack.alice, s.body.id, 300_000)));
  expect(jobs.map((j) => j.state)).toEqual(Array(50).fill('succeeded'));

  // Every container saw exactly the GPUs its attempt was given, and as many as it asked for.
  for (const [i, job] of jobs.entries()) {
    const log = await (await stack.alice.fetch(`/v1/jobs/${job.id}/logs`)).text();
    const given = job.attempts[0]!.gpus;
    expect(given).toHaveLength(sizes[i]!);
    expect(log).toBe(`devices=${given.join(',')}\n`);
  }

  // Holding intervals: from placement (attempt start) to the recorded end, when the GPUs are released.
  const spans = jobs.map((j) => ({
    gpus: j.attempts[0]!.gpus,
    from: seconds(j.attempts[0]!.startedAt),
    to: seconds(j.attempts[0]!.finishedAt),
    runFrom: seconds(j.startedAt),
  }));
  for (const [i, a] of spans.entries()) {
    for (const b of spans.slice(i + 1)) {
      const overlap = a.from < b.to && b.from < a.to;
      if (overlap) expect(a.gpus.filter((g) => b.gpus.includes(g))).toEqual([]);
    }
  }
  const start = Math.min(...spans.map((s) => s.from));
  const end = Math.max(...spans.map((s) => s.to));
  const held = spans.reduce((sum, s) => sum + s.gpus.length * (s.to - s.from), 0);
  const running = spans.reduce((sum, s) => sum + s.gpus.length * (s.to - s.runFrom), 0);
  const ideal = sizes.reduce((sum, g, i) => sum + g * lengths[i]!, 0) / 8;
  const busy = held / (8 * (end - start));
  console.log(
    `packing: makespan ${(end - start).toFixed(1)} s (ideal ${ideal.toFixed(1)} s), GPUs held ${(busy * 100).toFixed(1)} %, ` +
      `running ${((running / (8 * (end - start))) * 100).toFixed(1)} % of the makespan`,
  );
  expect(busy).toBeGreaterThanOrEqual(0.85);
}, 320_000);

test('a large job is not starved by a stream of small ones, and its wait says why', async () => {
  const stack = await startTestStack('starve', { gpus: '4', mode: 'slots', concurrency: 4, maxBypass: 2 });
  stacks.push(stack);
  const early = [];
  for (let i = 0; i < 3; i++) early.push(await submit(stack.alice, printsDevices(2, 1)));
  const big = await submit(stack.alice, printsDevices(0.5, 4));
  const small = [];
  for (let i = 0; i < 8; i++) small.push(await submit(stack.alice, printsDevices(1, 1)));

  const waiting = (await (await stack.alice.fetch(`/v1/jobs/${big.body.id}`)).json()) as JobRecord;
  expect(waiting.state).toBe('queued');
  expect(waiting.queue?.reason).toMatch(/^needs 4 GPUs; largest free block is [0-3] on /);
  const queue = (await (await stack.alice.fetch(`/v1/queue`)).json()) as { waiting: { id: string }[] };
  expect(queue.waiting[0]!.id).toBe(big.body.id);

  const bigDone = await waitForEnd(stack.alice, big.body.id, 60_000);
  const smallDone = await Promise.all(small.map((s) => waitForEnd(stack.alice, s.body.id, 60_000)));
  const startedBefore = smallDone.filter((j) => Date.parse(j.startedAt!) < Date.parse(bigDone.startedAt!));
  // At most maxBypass small jobs submitted after it started ahead of it.
  expect(startedBefore.length).toBeLessThanOrEqual(2);
  expect(bigDone.attempts[0]!.gpus).toEqual(['0', '1', '2', '3']);
  await Promise.all(early.map((e) => waitForEnd(stack.alice, e.body.id, 60_000)));
});

test('whole-host mode: every GPU job gets --gpus all, one at a time', async () => {
  const stack = await startTestStack('whole', { gpus: '2', mode: 'whole-host', concurrency: 4 });
  stacks.push(stack);
  const a = await submit(stack.alice, printsDevices(1, 1));
  const b = await submit(stack.alice, printsDevices(1, 2));
  const [ja, jb] = await Promise.all([waitForEnd(stack.alice, a.body.id), waitForEnd(stack.alice, b.body.id)]);
  for (const j of [ja, jb]) {
    expect(await (await stack.alice.fetch(`/v1/jobs/${j.id}/logs`)).text()).toBe('devices=all\n');
    expect(j.attempts[0]!.gpus).toEqual(['0', '1']);
  }
  const [first, second] = [ja, jb].sort((x, y) => Date.parse(x.startedAt!) - Date.parse(y.startedAt!));
  expect(Date.parse(second!.attempts[0]!.startedAt)).toBeGreaterThanOrEqual(Date.parse(first!.finishedAt!));
});
