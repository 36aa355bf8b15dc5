// Multi-node jobs (gangs) on real Redis and real BullMQ queues, with several workers: all-or-nothing placement,
// the bounded reservation and its cooling-off, no member twice on one worker, and no deadlock between gangs.
import { newJobRecord } from '@berth/contracts';
import { testPrefix, testRedisUrl } from '../../../test/support/env.js';
import { endAttempt } from './attempt-outcome.js';
import { Housekeeper } from './housekeeper.js';
import { AuthStore } from './auth-store.js';
import { AttemptTaker, bullPriorityOf, JobQueues } from './job-queues.js';
import { JobStore } from './job-store.js';
import { keys } from './keys.js';
import { parseHold } from './owner.js';
import { Placement, type Claim, type PlacementWorker } from './placement.js';
import { connectRedis, type Redis } from './redis.js';
import { WorkerRegistry } from './worker-registry.js';

let redis: Redis;
beforeAll(() => {
  redis = connectRedis(testRedisUrl());
});
afterAll(() => redis.disconnect());
const opened: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of opened.splice(0)) await close();
});

interface Host {
  w: PlacementWorker;
  placement: Placement;
  taker: AttemptTaker;
  claim(): Promise<Claim[]>;
}

/** `count` workers of `gpus` GPUs each (or of `gpus[i]` GPUs). */
async function cluster(count: number, gpus: number | number[], reservationMs = 60_000) {
  const prefix = testPrefix('gang');
  const store = new JobStore(redis, prefix);
  const queues = new JobQueues(redis, prefix);
  opened.push(() => queues.close());
  const owner = (await new AuthStore(redis, prefix).createUser('gangs', 'member', { queuedJobs: null, gpus: null }))!
    .id;
  const registry = new WorkerRegistry(redis, prefix);
  const hosts: Host[] = [];
  for (let i = 0; i < count; i++) {
    const w: PlacementWorker = {
      id: `w${i}`,
      mode: 'slots',
      concurrency: 4,
      gpus: Array.from({ length: typeof gpus === 'number' ? gpus : gpus[i]! }, (_, g) => `w${i}-g${g}`),
    };
    await registry.register({
      id: w.id,
      host: `host-${i}`,
      mode: w.mode,
      concurrency: w.concurrency,
      gpus: w.gpus.map((uuid, index) => ({ index, uuid, name: 'test GPU' })),
      gpuSource: 'config',
      startedAt: new Date().toISOString(),
    });
    const taker = new AttemptTaker(testRedisUrl(), prefix, w.id, 60_000);
    opened.push(() => taker.close());
    const placement = new Placement(redis, prefix, reservationMs);
    hosts.push({
      w,
      placement,
      taker,
      claim: () => placement.claim(w, { maxBypass: 8, gangReservationMs: reservationMs }, queues, taker),
    });
  }
  const submit = async (gpus: number, nodes = 1, queueTtlMs?: number, maxRuntime?: number) => {
    const r = newJobRecord(owner, {
      manifest: 'custom',
      params: {},
      resources: {},
      ...(maxRuntime !== undefined ? { maxRuntime } : {}),
    });
    const priority = bullPriorityOf(undefined);
    await store.create(r, { gpus, nodes, priority, ...(queueTtlMs !== undefined ? { queueTtlMs } : {}) });
    await queues.enqueue({ id: r.id, attempt: 1, gpus, priority, ...(nodes > 1 ? { nodes } : {}) });
    return r.id;
  };
  /** Every gang hold of a host, as its worker's heartbeat reads it. */
  const holds = async (h: Host) => {
    const out = [];
    for (const hold of await registry.active(h.w.id)) {
      const { jobId, attempt } = parseHold(hold);
      if ((await redis.hget(keys(prefix).job(jobId), 'nodes')) === '1') continue;
      out.push({ jobId, ...(await h.placement.gangHold(h.w.id, jobId, attempt)) });
    }
    return out;
  };
  const ledger = (h: Host) => redis.hgetall(keys(prefix).ledger(h.w.id));
  return { prefix, store, queues, hosts, submit, holds, ledger, registry };
}

describe('backfill ahead of a gang: a single sure to end before the gang could start goes first', () => {
  /** w1 runs `busy` (bound by its maxRuntime when it has one); a 2-node gang waits, and a short single behind it. */
  async function gangBehindBusy(busyMaxRuntime: number | undefined, singleMaxRuntime: number | undefined) {
    const c = await cluster(2, 1);
    const busy = await c.submit(1, 1, undefined, busyMaxRuntime);
    expect((await c.hosts[1]!.claim()).map((x) => x.jobId)).toEqual([busy]);
    const gang = await c.submit(1, 2);
    const single = await c.submit(1, 1, undefined, singleMaxRuntime);
    return { ...c, busy, gang, single };
  }

  test('the free worker runs the single instead of holding its GPU for the gang, which it cannot delay', async () => {
    const { prefix, hosts, busy, gang, single, holds } = await gangBehindBusy(60, 5);
    // Placed, busy is bound: by its maxRuntime from now (Redis's clock; no start allowance in these options).
    const endsBy = Number(await redis.hget(keys(prefix).job(busy), 'endsBy'));
    expect(Math.abs(endsBy - (Date.now() + 60_000))).toBeLessThan(2000);
    expect((await hosts[0]!.claim()).map((x) => x.jobId)).toEqual([single]);
    // Not held for the gang, and not counted as passing it: the gang could not have started before busy ends.
    expect(await holds(hosts[0]!)).toEqual([]);
    expect(await redis.hget(keys(prefix).job(gang), 'skips')).toBeNull();
  });

  test('a single that could outlast the job the gang waits for does not go first: the worker joins the gang', async () => {
    const { hosts, gang, holds } = await gangBehindBusy(60, 120);
    expect(await hosts[0]!.claim()).toEqual([]);
    expect(await holds(hosts[0]!)).toEqual([{ jobId: gang, status: 'forming' }]);
  });

  test('with no bound on the job the gang waits for, or on the single, nothing backfills', async () => {
    for (const [busyBound, singleBound] of [
      [undefined, 5],
      [60, undefined],
    ] as const) {
      const { hosts, gang, holds } = await gangBehindBusy(busyBound, singleBound);
      expect(await hosts[0]!.claim()).toEqual([]);
      expect(await holds(hosts[0]!)).toEqual([{ jobId: gang, status: 'forming' }]);
    }
  });

  test('a worker reserved for a gang passed too often still runs a single that ends before the gang could start', async () => {
    for (const [singleBound, expected] of [
      [5, true],
      [120, false],
    ] as const) {
      const { prefix, hosts, submit } = await cluster(2, 2);
      const busy = await submit(2, 1, undefined, 60);
      expect((await hosts[1]!.claim()).map((x) => x.jobId)).toEqual([busy]);
      const half = await submit(1, 1, undefined, 60);
      expect((await hosts[0]!.claim()).map((x) => x.jobId)).toEqual([half]);
      const gang = await submit(2, 2);
      await redis.hset(keys(prefix).job(gang), 'skips', 8);
      const single = await submit(1, 1, undefined, singleBound);
      // Both workers are sure to be free for the gang in 60 s; a 5 s single on w0's free GPU moves that not at all.
      expect((await hosts[0]!.claim()).map((x) => x.jobId)).toEqual(expected ? [single] : []);
    }
  });

  test('a gang whose members need more GPUs than a worker has never reserves that worker', async () => {
    const { prefix, hosts, submit } = await cluster(3, [1, 2, 2]);
    const gang = await submit(2, 2);
    await redis.hset(keys(prefix).job(gang), 'skips', 8);
    const single = await submit(1);
    expect((await hosts[0]!.claim()).map((x) => x.jobId)).toEqual([single]);
  });
});

test('a 2-node job starts only when both members are placed, on two workers, with the head owning the record', async () => {
  const { store, queues, hosts, submit, holds } = await cluster(2, 2);
  const gang = await submit(2, 2);
  expect(await hosts[0]!.claim()).toEqual([]);
  // One member: the GPUs are held for the gang, the record still waits.
  expect(await holds(hosts[0]!)).toEqual([{ jobId: gang, status: 'forming' }]);
  expect((await store.get(gang))!.state).toBe('queued');
  expect(await hosts[0]!.claim()).toEqual([]);
  // The worker that makes the gang whole places it and gets its own member at once; the head learns from its hold.
  const placed = await hosts[1]!.claim();
  expect(placed.map((c) => [c.jobId, c.gang?.rank, c.devices])).toEqual([[gang, 1, ['w1-g0', 'w1-g1']]]);
  const [head] = await holds(hosts[0]!);
  const [member] = await holds(hosts[1]!);
  expect(placed[0]!.gang!.members).toEqual(member?.status === 'placed' ? member.members : undefined);
  expect(head).toMatchObject({ status: 'placed', rank: 0 });
  expect(member).toMatchObject({ status: 'placed', rank: 1 });
  if (head?.status !== 'placed') throw new Error('not placed');
  expect(head.members.map((m) => m.token)).toEqual(['w0|1', 'w1|1']);
  expect(head.members.map((m) => m.devices)).toEqual([
    ['w0-g0', 'w0-g1'],
    ['w1-g0', 'w1-g1'],
  ]);
  // Placed, its queue is read until the job ends; then placement forgets it.
  expect(await queues.gangQueues()).toEqual([`gang-${gang}`]);
  await finish(store, queues, gang, 'w0');
  expect(await queues.gangQueues()).toEqual([]);
});

test("a worker keeps the first waiting gang's BullMQ worker open before it can complete it, and only that one", async () => {
  const { store, queues, hosts, submit, holds } = await cluster(2, 1);
  const busy = await submit(1);
  expect((await hosts[1]!.claim()).map((c) => c.jobId)).toEqual([busy]);
  const gang = await submit(1, 2);
  const later = await submit(1, 2);
  const lane = `gang-${gang}`;
  expect(await hosts[0]!.claim()).toEqual([]);
  // The busy worker cannot join yet, but the gang is the one it would complete: its queue's worker is made now,
  // not on the fetch that follows its GPU freeing. The gang behind it gets none.
  expect(await hosts[1]!.claim()).toEqual([]);
  expect(hosts[1]!.taker.lanes.filter((l) => l.startsWith('gang-'))).toEqual([lane]);
  await finish(store, queues, busy, 'w1');
  expect((await hosts[1]!.claim()).map((c) => [c.jobId, c.gang?.rank])).toEqual([[gang, 1]]);
  expect((await holds(hosts[1]!)).find((h) => h.jobId === gang)).toMatchObject({ status: 'placed', rank: 1 });
  // The round after the placing (the wake it sent brings it) weighs the heads behind it.
  expect(await hosts[1]!.claim()).toEqual([]);
  // Taken, its queue's worker is closed; the next gang waiting is the one kept open now.
  expect(hosts[1]!.taker.lanes.filter((l) => l.startsWith('gang-'))).toEqual([`gang-${later}`]);
  // Once no gang waits (the later one formed), no worker keeps one open.
  await finish(store, queues, gang, 'w0');
  await hosts[1]!.placement.forget('w1', gang, 1);
  for (const h of [...hosts, ...hosts]) await h.claim();
  expect((await holds(hosts[0]!)).map((h) => [h.jobId, h.status])).toEqual([[later, 'placed']]);
  expect(hosts.map((h) => h.taker.lanes.filter((l) => l.startsWith('gang-')))).toEqual([[], []]);
});

test('a forming gang whose queueTtl passes ends as EXPIRED, and the member holding GPUs for it gives them back', async () => {
  const { prefix, store, queues, hosts, submit, holds, ledger } = await cluster(2, 1);
  const busy = await submit(1);
  expect((await hosts[1]!.claim()).map((c) => c.jobId)).toEqual([busy]);
  const gang = await submit(1, 2, 200);
  expect(await hosts[0]!.claim()).toEqual([]);
  expect(Object.values(await ledger(hosts[0]!))).toEqual([`${gang}#1`]);
  await new Promise((r) => setTimeout(r, 300));
  const housekeeper = new Housekeeper(redis, prefix, store, queues, {
    lostAfterMs: 300_000,
    retry: { infraRetries: 0, backoffMs: 0 },
  } as ConstructorParameters<typeof Housekeeper>[4]);
  expect((await housekeeper.sweep()).expired).toEqual([gang]);
  expect((await store.get(gang))!).toMatchObject({ state: 'failed', reason: 'EXPIRED' });
  // Long before its 60 s reservation would lapse, the member's next look gives the GPU back.
  expect(await holds(hosts[0]!)).toEqual([{ jobId: gang, status: 'left' }]);
  expect(Object.values(await ledger(hosts[0]!))).toEqual(['']);
});

test('a gang that cannot form in time gives its GPUs back, lets other jobs use them, then forms', async () => {
  const { store, queues, hosts, submit, holds, ledger } = await cluster(2, 1, 300);
  const busy = await submit(1);
  expect((await hosts[1]!.claim()).map((c) => c.jobId)).toEqual([busy]);
  const gang = await submit(1, 2);
  const single = await submit(1);
  expect(await hosts[0]!.claim()).toEqual([]);
  expect(Object.values(await ledger(hosts[0]!))).toEqual([`${gang}#1`]);
  await new Promise((r) => setTimeout(r, 400));
  // Lapsed: the GPU is free again, and for a while the single job behind the gang may have it.
  expect(await holds(hosts[0]!)).toEqual([{ jobId: gang, status: 'left' }]);
  expect(Object.values(await ledger(hosts[0]!))).toEqual(['']);
  expect((await hosts[0]!.claim()).map((c) => c.jobId)).toEqual([single]);
  // Both singles end; the gang forms on the two freed workers.
  await finish(store, queues, busy, 'w1');
  await finish(store, queues, single, 'w0');
  await new Promise((r) => setTimeout(r, 400));
  for (const h of hosts) await h.claim();
  const states = [...(await holds(hosts[0]!)), ...(await holds(hosts[1]!))].map((h) => h.status);
  expect(states).toEqual(['placed', 'placed']);
  expect((await store.get(gang))!.state).toBe('queued');
});

test('two gangs and single jobs on 3 workers, in any order of rounds: each gang runs, never twice on a worker', async () => {
  const { store, queues, hosts, submit, holds } = await cluster(3, 1, 200);
  const gangs = [await submit(1, 2), await submit(1, 2)];
  const singles = [await submit(1), await submit(1), await submit(1)];
  const ran = new Set<string>();
  // A seeded order of rounds: hosts place, gangs that formed run and end, singles end.
  let seed = 7;
  const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  for (let round = 0; round < 200 && ran.size < 5; round++) {
    const h = hosts[Math.floor(rand() * hosts.length)]!;
    for (const c of await h.claim()) {
      // A gang's member placed here is run and ended by its head, below.
      if (c.gang) continue;
      ran.add(c.jobId);
      await finish(store, queues, c.jobId, h.w.id);
    }
    for (const g of await holds(h)) {
      if (g.status !== 'placed' || g.rank !== 0) continue;
      // No worker is a member twice, and the gang's members are all distinct workers.
      expect(new Set(g.members.map((m) => m.token.split('|')[0])).size).toBe(2);
      ran.add(g.jobId);
      await finish(store, queues, g.jobId, h.w.id);
      for (const m of g.members) await h.placement.forget(m.token.split('|')[0]!, g.jobId, 1);
    }
    if (rand() < 0.2) await new Promise((r) => setTimeout(r, 50));
  }
  expect([...ran].sort()).toEqual([...gangs, ...singles].sort());
});

async function finish(store: JobStore, queues: JobQueues, id: string, worker: string): Promise<void> {
  const job = (await store.get(id))!;
  await endAttempt(
    { store, queues, token: '0' },
    job,
    `${worker}|1`,
    { state: 'succeeded', exitCode: 0 },
    {
      infraRetries: 0,
      backoffMs: 0,
    },
  );
}
