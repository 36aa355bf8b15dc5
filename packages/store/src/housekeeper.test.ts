// The write-off of silent workers on real Redis: silence is measured on Redis's clock whatever the host clocks of
// the worker and of the housekeeper say, and one housekeeper at a time does it.
import { testPrefix, testRedisUrl } from '../../../test/support/env.js';
import { registerWorker } from '../../../test/support/registry.js';
import { Housekeeper, type HousekeeperOptions } from './housekeeper.js';
import { JobQueues } from './job-queues.js';
import { JobStore } from './job-store.js';
import { connectRedis, type Redis } from './redis.js';
import { WorkerRegistry } from './worker-registry.js';

let redis: Redis;
const opened: JobQueues[] = [];
beforeAll(() => {
  redis = connectRedis(testRedisUrl());
});
afterAll(async () => {
  for (const queues of opened) await queues.close();
  redis.disconnect();
});

const hostNow = Date.now;
/** Runs `fn` as a process on a host whose clock is `skewMs` off would (negative: behind). */
async function onClock<T>(skewMs: number, fn: () => Promise<T>): Promise<T> {
  const spy = jest.spyOn(Date, 'now').mockImplementation(() => hostNow() + skewMs);
  try {
    return await fn();
  } finally {
    spy.mockRestore();
  }
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const lostAfterMs = 400;
const hour = 3_600_000;

function setup(name: string, options: Partial<HousekeeperOptions> = {}) {
  const prefix = testPrefix(name);
  const queues = new JobQueues(redis, prefix);
  opened.push(queues);
  const store = new JobStore(redis, prefix);
  const registry = new WorkerRegistry(redis, prefix);
  const housekeeper = () =>
    new Housekeeper(redis, prefix, store, queues, {
      lostAfterMs,
      retry: { infraRetries: 0, backoffMs: 0 },
      ...options,
    });
  const register = (id: string) => registerWorker(registry, id);
  return { registry, housekeeper, register };
}

test.each([
  ['the worker host clock is an hour behind', -hour, 0],
  ['the worker host clock is an hour ahead', hour, 0],
  ['the housekeeper host clock is an hour ahead', 0, hour],
  ['the housekeeper host clock is an hour behind', 0, -hour],
])(
  '%s: a beating worker stays live, and once silent is written off by Redis time',
  async (_, workerSkew, keeperSkew) => {
    const { registry, housekeeper, register } = setup('skew');
    const keeper = housekeeper();
    await onClock(workerSkew, () => register('w1'));
    // Beats come several times per lost-after period, for several periods: no sweep may write the worker off.
    let lastBeat = 0;
    for (let i = 0; i < 12; i++) {
      lastBeat = hostNow();
      expect(await onClock(workerSkew, () => registry.heartbeat('w1'))).toBe(false);
      expect((await onClock(keeperSkew, () => keeper.sweep())).lost).toEqual([]);
      const [shown] = await onClock(keeperSkew, () => registry.list(lostAfterMs));
      expect(shown).toMatchObject({ id: 'w1', status: 'live' });
      await sleep(lostAfterMs / 4);
    }
    // The beats stop: the write-off comes once Redis's clock says the period has passed, neither before nor long after.
    let writtenOff: number | undefined;
    while (writtenOff === undefined && hostNow() - lastBeat < 10 * lostAfterMs) {
      if ((await onClock(keeperSkew, () => keeper.sweep())).lost.includes('w1')) writtenOff = hostNow();
      else await sleep(20);
    }
    expect(writtenOff).toBeDefined();
    expect(writtenOff! - lastBeat).toBeGreaterThanOrEqual(lostAfterMs);
    expect(writtenOff! - lastBeat).toBeLessThan(lostAfterMs + 1000);
    // The worker learns it was written off at its next beat.
    expect(await onClock(workerSkew, () => registry.heartbeat('w1'))).toBe(true);
  },
);

test('two housekeepers at once: one writes the worker off, the other takes over once the lease lapses', async () => {
  const sweepLeaseMs = 1200;
  const { housekeeper, register } = setup('lease', { sweepLeaseMs });
  const keepers = [housekeeper(), housekeeper()] as const;
  const markLost = jest.spyOn(WorkerRegistry.prototype, 'markLost');
  try {
    await register('w1');
    await sleep(lostAfterMs + 100);
    const before = hostNow();
    const results = await Promise.all(keepers.map((k) => k.sweep()));
    const after = hostNow();
    expect(results.flatMap((r) => r.lost)).toEqual(['w1']);
    // Only the lease holder looked at the silent worker at all.
    expect(markLost).toHaveBeenCalledTimes(1);
    const [holder, other] = results[0]!.lost.length > 0 ? keepers : [keepers[1], keepers[0]];

    // The holder stops sweeping; the other sweeps on, and a second worker falls silent.
    await register('w2');
    let tookOver: number | undefined;
    while (tookOver === undefined && hostNow() - after < sweepLeaseMs + 3000) {
      if ((await other.sweep()).lost.includes('w2')) tookOver = hostNow();
      else await sleep(20);
    }
    expect(tookOver).toBeDefined();
    // w2 was overdue well before the lease lapsed: the other waited for the lapse, and took over right after it.
    expect(tookOver! - before).toBeGreaterThanOrEqual(sweepLeaseMs);
    expect(tookOver! - after).toBeLessThan(sweepLeaseMs + 500);
    // The new holder keeps the lease while it sweeps: the old one, back, is refused.
    const calls = markLost.mock.calls.length;
    expect((await holder.sweep()).lost).toEqual([]);
    expect(markLost.mock.calls.length).toBe(calls);
  } finally {
    markLost.mockRestore();
  }
});
