// Placement on real Redis and real BullMQ queues: disjoint GPUs, whole-host exclusivity, bounded bypass, backoff,
// and releasing by owner.
import { newJobRecord, type JobRecord } from '@berth/contracts';
import fc from 'fast-check';
import { testPrefix, testRedisUrl } from '../../../test/support/env.js';
import { endAttempt as endWith, type AttemptEnd, type RetryHints, type RetryPolicy } from './attempt-outcome.js';
import { AuthStore } from './auth-store.js';
import { AttemptTaker, bullPriorityOf, JobQueues } from './job-queues.js';
import { JobStore } from './job-store.js';
import { Placement, type PlacementOptions, type PlacementWorker } from './placement.js';
import { connectRedis, type Redis } from './redis.js';
import { WorkerRegistry } from './worker-registry.js';

let redis: Redis;
beforeAll(() => {
  redis = connectRedis(testRedisUrl());
});
afterAll(() => redis.disconnect());

/** What each setup opened (BullMQ queues and workers hold connections), closed after each test. */
const opened: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of opened.splice(0)) await close();
});
const queuesOf = new Map<JobStore, JobQueues>();

/** Ends an attempt as the worker would; the tests' takers all use lock token '0', which BullMQ does not check. */
function endAttempt(
  store: JobStore,
  job: JobRecord,
  owner: string,
  end: AttemptEnd,
  policy: RetryPolicy,
  hints?: RetryHints,
  now?: number,
) {
  return endWith({ store, queues: queuesOf.get(store)!, token: '0' }, job, owner, end, policy, hints, now);
}

/** The user the test's jobs belong to (a job needs an owner with a user record). */
let owner = '';

async function setup(worker: Omit<PlacementWorker, 'id'>) {
  const prefix = testPrefix('placement');
  const store = new JobStore(redis, prefix);
  const queues = new JobQueues(redis, prefix);
  const taker = new AttemptTaker(testRedisUrl(), prefix, 'w1', 60_000);
  queuesOf.set(store, queues);
  let closed: Promise<void> | undefined;
  const close = () => (closed ??= taker.close().then(() => queues.close()));
  opened.push(close);
  owner = (await new AuthStore(redis, prefix).createUser('placement', 'member', { queuedJobs: null, gpus: null }))!.id;
  const real = new Placement(redis, prefix);
  const placement = {
    claim: (w: PlacementWorker, o: PlacementOptions) => real.claim(w, o, queues, taker),
    queued: () => real.queued(),
  };
  const w: PlacementWorker = { id: 'w1', ...worker };
  await new WorkerRegistry(redis, prefix).register({
    id: w.id,
    host: 'host-a',
    mode: w.mode,
    concurrency: w.concurrency,
    gpus: w.gpus.map((uuid, index) => ({ index, uuid, name: 'test GPU' })),
    gpuSource: 'config',
    startedAt: new Date().toISOString(),
  });
  const submit = async (gpus: number, level?: 'low' | 'normal' | 'high') => {
    const r = newJobRecord(owner, { manifest: 'custom', params: {}, resources: {} });
    const priority = bullPriorityOf(level);
    await store.create(r, { gpus, priority });
    await queues.enqueue({ id: r.id, attempt: 1, gpus, priority });
    return r.id;
  };
  return { store, queues, placement, w, submit, close };
}

const gpus8 = ['g0', 'g1', 'g2', 'g3', 'g4', 'g5', 'g6', 'g7'];

test('slot mode packs jobs onto disjoint GPUs in queue order and skips what does not fit', async () => {
  const { placement, w, submit } = await setup({ mode: 'slots', concurrency: 8, gpus: gpus8 });
  const a = await submit(4);
  const b = await submit(2);
  const c = await submit(4);
  const d = await submit(2);
  const claims = await placement.claim(w, { maxBypass: 8 });
  expect(claims.map((x) => [x.jobId, x.devices])).toEqual([
    [a, ['g0', 'g1', 'g2', 'g3']],
    [b, ['g4', 'g5']],
    [d, ['g6', 'g7']],
  ]);
  expect(claims.every((x) => x.attempt === 1)).toBe(true);
  expect((await placement.queued()).map((q) => [q.id, q.skips])).toEqual([[c, 1]]);
  expect(await placement.claim(w, { maxBypass: 8 })).toEqual([]);
});

test('whole-host mode gives one GPU job every GPU and nothing else until it ends', async () => {
  const { store, placement, w, submit } = await setup({ mode: 'whole-host', concurrency: 4, gpus: gpus8 });
  const a = await submit(1);
  await submit(1);
  const cpu = await submit(0);
  const first = await placement.claim(w, { maxBypass: 8 });
  expect(first.map((x) => [x.jobId, x.devices.length])).toEqual([
    [a, 8],
    [cpu, 0],
  ]);
  const job = (await store.get(a))!;
  await endAttempt(store, job, `w1|1`, { state: 'succeeded', exitCode: 0 }, { infraRetries: 0, backoffMs: 0 });
  expect((await placement.claim(w, { maxBypass: 8 })).map((x) => x.devices.length)).toEqual([8]);
});

test('a job passed over maxBypass times reserves the worker: nothing behind it starts there', async () => {
  const { store, placement, w, submit } = await setup({ mode: 'slots', concurrency: 8, gpus: ['g0', 'g1'] });
  const small = await submit(1);
  await placement.claim(w, { maxBypass: 1 });
  const big = await submit(2);
  const next = [await submit(1), await submit(1)];
  // One free GPU: the first small job after the big one may go ahead (bypass 1)…
  expect((await placement.claim(w, { maxBypass: 1 })).map((x) => x.jobId)).toEqual([next[0]]);
  // …and when it ends, its GPU is held back for the big job even though next[1] would fit.
  await endAttempt(
    store,
    (await store.get(next[0]!))!,
    'w1|1',
    { state: 'succeeded' },
    { infraRetries: 0, backoffMs: 0 },
  );
  expect(await placement.claim(w, { maxBypass: 1 })).toEqual([]);
  await endAttempt(store, (await store.get(small))!, 'w1|1', { state: 'succeeded' }, { infraRetries: 0, backoffMs: 0 });
  expect((await placement.claim(w, { maxBypass: 1 })).map((x) => x.jobId)).toEqual([big]);
});

test('a retry keeps its place in the queue view, waits out its backoff in BullMQ, and is a new attempt', async () => {
  const { store, placement, w, submit } = await setup({ mode: 'slots', concurrency: 1, gpus: ['g0'] });
  const a = await submit(1);
  const b = await submit(1);
  await placement.claim(w, { maxBypass: 8 });
  const now = Date.now();
  const ended = await endAttempt(
    store,
    (await store.get(a))!,
    'w1|1',
    { state: 'failed', reason: 'INFRA_ERROR', message: 'engine hiccup' },
    { infraRetries: 1, backoffMs: 1500 },
    undefined,
    now,
  );
  expect(ended).toMatchObject({ ok: true, record: { state: 'queued', reason: 'INFRA_ERROR' } });
  expect((await placement.queued()).map((q) => q.id)).toEqual([a, b]);
  // During the backoff the next job goes first; afterwards the retry is attempt 2.
  expect((await placement.claim(w, { maxBypass: 8 })).map((x) => x.jobId)).toEqual([b]);
  await endAttempt(store, (await store.get(b))!, 'w1|1', { state: 'succeeded' }, { infraRetries: 1, backoffMs: 0 });
  expect(await placement.claim(w, { maxBypass: 8 })).toEqual([]);
  await new Promise((r) => setTimeout(r, now + 1600 - Date.now()));
  expect(await placement.claim(w, { maxBypass: 8 })).toEqual([{ jobId: a, attempt: 2, devices: ['g0'] }]);
});

test('only the owning attempt can record an end; a stale owner is refused and frees nothing', async () => {
  const { store, placement, w, submit } = await setup({ mode: 'slots', concurrency: 2, gpus: ['g0', 'g1'] });
  const a = await submit(1);
  await placement.claim(w, { maxBypass: 8 });
  const stale = await endAttempt(
    store,
    (await store.get(a))!,
    'w1|7',
    { state: 'succeeded' },
    {
      infraRetries: 0,
      backoffMs: 0,
    },
  );
  expect(stale).toEqual({ ok: false, refusal: 'not-owner' });
  expect(await redis.hget(`${store.keys.job(a).replace(/:job:.*/, '')}:worker:w1:gpus`, 'g0')).toBe(`${a}#1`);
});

test('property: whatever the sizes and order of ends, no GPU is ever held by two attempts', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.constantFrom(1, 2, 4), { minLength: 5, maxLength: 25 }),
      fc.array(fc.nat(), { minLength: 30, maxLength: 30 }),
      async (sizes, picks) => {
        const { store, placement, w, submit, close } = await setup({ mode: 'slots', concurrency: 8, gpus: gpus8 });
        for (const s of sizes) await submit(s);
        const held = new Map<string, string>();
        const running: { jobId: string; devices: string[] }[] = [];
        for (let round = 0; round < 60; round++) {
          for (const c of await placement.claim(w, { maxBypass: 3 })) {
            for (const d of c.devices) {
              expect(held.has(d)).toBe(false);
              held.set(d, c.jobId);
            }
            running.push(c);
          }
          if (running.length === 0) break;
          const [done] = running.splice(picks[round % picks.length]! % running.length, 1);
          for (const d of done!.devices) held.delete(d);
          await endAttempt(
            store,
            (await store.get(done!.jobId))!,
            'w1|1',
            { state: 'succeeded' },
            {
              infraRetries: 0,
              backoffMs: 0,
            },
          );
        }
        expect(await placement.queued()).toEqual([]);
        await close();
      },
    ),
    { numRuns: 25 },
  );
});

test('priority orders the heads across GPU sizes, and a job that does not fit yet does not block a lower one', async () => {
  const { placement, w, submit } = await setup({ mode: 'slots', concurrency: 8, gpus: ['g0', 'g1'] });
  const low = await submit(1, 'low');
  const normalPair = await submit(2);
  const high = await submit(1, 'high');
  // high first (it jumps the older low job in its own queue); then the pair would come next but only one GPU is
  // left, so the low job takes it and the pair is counted as passed.
  const claims = await placement.claim(w, { maxBypass: 8 });
  expect(claims.map((c) => c.jobId)).toEqual([high, low]);
  expect((await placement.queued()).map((q) => [q.id, q.skips])).toEqual([[normalPair, 1]]);
});

test('aging moves a waiting low-priority job up until it starts before newer normal ones', async () => {
  const { queues, placement, w, submit } = await setup({ mode: 'slots', concurrency: 1, gpus: ['g0'] });
  const old = await submit(1, 'low');
  const newer = await submit(1);
  const tickets = [
    { id: old, attempt: 1, gpus: 1, priority: bullPriorityOf('low') },
    { id: newer, attempt: 1, gpus: 1, priority: bullPriorityOf('normal') },
  ];
  // Not yet an aging period old: nothing moves. Two periods later the low job is at the top level, the normal one
  // one level up, and the low job, older, goes first.
  expect(await queues.age(tickets, 60_000)).toBe(0);
  expect(await queues.age(tickets, 60_000, Date.now() + 120_000)).toBe(2);
  expect((await placement.claim(w, { maxBypass: 8 })).map((c) => c.jobId)).toEqual([old]);
});

test('a burst of wake-ups is folded into two messages, and every call is followed by one sent after it', async () => {
  const prefix = testPrefix('wake');
  const placement = new Placement(redis, prefix);
  const listener = connectRedis(testRedisUrl());
  const heard: number[] = [];
  await listener.subscribe(`${prefix}:wake`);
  listener.on('message', () => heard.push(Date.now()));
  try {
    await Promise.all(Array.from({ length: 50 }, () => placement.wake()));
    await new Promise((r) => setTimeout(r, 100));
    expect(heard).toHaveLength(2);
    // One more call, made while none is on its way, is its own message; so is one made while that one travels.
    const first = placement.wake();
    const second = placement.wake();
    await Promise.all([first, second]);
    await new Promise((r) => setTimeout(r, 100));
    expect(heard).toHaveLength(4);
  } finally {
    listener.disconnect();
  }
});
