// The job contract shared by API, worker and store: what a user submits and what berth records.
import { z } from 'zod';
import { newJobId } from './ids.js';
import { jobStates } from './job-states.js';
import { isoNow } from './time.js';

export { isTerminal, jobStates, terminalStates } from './job-states.js';
export const JobState = z.enum(jobStates);
export type JobState = z.infer<typeof JobState>;

export const FailureReason = z.enum([
  'EXIT_NONZERO',
  /** Exit code as expected, but the recipe's required final metrics or result files are missing. */
  'INCOMPLETE_RESULT',
  'OOM_KILLED',
  'IMAGE_PULL_FAILED',
  'TIMEOUT',
  'CANCELLED',
  'WORKER_LOST',
  'ARTIFACT_UPLOAD_FAILED',
  'INFRA_ERROR',
  /** The host's Docker engine has no NVIDIA Container Toolkit, so it cannot give a container GPUs. */
  'GPU_RUNTIME_MISSING',
  /** The job waited longer than its queueTtl without starting. */
  'EXPIRED',
  /** The job left more under /results than the host allows (BERTH_RESULTS_MAX_BYTES / BERTH_RESULTS_MAX_FILES). */
  'RESULTS_TOO_LARGE',
]);
export type FailureReason = z.infer<typeof FailureReason>;

/** Public job ids: `job_` + 20 lowercase base32 characters. Never a BullMQ counter. */
export const JobId = z.string().regex(/^job_[a-z2-7]{20}$/, 'a job id looks like job_ followed by 20 characters');

/** The most hosts one job may span (resources.nodes). */
export const maxNodes = 64;

export const Resources = z.strictObject({
  /** GPUs for the job; the recipe's default when left out. 0 runs the recipe's CPU image. With `nodes`: per node. */
  gpus: z.number().int().min(0).max(64).optional(),
  /**
   * Hosts the job spans: one member on each of this many workers, all started together (a gang), each with `gpus`
   * GPUs (or the whole host, on whole-host workers). Default 1.
   */
  nodes: z.number().int().min(1).max(maxNodes).optional(),
  /** The container's memory limit, e.g. `16g` or `512m`; the recipe's when left out. Above it the job ends as OOM_KILLED. */
  memory: z
    .string()
    .regex(/^[0-9]+(\.[0-9]+)?\s*[kmgt]?i?b?$/i, 'a size such as 512m or 16g')
    .optional(),
});

const labels = z
  .record(z.string().regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, 'label keys are lowercase [a-z0-9._-]'), z.string().max(256))
  .refine((l) => Object.keys(l).length <= 32, 'at most 32 labels');

// `manifest` names a recipe in ngc-manifests/; `params` are checked against that recipe's parameters by the API
// (and again by the worker before it renders the launch).
/**
 * Another job's artifact, mounted read-only at /init: a folder's own files at /init (`/init/config.json`), a file as
 * /init/<its name>, or `latest`, the job's newest checkpoint folder. Left out: `model` when the job has one, else
 * `latest` (the API writes down which).
 */
export const InitFrom = z.strictObject({
  job: JobId,
  artifact: z.string().min(1).max(1024).optional(),
});

export const JobInputs = z.strictObject({
  /** A dataset id (POST /v1/datasets), mounted read-only at /data. */
  dataset: z
    .string()
    .regex(/^ds_[a-z2-7]{20}$/, 'a dataset id looks like ds_ followed by 20 characters')
    .optional(),
  initFrom: InitFrom.optional(),
  /**
   * A job of yours whose newest checkpoint this one continues from: it is put in /results/checkpoints before the
   * container starts, where the trainer resumes (POST /v1/jobs/<id>/resume sets it).
   */
  resumeFrom: JobId.optional(),
});
export type JobInputs = z.infer<typeof JobInputs>;

export const JobSpec = z.strictObject({
  manifest: z.string().regex(/^[a-z][a-z0-9-]{1,62}$/, 'a recipe id, e.g. bert-finetune-squad or custom'),
  /** What the run is, for people: shown in lists and on the job's page, and searched by the dashboard. */
  name: z.string().trim().min(1).max(128).optional(),
  /** Free text about the run (why, what changed); shown on its page. */
  notes: z.string().max(4096).optional(),
  params: z.record(z.string(), z.unknown()).default({}),
  resources: Resources.default({}),
  labels: labels.optional(),
  inputs: JobInputs.optional(),
  /** Seconds the container may run before it is stopped (SIGTERM, grace, SIGKILL) and the attempt ends as TIMEOUT. */
  maxRuntime: z
    .number()
    .int()
    .min(1)
    .max(30 * 86_400)
    .optional(),
  /**
   * Which waiting jobs start first: `high`, then `normal` (the default), then `low`, oldest first within a level. A
   * waiting job moves up a level for every BERTH_PRIORITY_AGING_S (default 1800) it waits, so none waits for ever.
   */
  priority: z.enum(['low', 'normal', 'high']).optional(),
  /** Seconds the job may wait in the queue before it ends as EXPIRED. */
  queueTtl: z
    .number()
    .int()
    .min(1)
    .max(30 * 86_400)
    .optional(),
  /**
   * Extra attempts for failures of the job itself (EXIT_NONZERO, INCOMPLETE_RESULT, OOM_KILLED). Infrastructure
   * failures (WORKER_LOST, INFRA_ERROR, a registry that kept failing) are retried by the worker's own policy.
   */
  retries: z
    .strictObject({
      onFailure: z.number().int().min(0).max(10).default(0),
      onOom: z.number().int().min(0).max(10).default(0),
    })
    .optional(),
});
export type JobSpec = z.infer<typeof JobSpec>;
export type JobSpecInput = z.input<typeof JobSpec>;

export const StateChange = z.object({
  state: JobState,
  at: z.string(),
  attempt: z.number().int(),
  reason: FailureReason.optional(),
  message: z.string().optional(),
});
export type StateChange = z.infer<typeof StateChange>;

/** One member of a multi-node attempt: rank 0 is the head, whose address is MASTER_ADDR. */
export const GangMember = z.object({
  rank: z.number().int().min(0),
  worker: z.string(),
  gpus: z.array(z.string()),
  /** The address the other members reach it at. */
  address: z.string(),
  container: z.string(),
  /** How the member's container is doing: `running`, or how it ended (a member stopped for another's end failed). */
  state: JobState.optional(),
  exitCode: z.number().int().optional(),
  reason: FailureReason.optional(),
  message: z.string().optional(),
});
export type GangMember = z.infer<typeof GangMember>;

/** One try at running the job: where it ran, on which GPUs, and how it ended. */
export const AttemptRecord = z.object({
  attempt: z.number().int().min(1),
  worker: z.string(),
  /** Device ids (GPU UUIDs) the attempt was given; empty for a CPU job. */
  gpus: z.array(z.string()),
  startedAt: z.string(),
  finishedAt: z.string().optional(),
  state: JobState.optional(),
  reason: FailureReason.optional(),
  message: z.string().optional(),
  exitCode: z.number().int().optional(),
  /** A multi-node attempt's members, rank order (the head, rank 0, is `worker`). */
  members: z.array(GangMember).optional(),
});
export type AttemptRecord = z.infer<typeof AttemptRecord>;

/** Why a queued job has not started, computed when it is read. */
export const QueuePlace = z.object({
  /** 1 = next to start. */
  position: z.number().int().min(1),
  reason: z.string(),
  /** False when no live worker has enough GPUs for the job. */
  placeable: z.boolean(),
});
export type QueuePlace = z.infer<typeof QueuePlace>;

export const JobRecord = z.object({
  id: JobId,
  /** The user who submitted it (usr_…): only they and admins see it. */
  owner: z.string(),
  spec: JobSpec,
  state: JobState,
  attempt: z.number().int().min(0),
  createdAt: z.string(),
  updatedAt: z.string(),
  startedAt: z.string().optional(),
  finishedAt: z.string().optional(),
  reason: FailureReason.optional(),
  message: z.string().optional(),
  exitCode: z.number().int().optional(),
  worker: z.string().optional(),
  container: z.string().optional(),
  /** Final figures the job reported (final_loss, F1, exact_match, throughput…), from its last attempt. */
  summary: z.record(z.string(), z.number()).optional(),
  /** Every attempt, oldest first, each with its outcome. */
  attempts: z.array(AttemptRecord).default([]),
  history: z.array(StateChange),
  /** Only on a queued job: its place in the queue and why it waits. */
  queue: QueuePlace.optional(),
});
export type JobRecord = z.infer<typeof JobRecord>;

/** A new job's record, as it enters the queue: no attempt yet, one history entry. */
export function newJobRecord(owner: string, spec: JobSpec, now = isoNow()): JobRecord {
  return {
    id: newJobId(),
    owner,
    spec,
    state: 'queued',
    attempt: 0,
    createdAt: now,
    updatedAt: now,
    attempts: [],
    history: [{ state: 'queued', at: now, attempt: 0 }],
  };
}
