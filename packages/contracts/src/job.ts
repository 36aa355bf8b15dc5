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

// registry/repo[:tag][@sha256:digest] — the docker reference grammar, lower-case repository path.
const imageRef = z
  .string()
  .max(255)
  .regex(
    /^(?:[a-zA-Z0-9.-]+(?::[0-9]+)?\/)?[a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*(?::[\w][\w.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$/,
    'not a valid image reference (registry/repository:tag[@sha256:digest])',
  );

const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'environment variable names are letters, digits and _');

export const CustomParams = z.strictObject({
  image: imageRef,
  command: z.array(z.string().max(8192)).min(1).max(256),
  env: z.record(envName, z.string().max(32768)).default({}),
});
export type CustomParams = z.infer<typeof CustomParams>;

export const Resources = z.strictObject({
  gpus: z.number().int().min(0).max(64).default(0),
});

const labels = z
  .record(z.string().regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, 'label keys are lowercase [a-z0-9._-]'), z.string().max(256))
  .refine((l) => Object.keys(l).length <= 32, 'at most 32 labels');

// The `custom` recipe is built in; the manifests issue turns `manifest` into a catalog of YAML recipes whose
// params are checked against each recipe's schema, keeping this shape.
export const JobSpec = z.strictObject({
  manifest: z.literal('custom', { error: 'unknown manifest; available: custom' }),
  params: CustomParams,
  resources: Resources.default({ gpus: 0 }),
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
