// The worker's signals on a real Redis: each reaches its handler, a gang stop with its attempt and rank, and a
// message that cannot be read is reported rather than thrown.
import { testPrefix, testRedisUrl } from '../../../test/support/env.js';
import { keys } from './keys.js';
import { connectRedis } from './redis.js';
import { WorkerSignals, type GangStop } from './worker-signals.js';

test('wake, cancel and gang stop reach their handlers; an unreadable gang stop is reported', async () => {
  const prefix = testPrefix('signals');
  const redis = connectRedis(testRedisUrl());
  const subscriber = connectRedis(testRedisUrl());
  const signals = new WorkerSignals(redis, prefix);
  const seen: unknown[] = [];
  try {
    await signals.listen(subscriber, {
      onWake: () => seen.push('wake'),
      onCancel: (id) => seen.push(['cancel', id]),
      onGangStop: (stop: GangStop) => seen.push(stop),
      onUnreadable: () => seen.push('unreadable'),
    });
    await redis.publish(keys(prefix).wakeChannel, '1');
    await redis.publish(keys(prefix).cancelChannel, 'job_a');
    await signals.gangStop({
      jobId: 'job_a',
      attempt: 2,
      rank: 1,
      state: 'failed',
      reason: 'EXIT_NONZERO',
      exitCode: 1,
    });
    await redis.publish(keys(prefix).gangStopChannel, 'not json');
    for (let i = 0; i < 100 && seen.length < 4; i++) await new Promise((r) => setTimeout(r, 10));
    expect(seen).toEqual([
      'wake',
      ['cancel', 'job_a'],
      { jobId: 'job_a', attempt: 2, rank: 1, state: 'failed', reason: 'EXIT_NONZERO', exitCode: 1 },
      'unreadable',
    ]);
  } finally {
    subscriber.disconnect();
    redis.disconnect();
  }
});
