// Writes a worker must not give up on: a state change or an attempt's outcome is delayed while Redis is away, full
// or loading its data, never dropped, and never turned into the job's failure.
import { ReplyError } from 'ioredis';

/**
 * Replies that say Redis cannot take the command now but will: full under noeviction (OOM), loading its AOF after a
 * restart, busy with a script, a replica that lost its primary. Anything else is an answer.
 */
const notNow = /^(OOM|LOADING|BUSY|READONLY|MASTERDOWN|TRYAGAIN|CLUSTERDOWN)\b/;

/**
 * What ioredis (and BullMQ through it) says when the command never got an answer: the connection is gone or refused,
 * a fail-fast client is offline (no offline queue) or gave up on a command at its `commandTimeout`.
 */
const unreachable = /Connection is closed|ECONNREFUSED|ECONNRESET|ETIMEDOUT|Stream isn't writeable|Command timed out/;

/** True for a failure that retrying the same command can get past: Redis not now, or not reachable. */
export function isTransientRedisError(err: unknown): boolean {
  if (err instanceof ReplyError) return notNow.test((err as Error).message);
  const name = (err as { name?: string } | null)?.name;
  const message = err instanceof Error ? err.message : '';
  return name === 'MaxRetriesPerRequestError' || unreachable.test(message);
}

/**
 * Runs `op` until it gets past Redis being away or full: waits 100 ms after the first failure, doubling to
 * `maxWaitMs`. Other errors are thrown as they are.
 */
export async function untilRedisTakes<T>(
  op: () => Promise<T>,
  onRetry: (err: unknown, tries: number) => void = () => {},
  maxWaitMs = 5000,
): Promise<T> {
  for (let tries = 1; ; tries++) {
    try {
      return await op();
    } catch (err) {
      if (!isTransientRedisError(err)) throw err;
      onRetry(err, tries);
      await new Promise((r) => setTimeout(r, Math.min(100 * 2 ** (tries - 1), maxWaitMs)));
    }
  }
}
