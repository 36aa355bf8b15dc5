// Submitting and cancelling jobs: shared by the jobs routes and the pipeline coordinator.
import {
  BerthError,
  newJobId,
  terminalStates,
  type JobRecord,
  type JobSpec,
  type JobSpecInput,
} from '@berth/contracts';
import type { Manifest } from '@berth/manifests';
import { jobSpecSchema, resolveSpec } from '../routes/job-spec.js';
import type { Services } from '../services.js';

/** Validates a spec like POST /v1/jobs does (every bad field in one error), then records and queues the job. */
export async function submitJob(
  services: Services,
  manifests: ReadonlyMap<string, Manifest>,
  input: JobSpecInput | JobSpec,
): Promise<JobRecord> {
  const parsed = jobSpecSchema(manifests).safeParse(input);
  if (!parsed.success) {
    throw new BerthError('VALIDATION_FAILED', 'the job spec is invalid', {
      issues: parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })),
    });
  }
  const { spec, manifest } = resolveSpec(manifests, parsed.data);
  await checkInputs(services, spec);
  const gpus = spec.resources.gpus ?? manifest.resources.gpus.default;
  const workers = await services.call(() => services.workers.list(services.lostAfterMs));
  const live = workers.filter((w) => w.status === 'live');
  const largest = Math.max(0, ...live.map((w) => w.gpus.length));
  // With no live worker yet the job waits and shows as unplaceable; it may fit the first one that comes.
  if (live.length > 0 && gpus > largest) {
    throw new BerthError(
      'RESOURCES_UNSATISFIABLE',
      `the job needs ${gpus} GPUs; the largest live worker has ${largest}`,
      {
        gpus,
        largest,
        workers: live.map((w) => ({ id: w.id, gpus: w.gpus.length })),
      },
    );
  }
  const now = new Date().toISOString();
  const record: JobRecord = {
    id: newJobId(),
    spec,
    state: 'queued',
    attempt: 0,
    createdAt: now,
    updatedAt: now,
    attempts: [],
    history: [{ state: 'queued', at: now, attempt: 0 }],
  };
  await services.call(async () => {
    await services.store.create(record, {
      gpus,
      ...(spec.queueTtl !== undefined ? { queueTtlMs: spec.queueTtl * 1000 } : {}),
    });
    await services.placement.wake();
  });
  return record;
}

/**
 * Cancels a job: a queued one at once (its record is returned), a placed one by asking its worker, which stops the
 * container and records the end (null is returned). An ended job is JOB_ALREADY_FINISHED.
 */
export async function cancelJob(services: Services, job: JobRecord): Promise<JobRecord | null> {
  if (terminalStates.has(job.state)) {
    throw new BerthError('JOB_ALREADY_FINISHED', `job ${job.id} already ended as ${job.state}`, { state: job.state });
  }
  const cancelled = await services.call(() =>
    services.store.transition(
      job.id,
      { state: 'cancelled', reason: 'CANCELLED', message: 'cancelled by request while queued' },
      { fromQueue: true },
    ),
  );
  if (typeof cancelled !== 'string') return cancelled;
  await services.call(() => services.store.requestCancel(job.id));
  await services.events.add(job.id, job.attempt, 'cancel-requested', {}).catch(() => {});
  return null;
}

/** The inputs a spec names must exist now: its dataset, and the other job's artifact it starts from. */
async function checkInputs(services: Services, spec: JobSpec): Promise<void> {
  const issues: { path: string; message: string }[] = [];
  const { dataset, initFrom } = spec.inputs ?? {};
  if (dataset && !(await services.call(() => services.datasets.records.get(dataset)))) {
    issues.push({ path: 'inputs.dataset', message: `no dataset ${dataset}` });
  }
  if (initFrom) {
    const found = await services
      .call(() => services.artifacts.resolve(initFrom.job, initFrom.artifact))
      .catch((err: unknown) => {
        if (err instanceof BerthError && err.code === 'ARTIFACT_NOT_FOUND') return null;
        throw err;
      });
    if (!found) {
      issues.push({
        path: 'inputs.initFrom',
        message: `job ${initFrom.job} has no artifact ${initFrom.artifact} (yet)`,
      });
    }
  }
  if (issues.length > 0) throw new BerthError('VALIDATION_FAILED', 'the job inputs do not exist', { issues });
}
