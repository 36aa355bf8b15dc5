// JobStore.create against a real Redis: every key the create script writes must be the one keys.ts names, which the
// readers use (scripts.test.ts checks that the scripts touch only the keys they are given).
import { newJobRecord, type JobRecord } from '@berth/contracts';
import { testPrefix, testRedisUrl } from '../../../test/support/env.js';
import { AuthStore } from './auth-store.js';
import { JobStore } from './job-store.js';
import { keys } from './keys.js';
import { connectRedis, type Redis } from './redis.js';

let redis: Redis;
beforeAll(() => {
  redis = connectRedis(testRedisUrl());
});
afterAll(() => redis.disconnect());

const record = (owner: string): JobRecord =>
  newJobRecord(owner, { manifest: 'custom', params: {}, resources: { gpus: 2 } });

test('create writes the record and every index keys.ts names, and wakes nobody before its BullMQ add', async () => {
  const prefix = testPrefix('job-store');
  const k = keys(prefix);
  const store = new JobStore(redis, prefix);
  const owner = (await new AuthStore(redis, prefix).createUser('owner', 'member', { queuedJobs: 5, gpus: 8 }))!.id;
  const wake = connectRedis(testRedisUrl());
  const woken: string[] = [];
  await wake.subscribe(k.wakeChannel);
  wake.on('message', (channel: string) => woken.push(channel));
  try {
    const job = record(owner);
    const before = Date.now();
    const outcome = await store.create(job, {
      gpus: 2,
      queueTtlMs: 60_000,
      idempotency: { key: 'retry-1', bodyHash: 'h1' },
    });
    expect(outcome).toEqual({ created: true, json: JSON.stringify(job) });

    const fields = await redis.hgetall(k.job(job.id));
    expect(fields).toMatchObject({ json: JSON.stringify(job), state: 'queued', ver: '0', gpus: '2', attempt: '0' });
    expect(fields.user).toBe(owner);
    const seq = fields.seq!;
    expect(await redis.get(k.jobSeq)).toBe(seq);
    for (const index of [
      k.jobsAll,
      k.jobsInState('queued'),
      k.jobsOfUser(owner),
      k.jobsOfUserInState(owner, 'queued'),
    ]) {
      expect([index, await redis.zscore(index, job.id)]).toEqual([index, seq]);
    }
    const deadline = Number(await redis.zscore(k.deadlines, job.id));
    expect(deadline).toBeGreaterThanOrEqual(before + 60_000);
    expect(deadline).toBeLessThanOrEqual(Date.now() + 60_000);
    expect(await redis.hget(k.userUsage(owner), 'gpus')).toBe('2');
    // The outbox entry the housekeeper checks for the BullMQ add that comes next.
    expect(Number(await redis.zscore(k.unqueued, job.id))).toBeGreaterThanOrEqual(before);
    expect(await redis.get(k.idempotency(owner, 'retry-1'))).toBe(`${job.id}|h1`);
    expect(await redis.ttl(k.idempotency(owner, 'retry-1'))).toBeGreaterThan(86_000);
    // A wake-up now would send workers to BullMQ before the job is there: the submit wakes them after its add.
    await new Promise((r) => setTimeout(r, 200));
    expect(woken).toEqual([]);

    // The same key again names the first job; with another body it says so. The quota reads the same keys.
    expect(await store.create(record(owner), { gpus: 2, idempotency: { key: 'retry-1', bodyHash: 'h1' } })).toEqual({
      existing: job.id,
      sameBody: true,
    });
    expect(await store.create(record(owner), { gpus: 2, idempotency: { key: 'retry-1', bodyHash: 'h2' } })).toEqual({
      existing: job.id,
      sameBody: false,
    });
    expect(await store.create(record(owner), { gpus: 7 })).toEqual({
      quota: { limit: 'gpus', max: 8, current: 2 },
    });
    for (let i = 0; i < 4; i++) await store.create(record(owner), { gpus: 0 });
    expect(await store.create(record(owner), { gpus: 0 })).toEqual({
      quota: { limit: 'queuedJobs', max: 5, current: 5 },
    });
  } finally {
    wake.disconnect();
  }
});

test('create takes only new jobs: queued, at attempt 0', async () => {
  const store = new JobStore(redis, testPrefix('job-store'));
  await expect(store.create({ ...record('usr_x'), attempt: 1 }, { gpus: 0 })).rejects.toThrow(/queued, at attempt 0/);
  await expect(store.create({ ...record('usr_x'), state: 'running' }, { gpus: 0 })).rejects.toThrow(/queued/);
});

test("a read shows each member's noted end, running for the current attempt's others, and skips an unreadable one", async () => {
  const prefix = testPrefix('job-store');
  const store = new JobStore(redis, prefix);
  const member = (rank: number) => ({ rank, worker: `w${rank}`, gpus: [], address: `n${rank}`, container: `c${rank}` });
  const job: JobRecord = {
    ...newJobRecord('usr_a', { manifest: 'bert-pretrain', params: {}, resources: { gpus: 0, nodes: 2 } }),
    state: 'running',
    attempt: 2,
    attempts: [
      { attempt: 1, worker: 'w0', gpus: [], startedAt: 'then', state: 'failed', members: [member(0), member(1)] },
      { attempt: 2, worker: 'w0', gpus: [], startedAt: 'now', members: [member(0), member(1)] },
    ],
  };
  // A job that never spanned hosts is not read twice.
  const single = record('usr_a');
  expect(await store.withMembers(single)).toBe(single);

  await store.recordMemberEnd(job.id, 1, 1, { state: 'failed', reason: 'EXIT_NONZERO', exitCode: 137 });
  await redis.hset(keys(prefix).memberEnds(job.id), '1.0', '{"state": "exploded"}');
  await store.recordMemberEnd(job.id, 2, 1, { state: 'succeeded', exitCode: 0 });
  // A second note of the same member's end (a worker re-attached after a restart) leaves the first.
  await store.recordMemberEnd(job.id, 2, 1, { state: 'failed', message: 'stopped when node 0 ended (succeeded)' });
  const read = await store.withMembers(job);
  expect(
    read.attempts.map((a) => a.members!.map(({ rank, state, exitCode, reason }) => [rank, state, exitCode, reason])),
  ).toEqual([
    // An end another version wrote in a form this one cannot read is left out, not thrown.
    [
      [0, undefined, undefined, undefined],
      [1, 'failed', 137, 'EXIT_NONZERO'],
    ],
    [
      [0, 'running', undefined, undefined],
      [1, 'succeeded', 0, undefined],
    ],
  ]);
});
