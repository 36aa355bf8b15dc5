import { readyAt, shadowOf, spares, type HostState } from './backfill.js';

/** A host of `gpus` GPUs running `jobs` (hold, GPUs it holds, bound or undefined), in slots mode unless told. */
function host(gpus: number, jobs: [string, number, number | undefined][], mode: HostState['mode'] = 'slots') {
  const uuids = Array.from({ length: gpus }, (_, i) => `g${i}`);
  const ledger: Record<string, string> = {};
  let next = 0;
  for (const [hold, n] of jobs) for (let i = 0; i < n; i++) ledger[uuids[next++]!] = hold;
  const endsBy = new Map(jobs.flatMap(([hold, , at]) => (at === undefined ? [] : [[hold, at] as const])));
  return { id: 'h', mode, concurrency: 4, gpus: uuids, ledger, holds: jobs.map(([h]) => h), endsBy };
}

test('a host has room now, when its jobs are bound to end, or never', () => {
  expect(readyAt(host(8, [['a#1', 4, 50]]), 4, 10)).toBe(10);
  // Room for 4 once the job bound to end first ends, and for 6 only once both have.
  expect(
    readyAt(
      host(8, [
        ['a#1', 4, 90],
        ['b#1', 2, 30],
      ]),
      4,
      10,
    ),
  ).toBe(30);
  expect(readyAt(host(8, [['a#1', 4, undefined]]), 6, 10)).toBe(Infinity);
  expect(readyAt(host(4, []), 8, 10)).toBe(Infinity);
  // Whole-host: every GPU must be free, and a CPU job (no GPUs) still takes a slot.
  expect(readyAt(host(8, [['a#1', 1, 70]], 'whole-host'), 1, 10)).toBe(70);
  expect(readyAt({ ...host(8, [['c#1', 0, 40]]), concurrency: 1 }, 2, 10)).toBe(40);
});

test("a gang's shadow is the time its last needed host is sure to have room", () => {
  expect(shadowOf(3, 1, [50, 20, Infinity])).toBe(50);
  expect(shadowOf(3, 1, [Infinity, 20])).toBe(Infinity);
  expect(shadowOf(2, 0, [5])).toBe(Infinity);
});

test('a job spares the gang only when it ends by the shadow, and only when the shadow is bound', () => {
  const gang = { nodes: 2, holding: 0 };
  expect(spares(gang, [60], 10, 55)).toBe(true);
  expect(spares(gang, [60], 10, 61)).toBe(false);
  expect(spares(gang, [Infinity], 10, 11)).toBe(false);
  // With a third host free as soon, this host is not needed by the shadow: any bound job spares it.
  expect(spares(gang, [60, 60], 10, 500)).toBe(true);
});
