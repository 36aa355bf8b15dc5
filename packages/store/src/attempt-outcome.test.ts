// Retries by cause: infrastructure by policy, the job's own failures only when its spec or its recipe asks.
import type { AttemptRecord, JobRecord } from '@berth/contracts';
import { retryDelay } from './attempt-outcome.js';

const policy = { infraRetries: 2, backoffMs: 1000 };

function job(spec: Partial<JobRecord['spec']> = {}, ended: Partial<AttemptRecord>[] = []): JobRecord {
  const attempts = ended.map((a, i) => ({ attempt: i + 1, worker: 'w', gpus: [], startedAt: '', ...a }));
  return {
    id: 'job_aaaaaaaaaaaaaaaaaaaa',
    owner: 'usr_aaaaaaaaaaaaaaaaaaaa',
    spec: { manifest: 'custom', params: {}, resources: {}, ...spec },
    state: 'running',
    attempt: attempts.length + 1,
    createdAt: '',
    updatedAt: '',
    attempts: [...attempts, { attempt: attempts.length + 1, worker: 'w', gpus: [], startedAt: '' }],
    history: [],
  };
}

test('infrastructure failures are retried up to the policy, with doubling backoff', () => {
  expect(retryDelay(job(), { reason: 'WORKER_LOST' }, policy)).toBe(1000);
  expect(retryDelay(job({}, [{ reason: 'INFRA_ERROR' }]), { reason: 'WORKER_LOST' }, policy)).toBe(2000);
  expect(
    retryDelay(job({}, [{ reason: 'INFRA_ERROR' }, { reason: 'WORKER_LOST' }]), { reason: 'INFRA_ERROR' }, policy),
  ).toBeNull();
});

test("the job's own failures are final unless the spec asks; OOM has its own budget", () => {
  expect(retryDelay(job(), { reason: 'EXIT_NONZERO', exitCode: 1 }, policy)).toBeNull();
  expect(retryDelay(job({ retries: { onFailure: 1, onOom: 0 } }), { reason: 'EXIT_NONZERO' }, policy)).toBe(1000);
  expect(retryDelay(job({ retries: { onFailure: 1, onOom: 0 } }), { reason: 'OOM_KILLED' }, policy)).toBeNull();
  expect(retryDelay(job({ retries: { onFailure: 0, onOom: 1 } }), { reason: 'OOM_KILLED' }, policy)).toBe(1000);
  // An infrastructure retry does not use up the job's own budget.
  const mixed = job({ retries: { onFailure: 1, onOom: 0 } }, [{ reason: 'WORKER_LOST' }]);
  expect(retryDelay(mixed, { reason: 'EXIT_NONZERO' }, policy)).toBe(1000);
});

test('some failures never improve with another try', () => {
  for (const reason of ['IMAGE_PULL_FAILED', 'GPU_RUNTIME_MISSING', 'TIMEOUT', 'CANCELLED', 'EXPIRED'] as const) {
    expect(retryDelay(job({ retries: { onFailure: 5, onOom: 5 } }), { reason }, policy)).toBeNull();
  }
});

test("a recipe's hint (exit 75 after a SIGTERM checkpoint) allows its attempts, and no more", () => {
  const hints = { maxAttempts: 3, onExitCodes: [75], onReasons: [] };
  expect(retryDelay(job(), { reason: 'EXIT_NONZERO', exitCode: 75 }, policy, hints)).toBe(1000);
  expect(retryDelay(job(), { reason: 'EXIT_NONZERO', exitCode: 1 }, policy, hints)).toBeNull();
  const twice = job({}, [
    { reason: 'EXIT_NONZERO', exitCode: 75 },
    { reason: 'EXIT_NONZERO', exitCode: 75 },
  ]);
  expect(retryDelay(twice, { reason: 'EXIT_NONZERO', exitCode: 75 }, policy, hints)).toBeNull();
});

test('an exit code the recipe retries does not retry a job berth stopped itself (timeout, too large, cancel)', () => {
  // The trainer checkpoints and exits 75 on any SIGTERM, berth's own stop included: another try would end the same.
  const hints = { maxAttempts: 3, onExitCodes: [75], onReasons: [] };
  for (const reason of ['TIMEOUT', 'RESULTS_TOO_LARGE', 'CANCELLED'] as const) {
    expect([reason, retryDelay(job(), { reason, exitCode: 75 }, policy, hints)]).toEqual([reason, null]);
  }
});
