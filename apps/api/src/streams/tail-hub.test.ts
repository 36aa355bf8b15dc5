// The shared reader on a real Redis stream: every follower gets every entry once and in order whatever its pace, and
// the reader reads for followers that want more, not ahead of stalled ones.
import { connectRedis, type Redis, type TailSource } from '@berth/store';
import { testPrefix, testRedisUrl } from '../../../../test/support/env.js';
import { TailHub } from './tail-hub.js';

interface Entry {
  id: string;
  n: number;
}

let redis: Redis;
const connections: Redis[] = [];
beforeAll(() => {
  redis = connectRedis(testRedisUrl());
});
afterAll(() => {
  redis.disconnect();
  for (const c of connections) c.disconnect();
});

const connect = (): Redis => {
  const c = connectRedis(testRedisUrl());
  connections.push(c);
  return c;
};

type Raw = [string, string[]][];
const parse = ([id, fields]: [string, string[]]): Entry => ({ id, n: Number(fields[1]) });

/** A stream of numbered entries ended by n = -1; `readByReader` counts what the shared reader took from Redis. */
function source(key: string) {
  const counts = { readByReader: 0 };
  const src: TailSource<Entry> = {
    read: async (after, count) => ((await redis.xrange(key, `(${after}`, '+', 'COUNT', count)) as Raw).map(parse),
    waitFor: async (conn, after, count, blockMs) => {
      const res = (await conn.xread('COUNT', count, 'BLOCK', blockMs, 'STREAMS', key, after)) as [string, Raw][] | null;
      const entries = res?.[0]?.[1].map(parse) ?? [];
      counts.readByReader += entries.length;
      return entries;
    },
    latest: async () => ((await redis.xrevrange(key, '+', '-', 'COUNT', 1)) as Raw)[0]?.[0] ?? '0',
    isEnd: (e) => e.n === -1,
  };
  return { src, counts };
}

async function produce(key: string, from: number, to: number, chunk = 500): Promise<void> {
  for (let i = from; i <= to; i += chunk) {
    const p = redis.pipeline();
    for (let n = i; n < Math.min(i + chunk, to + 1); n++) p.xadd(key, '*', 'n', String(n));
    await p.exec();
  }
}

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('a fast and a slow follower each get every entry once, in order, while the stream is written', async () => {
  const key = `${testPrefix('tail')}:s`;
  const { src } = source(key);
  const hub = new TailHub(connect, { blockMs: 200, batch: 100, maxPending: 400 });
  const got = { fast: [] as number[], slow: [] as number[] };
  const follow = (name: 'fast' | 'slow', delayMs: number) =>
    hub.follow(key, src, {
      from: '0',
      isClosed: () => false,
      send: async (entries) => {
        for (const e of entries) got[name].push(e.n);
        if (delayMs) await tick(delayMs);
      },
    });
  await redis.xadd(key, '*', 'n', '0');
  const followers = [follow('fast', 0), follow('slow', 15)];
  await produce(key, 1, 20_000);
  await redis.xadd(key, '*', 'n', '-1');
  await Promise.all(followers);
  const expected = [...Array.from({ length: 20_001 }, (_, i) => i), -1];
  expect(got.fast).toEqual(expected);
  expect(got.slow).toEqual(expected);
  expect(hub.readers).toBe(0);
});

test('the shared reader stops reading while its only follower has a batch waiting, and resumes after it', async () => {
  const key = `${testPrefix('tail')}:s`;
  const { src, counts } = source(key);
  const hub = new TailHub(connect, { blockMs: 200, batch: 100, maxPending: 100_000 });
  let release: () => void = () => {};
  let stalled = true;
  const got: number[] = [];
  await redis.xadd(key, '*', 'n', '0');
  const following = hub.follow(key, src, {
    from: '0',
    isClosed: () => false,
    send: async (entries) => {
      for (const e of entries) got.push(e.n);
      // The client stops taking data after the first entries: sends wait until it is released.
      if (stalled) await new Promise<void>((r) => (release = r));
    },
  });
  await tick(100);
  await produce(key, 1, 5_000);
  await tick(500);
  // Stalled, the follower holds its first send; the reader filled its buffer once (a batch or two), no more.
  const readWhileStalled = counts.readByReader;
  stalled = false;
  release();
  await redis.xadd(key, '*', 'n', '-1');
  await following;
  expect(readWhileStalled).toBeLessThanOrEqual(200);
  expect(got).toEqual([...Array.from({ length: 5_001 }, (_, i) => i), -1]);
});

// Issue 19, "each followed stream opens its own Redis connection": before SharedXread, 50 followed streams held 50
// blocking connections (this test counted 50 named connections in CLIENT LIST).
test('followers of 50 streams share a few Redis connections, not one each, and each gets its own stream whole', async () => {
  const name = `berth-tail-count-${Math.random().toString(36).slice(2, 8)}`;
  const named: Redis[] = [];
  const hub = new TailHub(
    () => {
      const c = connectRedis(testRedisUrl(), { name });
      named.push(c);
      return c;
    },
    { blockMs: 200, batch: 100, maxPending: 1000 },
    // As in the API: the main connection interrupts the shared reader, so the blocking one is all the hub opens.
    redis,
  );
  const keys = Array.from({ length: 50 }, (_, i) => `${testPrefix('tail-count')}:${i}`);
  for (const key of keys) await redis.xadd(key, '*', 'n', '0');
  const got = keys.map(() => [] as number[]);
  const follows = keys.map((key, i) =>
    hub.follow(key, source(key).src, {
      from: '0',
      isClosed: () => false,
      send: async (entries) => {
        for (const e of entries) got[i]!.push(e.n);
      },
    }),
  );
  await tick(300);
  // Written while followed, one stream after another and in rounds, so readers join and leave the shared XREAD.
  for (let round = 0; round < 5; round++) {
    for (const key of keys) await produce(key, round * 40 + 1, round * 40 + 40, 20);
    await tick(round * 60);
  }
  const list = (await redis.client('LIST')) as string;
  const held = list.split('\n').filter((l) => l.includes(` name=${name} `)).length;
  for (const key of keys) await redis.xadd(key, '*', 'n', '-1');
  await Promise.all(follows);
  hub.close();
  for (const c of named) c.disconnect();
  expect(held).toBe(1);
  const expected = [...Array.from({ length: 201 }, (_, i) => i), -1];
  for (let i = 0; i < keys.length; i++) expect({ stream: i, got: got[i] }).toEqual({ stream: i, got: expected });
  expect(hub.readers).toBe(0);
});

test('an aborted follow ends at once while it waits for entries that never come, and its reader stops', async () => {
  const key = `${testPrefix('tail')}:s`;
  const { src } = source(key);
  await produce(key, 1, 3);
  const hub = new TailHub(connect, { blockMs: 200, batch: 100, maxPending: 1000 });
  const stop = new AbortController();
  const got: number[] = [];
  const following = hub.follow(key, src, {
    from: '0',
    isClosed: () => false,
    signal: stop.signal,
    send: async (entries) => {
      got.push(...entries.map((e) => e.n));
    },
  });
  for (let i = 0; i < 100 && got.length < 3; i++) await tick(10);
  expect(hub.readers).toBe(1);
  const at = Date.now();
  stop.abort();
  await following;
  // Without the signal, this follow would wait for ever: nothing more is written and the client never leaves.
  expect(Date.now() - at).toBeLessThan(100);
  expect(got).toEqual([1, 2, 3]);
  expect(hub.readers).toBe(0);
  hub.close();
});
