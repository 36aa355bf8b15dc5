// Which submit errors a step waits out, how long it waits between tries, and when it gives up.
import { BerthError } from '@berth/contracts';
import { describeSubmitError, readStepRetries, SubmitRetry, type StepRetry } from './submit-retry.js';

test('a full quota, no worker big enough, a slowed caller and any 5xx are waited out; a wrong step is not', () => {
  const transient = [
    new BerthError('QUOTA_EXCEEDED', 'quota gpus is 1'),
    new BerthError('RESOURCES_UNSATISFIABLE', 'the job needs 2 GPUs; the largest live worker has 0'),
    new BerthError('RATE_LIMITED', 'slow down'),
    new BerthError('REDIS_UNAVAILABLE', 'the job store (Redis) is unreachable; try again shortly'),
    new BerthError('INTERNAL', 'boom'),
    new Error('connect ECONNREFUSED'),
  ];
  const permanent = [
    new BerthError('VALIDATION_FAILED', 'the job spec is invalid'),
    new BerthError('VALIDATION_FAILED', 'the job inputs do not exist'),
    new BerthError('IMAGE_NOT_ALLOWED', 'not on the allowlist'),
    new BerthError('USER_NOT_FOUND', 'gone'),
    new BerthError('MANIFEST_NOT_FOUND', 'no such recipe'),
  ];
  expect(transient.map((e) => SubmitRetry.transient(e))).toEqual(transient.map(() => true));
  expect(permanent.map((e) => SubmitRetry.transient(e))).toEqual(permanent.map(() => false));
});

test('the wait doubles from the first delay up to the longest, and the step gives up at the deadline', () => {
  const retry = new SubmitRetry({ firstDelayMs: 1000, maxDelayMs: 8000, giveUpAfterMs: 30_000 });
  let now = 0;
  let r: StepRetry | null | undefined;
  const waits: number[] = [];
  for (;;) {
    r = retry.next(r ?? undefined, 'QUOTA_EXCEEDED full', now);
    if (!r) break;
    waits.push(r.nextAt - now);
    expect(retry.due(r, r.nextAt - 1)).toBe(false);
    expect(retry.due(r, r.nextAt)).toBe(true);
    now = r.nextAt;
  }
  // Doubling up to the longest wait, and the last wait cut short to end on the deadline.
  expect(waits).toEqual([1000, 2000, 4000, 8000, 8000, 7000]);
  expect(now).toBe(30_000);
});

test('a waiting step says what refused it and when it is tried next; a step that gave up says for how long', () => {
  const retry = new SubmitRetry();
  const err = new BerthError('QUOTA_EXCEEDED', 'quota gpus is 1; you have 1 GPUs asked for by unfinished jobs');
  const error = describeSubmitError(err);
  const first = retry.next(undefined, error, 10_000)!;
  const third = retry.next(retry.next(first, error, first.nextAt)!, error, 13_000)!;
  expect(retry.waitingReason(first, 10_000)).toBe(
    'waiting to submit: QUOTA_EXCEEDED quota gpus is 1; you have 1 GPUs asked for by unfinished jobs, next try in 1 s',
  );
  expect(retry.waitingReason(third, 13_000)).toMatch(/, next try in 4 s$/);
  expect(retry.gaveUpReason(first, error, 10_000 + 3_600_000)).toBe(
    `could not submit, still after 60 min of tries: ${error}`,
  );
  expect(describeSubmitError(new Error('secret internals'))).toBe('INTERNAL the submit failed unexpectedly');
});

test('retry records that do not parse are dropped, so their steps are tried at once', () => {
  const good = { since: 1, tries: 2, nextAt: 3, error: 'QUOTA_EXCEEDED full' };
  const read = readStepRetries({ a: good, b: { since: 'x' }, c: null });
  expect([...read]).toEqual([['a', good]]);
});
