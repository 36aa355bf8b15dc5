// How an attempt ends: the final state, or a new attempt of the same job after a backoff — decided by cause.
import type { FailureReason, JobRecord } from '@berth/contracts';
import { faultPoint } from './fault.js';
import type { JobQueues } from './job-queues.js';
import type { JobStore, Transitioned } from './job-store.js';
import { parseOwner } from './owner.js';

export interface RetryPolicy {
  /** New attempts after infrastructure failures (WORKER_LOST, INFRA_ERROR), whatever the spec says. */
  infraRetries: number;
  /** Delay before the first retry; doubled for each further one, at most ten minutes. */
  backoffMs: number;
}

export const defaultRetryPolicy: RetryPolicy = { infraRetries: 3, backoffMs: 5000 };

type Cause = 'infra' | 'user' | 'oom' | 'final';

/** Infrastructure is retried by policy; the job's own failures only when its spec asks; the rest never. */
function causeOf(reason: FailureReason): Cause {
  switch (reason) {
    case 'WORKER_LOST':
    case 'INFRA_ERROR':
    case 'ARTIFACT_UPLOAD_FAILED':
      return 'infra';
    case 'EXIT_NONZERO':
    case 'INCOMPLETE_RESULT':
      return 'user';
    case 'OOM_KILLED':
      return 'oom';
    default:
      // IMAGE_PULL_FAILED (401/403/404), GPU_RUNTIME_MISSING, TIMEOUT, CANCELLED, EXPIRED: another try ends the same.
      return 'final';
  }
}

/** A recipe's own retry rule: e.g. exit code 75 (stopped by SIGTERM after a checkpoint) is worth another attempt. */
export interface RetryHints {
  maxAttempts: number;
  onExitCodes: readonly number[];
  onReasons: readonly FailureReason[];
}

/** Milliseconds to wait before the next attempt, or null when this failure ends the job. */
export function retryDelay(
  job: JobRecord,
  end: { reason: FailureReason; exitCode?: number | undefined },
  policy: RetryPolicy,
  hints?: RetryHints,
): number | null {
  const cause = causeOf(end.reason);
  let allowed = {
    infra: policy.infraRetries,
    user: job.spec.retries?.onFailure ?? 0,
    oom: job.spec.retries?.onOom ?? 0,
    final: 0,
  }[cause];
  // An exit code the recipe retries (75: checkpointed on SIGTERM) says nothing where berth sent the SIGTERM itself.
  const hinted =
    hints &&
    (hints.onReasons.includes(end.reason) ||
      (cause !== 'final' && end.exitCode !== undefined && hints.onExitCodes.includes(end.exitCode)));
  if (hinted && end.reason !== 'CANCELLED') allowed = Math.max(allowed, hints.maxAttempts - 1);
  // The attempt now ending has no reason yet: these are the earlier failures of the same kind.
  const before = job.attempts.filter((a) => a.reason !== undefined && causeOf(a.reason) === cause).length;
  if (before >= allowed) return null;
  return Math.min(policy.backoffMs * 2 ** before, 600_000);
}

export interface AttemptEnd {
  state: 'succeeded' | 'failed' | 'cancelled';
  reason?: FailureReason;
  message?: string;
  exitCode?: number;
  /** Final figures the attempt reported. */
  summary?: Record<string, number>;
}

/** Who ends an attempt: the stores, and the BullMQ lock token it holds ('0' for a lost worker's attempt). */
export interface Ender {
  store: JobStore;
  queues: JobQueues;
  token: string;
}

/**
 * Records how an attempt ended and frees its GPUs in one step, guarded by its owner (`worker|attempt`) so a
 * worker that was written off can no longer finish a job that has moved on; then finishes the attempt's BullMQ job
 * the same way. A retryable failure makes the next attempt a delayed BullMQ job, due after the backoff.
 */
export async function endAttempt(
  { store, queues, token }: Ender,
  job: JobRecord,
  owner: string,
  end: AttemptEnd,
  policy: RetryPolicy,
  hints?: RetryHints,
  now = Date.now(),
): Promise<Transitioned> {
  const recorded = await recordEnd(store, job, owner, end, policy, hints, now);
  if (!recorded.ok) return recorded;
  faultPoint('after-end-record');
  const { attempt } = parseOwner(owner);
  const ticket = await queues.ticket(job.id, attempt);
  if (ticket) await queues.settle(ticket, recorded.record, token);
  return recorded;
}

async function recordEnd(
  store: JobStore,
  job: JobRecord,
  owner: string,
  end: AttemptEnd,
  policy: RetryPolicy,
  hints: RetryHints | undefined,
  now: number,
): Promise<Transitioned> {
  const { workerId: worker } = parseOwner(owner);
  const delay =
    end.state === 'failed' && end.reason
      ? retryDelay(job, { reason: end.reason, exitCode: end.exitCode }, policy, hints)
      : null;
  if (delay === null) return store.transition(job.id, end, { owner, release: worker });
  return store.transition(
    job.id,
    {
      state: 'queued',
      reason: end.reason,
      message: `${end.message ?? end.reason}; retrying in ${Math.round(delay / 1000)} s`,
      exitCode: end.exitCode,
      summary: end.summary,
    },
    { owner, release: worker, requeueAt: now + delay },
  );
}
