// Submitting and cancelling jobs: shared by the jobs routes and the pipeline coordinator.
import {
  BerthError,
  newJobRecord,
  terminalStates,
  type JobRecord,
  type JobSpec,
  type JobSpecInput,
  type User,
  type WorkerInfo,
} from '@berth/contracts';
import { imageOf, type Manifest } from '@berth/manifests';
import {
  bullPriorityOf,
  faultPoint,
  type AttemptTicket,
  type EventStream,
  type JobQueues,
  type JobStore,
  type Placement,
} from '@berth/store';
import { createHash } from 'node:crypto';
import type { Artifacts } from '../artifacts/artifacts.js';
import type { Datasets } from '../datasets/datasets.js';
import type { ApiConfig } from '../env.js';
import type { Workers } from '../plugins/workers.js';
import { jobSpecSchema, resolveSpec } from './job-spec.js';
import { checkImage } from './image-policy.js';

/** What a submit reads and writes: the app's decorators of these names. */
export interface Submitting {
  config: Pick<ApiConfig, 'images' | 'maxNodes'>;
  manifests: ReadonlyMap<string, Manifest>;
  store: JobStore;
  queues: JobQueues;
  placement: Placement;
  workers: Workers;
  datasets: Pick<Datasets, 'records'>;
  artifacts: Pick<Artifacts, 'exists'>;
}

/** What a cancel reads and writes. */
export interface Cancelling {
  store: JobStore;
  queues: JobQueues;
  events: EventStream;
}

export interface Submission {
  record: JobRecord;
  /** False when an Idempotency-Key named a job submitted before. */
  created: boolean;
  /** The record as JSON, when it was written as such on the way (a new job): what POST /v1/jobs answers. */
  json?: string;
}

/**
 * Validates a spec like POST /v1/jobs does (every bad field in one error), checks its image and inputs, then records
 * and queues the job for `owner` — unless their Idempotency-Key names an earlier job, or a quota of theirs is full.
 */
export async function submitJob(
  deps: Submitting,
  input: JobSpecInput | JobSpec,
  owner: User,
  idempotencyKey?: string,
): Promise<Submission> {
  const parsed = jobSpecSchema(deps.manifests).safeParse(input);
  if (!parsed.success) {
    throw new BerthError('VALIDATION_FAILED', 'the job spec is invalid', {
      issues: parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })),
    });
  }
  return submitValidSpec(deps, parsed.data, owner, idempotencyKey);
}

/** submitJob for a spec that already passed jobSpecSchema (POST /v1/jobs: Fastify validated the body with it). */
export async function submitValidSpec(
  deps: Submitting,
  valid: JobSpec,
  owner: User,
  idempotencyKey?: string,
): Promise<Submission> {
  const resolved = resolveSpec(deps.manifests, valid);
  const { manifest } = resolved;
  let spec = resolved.spec;
  const gpus = spec.resources.gpus ?? manifest.resources.gpus.default;
  checkImage(deps.config.images, imageOf(manifest, resolved.params.values, gpus === 0));
  // The stored spec names the artifact that /init will hold, even where the submit left it out.
  if (spec.inputs) spec = await checkInputs(deps, spec, owner);
  const nodes = spec.resources.nodes ?? 1;
  const { maxNodes } = deps.config;
  if (nodes > maxNodes) {
    throw new BerthError(
      'VALIDATION_FAILED',
      `a job spans at most ${maxNodes} node${maxNodes === 1 ? '' : 's'} on this cluster`,
      {
        issues: [{ path: 'resources.nodes', message: `at most ${maxNodes} (BERTH_MAX_NODES)` }],
      },
    );
  }
  if (nodes > 1 && manifest.launcher === 'none') {
    throw new BerthError('VALIDATION_FAILED', `recipe ${manifest.id} runs one process; it cannot span ${nodes} nodes`, {
      issues: [{ path: 'resources.nodes', message: `recipe ${manifest.id} has no distributed launcher` }],
    });
  }
  const live = (await recentWorkers(deps.workers)).filter((w) => w.status === 'live');
  const largest = Math.max(0, ...live.map((w) => w.gpus.length));
  // With no live worker yet the job waits and shows as unplaceable; it may fit the first one that comes.
  if (live.length > 0 && gpus > largest) {
    throw new BerthError(
      'RESOURCES_UNSATISFIABLE',
      `the job needs ${gpus} GPUs${nodes > 1 ? ' on each node' : ''}; the largest live worker has ${largest}`,
      {
        gpus,
        largest,
        workers: live.map((w) => ({ id: w.id, gpus: w.gpus.length })),
      },
    );
  }
  const hosts = live.filter((w) => w.gpus.length >= gpus).length;
  if (live.length > 0 && nodes > hosts) {
    throw new BerthError(
      'RESOURCES_UNSATISFIABLE',
      `the job needs ${nodes} nodes with ${gpus} GPUs each; ${hosts} live worker${hosts === 1 ? '' : 's'} could host a member`,
      { gpus, nodes, hosts, workers: live.map((w) => ({ id: w.id, gpus: w.gpus.length })) },
    );
  }
  const lane = nodes > 1 ? { nodes } : {};
  const record = newJobRecord(owner.id, spec);
  const priority = bullPriorityOf(spec.priority);
  const outcome = await deps.store.create(record, {
    gpus,
    nodes,
    priority,
    ...(spec.queueTtl !== undefined ? { queueTtlMs: spec.queueTtl * 1000 } : {}),
    ...(idempotencyKey ? { idempotency: { key: idempotencyKey, bodyHash: canonicalHash(valid) } } : {}),
  });
  if ('quota' in outcome) {
    const { limit, max, current } = outcome.quota;
    const what = limit === 'gpus' ? `${current} GPUs asked for by unfinished jobs` : `${current} jobs queued`;
    throw new BerthError('QUOTA_EXCEEDED', `quota ${limit} is ${max}; you have ${what}`, outcome.quota);
  }
  if ('existing' in outcome) {
    if (!outcome.sameBody) {
      throw new BerthError('IDEMPOTENCY_KEY_REUSED', 'this Idempotency-Key came with a different job before', {
        job: outcome.existing,
      });
    }
    const earlier = await deps.store.get(outcome.existing);
    // A key outlives nothing it names today (jobs are kept), but it must never answer with a job it did not store.
    if (!earlier) {
      throw new BerthError(
        'IDEMPOTENCY_KEY_REUSED',
        `this Idempotency-Key named job ${outcome.existing}, which is gone`,
        {
          job: outcome.existing,
        },
      );
    }
    // The earlier submit may have died before its BullMQ add: adding again is a no-op if it did not.
    if (earlier.state === 'queued') {
      await enqueue(deps, { id: earlier.id, attempt: earlier.attempt + 1, gpus, priority, ...lane });
    }
    return { record: earlier, created: false };
  }
  await enqueue(deps, { id: record.id, attempt: 1, gpus, priority, ...lane });
  return { record, created: true, ...('json' in outcome ? { json: outcome.json } : {}) };
}

/** The second step of a submit: the job's BullMQ job, then a wake-up for the workers. */
async function enqueue(deps: Pick<Submitting, 'queues' | 'placement'>, ticket: AttemptTicket): Promise<void> {
  faultPoint('after-record');
  await deps.queues.enqueue(ticket);
  await deps.placement.wake();
}

const workerLists = new WeakMap<Workers, { at: number; list: Promise<WorkerInfo[]> }>();

/** The workers as seen within the last second: every submit checks its size against them, none needs it fresher. */
function recentWorkers(workers: Workers): Promise<WorkerInfo[]> {
  const cached = workerLists.get(workers);
  if (cached && Date.now() - cached.at < 1000) return cached.list;
  const list = workers.list();
  workerLists.set(workers, { at: Date.now(), list });
  list.catch(() => workerLists.delete(workers));
  return list;
}

/** The same JSON whatever the order of its keys, hashed: what an Idempotency-Key is compared by. */
function canonicalHash(value: unknown): string {
  const canonical = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(canonical)
      : v && typeof v === 'object'
        ? Object.fromEntries(
            Object.entries(v)
              .sort(([a], [b]) => (a < b ? -1 : 1))
              .map(([k, x]) => [k, canonical(x)]),
          )
        : v;
  return createHash('sha256')
    .update(JSON.stringify(canonical(value)))
    .digest('hex');
}

/**
 * Cancels a job: a queued one at once (its record is returned), a placed one by asking its worker, which stops the
 * container and records the end (null is returned). An ended job is JOB_ALREADY_FINISHED.
 */
export async function cancelJob(deps: Cancelling, job: JobRecord): Promise<JobRecord | null> {
  if (terminalStates.has(job.state)) {
    throw new BerthError('JOB_ALREADY_FINISHED', `job ${job.id} already ended as ${job.state}`, { state: job.state });
  }
  const cancelled = await deps.store.transition(
    job.id,
    { state: 'cancelled', reason: 'CANCELLED', message: 'cancelled by request while queued' },
    { fromQueue: true },
  );
  if (cancelled.ok) {
    const ticket = await deps.queues.ticket(job.id, cancelled.record.attempt + 1);
    if (ticket) await deps.queues.withdraw(ticket);
    return cancelled.record;
  }
  await deps.store.requestCancel(job.id);
  await deps.events.add(job.id, job.attempt, 'cancel-requested', {}).catch(() => {});
  return null;
}

/**
 * The inputs a spec names must exist now and be the submitter's to use: its dataset, and the other job's artifact it
 * starts from (someone else's reads as missing, as everywhere). Returns the spec with the artifact named where it was
 * left out.
 */
async function checkInputs(
  deps: Pick<Submitting, 'store' | 'datasets' | 'artifacts'>,
  spec: JobSpec,
  owner: User,
): Promise<JobSpec> {
  const issues: { path: string; message: string }[] = [];
  const { dataset, initFrom } = spec.inputs ?? {};
  const mine = (o: string | null | undefined) =>
    o !== null && o !== undefined && (owner.role === 'admin' || o === owner.id);
  if (dataset && !mine((await deps.datasets.records.get(dataset))?.owner)) {
    issues.push({ path: 'inputs.dataset', message: `no dataset ${dataset}` });
  }
  const { resumeFrom } = spec.inputs ?? {};
  if (resumeFrom && !mine(await deps.store.ownerOf(resumeFrom))) {
    issues.push({ path: 'inputs.resumeFrom', message: `no job ${resumeFrom}` });
  }
  let artifact = initFrom?.artifact;
  if (initFrom && !mine(await deps.store.ownerOf(initFrom.job))) {
    issues.push({ path: 'inputs.initFrom', message: `no job ${initFrom.job}` });
  } else if (initFrom) {
    const exists = (path: string) => deps.artifacts.exists(initFrom.job, path);
    // Left out, it is the trained model when the job has one, else its newest checkpoint.
    if (artifact === undefined) artifact = (await exists('model')) ? 'model' : 'latest';
    if (!(await exists(artifact))) {
      issues.push({
        path: 'inputs.initFrom',
        message:
          initFrom.artifact === undefined
            ? `job ${initFrom.job} has no model folder or checkpoint (yet); name one of its artifacts in inputs.initFrom.artifact`
            : `job ${initFrom.job} has no artifact ${artifact} (yet)`,
      });
    }
  }
  if (issues.length > 0) throw new BerthError('VALIDATION_FAILED', 'the job inputs do not exist', { issues });
  return initFrom && artifact !== undefined
    ? { ...spec, inputs: { ...spec.inputs, initFrom: { ...initFrom, artifact } } }
    : spec;
}
