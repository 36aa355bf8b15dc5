// The job contract shared by API, worker and store: what a user submits and what berth records.
import { z } from 'zod';

export const jobStates = [
  'queued',
  'pulling',
  'starting',
  'running',
  'uploading',
  'succeeded',
  'failed',
  'cancelled',
] as const;
export const JobState = z.enum(jobStates);
export type JobState = z.infer<typeof JobState>;

export const terminalStates: ReadonlySet<JobState> = new Set(['succeeded', 'failed', 'cancelled']);

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
]);
export type FailureReason = z.infer<typeof FailureReason>;

/** Public job ids: `job_` + 20 lowercase base32 characters. Never a BullMQ counter. */
export const JobId = z.string().regex(/^job_[a-z2-7]{20}$/, 'a job id looks like job_ followed by 20 characters');

export const Resources = z.strictObject({
  /** GPUs for the job; the recipe's default when left out. 0 runs the recipe's CPU image. */
  gpus: z.number().int().min(0).max(64).optional(),
});

const labels = z
  .record(z.string().regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, 'label keys are lowercase [a-z0-9._-]'), z.string().max(256))
  .refine((l) => Object.keys(l).length <= 32, 'at most 32 labels');

// `manifest` names a recipe in ngc-manifests/; `params` are checked against that recipe's parameters by the API
// (and again by the worker before it renders the launch).
export const JobSpec = z.strictObject({
  manifest: z.string().regex(/^[a-z][a-z0-9-]{1,62}$/, 'a recipe id, e.g. bert-finetune-squad or custom'),
  params: z.record(z.string(), z.unknown()).default({}),
  resources: Resources.default({}),
  labels: labels.optional(),
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

export const JobRecord = z.object({
  id: JobId,
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
  history: z.array(StateChange),
});
export type JobRecord = z.infer<typeof JobRecord>;
