// When a pipeline step whose job could not be submitted is tried again, and when the coordinator gives up on it.
import { BerthError } from '@berth/contracts';
import { z } from 'zod';

/** A step's failed submits so far, kept with its pipeline: when the first failed, how many, when to try next. */
export const StepRetry = z.object({
  since: z.number(),
  tries: z.number().int().min(1),
  nextAt: z.number(),
  error: z.string(),
});
export type StepRetry = z.infer<typeof StepRetry>;

/** The records as read back from the store; one that does not parse is dropped (its step is tried at once). */
export function readStepRetries(raw: Record<string, unknown>): Map<string, StepRetry> {
  const out = new Map<string, StepRetry>();
  for (const [step, value] of Object.entries(raw)) {
    const parsed = StepRetry.safeParse(value);
    if (parsed.success) out.set(step, parsed.data);
  }
  return out;
}

export interface SubmitRetryOptions {
  /** The wait after the first failed try; it doubles after each try that fails (default 1 s). */
  firstDelayMs?: number;
  /** The longest wait between two tries (default 60 s). */
  maxDelayMs?: number;
  /** How long a step may keep failing to submit before it fails with the last error (default 1 h). */
  giveUpAfterMs?: number;
}

const defaults: Required<SubmitRetryOptions> = {
  firstDelayMs: 1000,
  maxDelayMs: 60_000,
  giveUpAfterMs: 3_600_000,
};

/**
 * Codes that say nothing is wrong with the step itself, only with this moment: the owner's quota is full until a job
 * of theirs ends, no live worker is big enough until one (re)joins, the caller is being slowed down. Any 5xx (Redis
 * unreachable, an internal failure) is of that kind too. Everything else (a spec that does not validate, an input
 * that does not exist, an image outside the allowlist, an owner who is gone) stays wrong however long one waits.
 */
const passing: ReadonlySet<string> = new Set(['QUOTA_EXCEEDED', 'RESOURCES_UNSATISFIABLE', 'RATE_LIMITED']);

/** A submit's error in words, with a bad spec's issues; a non-BerthError's own text stays internal. */
export function submitErrorMessage(err: unknown): string {
  if (!(err instanceof BerthError)) return 'the submit failed unexpectedly';
  const issues = err.details?.issues;
  return `${err.message}${issues ? ` (${issues.map((i) => `${i.path}: ${i.message}`).join('; ')})` : ''}`;
}

/** The same, led by the error's code: what a waiting step shows of the last refusal. */
export function describeSubmitError(err: unknown): string {
  return `${err instanceof BerthError ? err.code : 'INTERNAL'} ${submitErrorMessage(err)}`;
}

export class SubmitRetry {
  private readonly o: Required<SubmitRetryOptions>;

  constructor(options: SubmitRetryOptions = {}) {
    this.o = { ...defaults, ...options };
  }

  /** Whether trying the same submit later may succeed. Errors that are not BerthErrors are internal failures. */
  static transient(err: unknown): boolean {
    return !(err instanceof BerthError) || err.status >= 500 || passing.has(err.code);
  }

  /** Whether a step that failed to submit before may be tried at `now`. */
  due(retry: StepRetry | undefined, now: number): boolean {
    return !retry || retry.nextAt <= now;
  }

  /**
   * The record of a try that just failed for a passing reason, or null when the step has kept failing for as long
   * as it may and should fail now. The last try falls on the deadline rather than a whole backoff past it.
   */
  next(previous: StepRetry | undefined, error: string, now: number): StepRetry | null {
    const since = previous?.since ?? now;
    const deadline = since + this.o.giveUpAfterMs;
    if (now >= deadline) return null;
    const tries = (previous?.tries ?? 0) + 1;
    const delay = Math.min(this.o.maxDelayMs, this.o.firstDelayMs * 2 ** Math.min(tries - 1, 30));
    return { since, tries, nextAt: Math.min(now + delay, deadline), error };
  }

  /** What a waiting step says about the submit it will try again. */
  waitingReason(retry: StepRetry, now: number): string {
    return `waiting to submit: ${retry.error}, next try in ${duration(retry.nextAt - now)}`;
  }

  /** What a step that kept failing to submit says when it fails. */
  gaveUpReason(retry: StepRetry | undefined, error: string, now: number): string {
    return `could not submit, still after ${duration(now - (retry?.since ?? now))} of tries: ${error}`;
  }
}

/** Whole seconds under two minutes, else whole minutes. */
function duration(ms: number): string {
  const s = Math.max(0, Math.ceil(ms / 1000));
  return s < 120 ? `${s} s` : `${Math.round(s / 60)} min`;
}
