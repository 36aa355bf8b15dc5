// Placement run by a test on behalf of a worker, through the same BullMQ queues and fetch a worker uses.
import { AttemptTaker, JobQueues, Placement, type Claim, type PlacementWorker, type Redis } from '@berth/store';
import { testRedisUrl } from './env.js';

export async function claimAs(
  redis: Redis,
  prefix: string,
  worker: PlacementWorker,
  maxBypass: number,
): Promise<Claim[]> {
  const queues = new JobQueues(redis, prefix);
  const taker = new AttemptTaker(testRedisUrl(), prefix, worker.id, 300_000);
  try {
    return await new Placement(redis, prefix).claim(worker, { maxBypass }, queues, taker);
  } finally {
    await taker.close();
    await queues.close();
  }
}
