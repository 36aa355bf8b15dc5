// Pipelines: jobs that depend on each other and pass artifacts along (pretrain → fine-tune → export → TensorRT).
import { z } from 'zod';
import { JobId, JobSpec, JobState } from './job.js';

const stepName = z.string().regex(/^[a-z][a-z0-9-]{0,31}$/, 'step names are lowercase letters, digits and -');

/** A step's initFrom may name an earlier step instead of a job: its job's artifact once it succeeded. */
export const StepInitFrom = z.union([
  z.strictObject({ step: stepName, artifact: z.string().min(1).max(1024).optional() }),
  z.strictObject({ job: JobId, artifact: z.string().min(1).max(1024).optional() }),
]);

export const PipelineStep = JobSpec.omit({ inputs: true }).extend({
  name: stepName,
  inputs: z
    .strictObject({
      dataset: z
        .string()
        .regex(/^ds_[a-z2-7]{20}$/)
        .optional(),
      initFrom: StepInitFrom.optional(),
    })
    .optional(),
  /** Steps that must succeed first (a step named in initFrom is one implicitly). */
  dependsOn: z.array(stepName).max(32).optional(),
  /** `gpu`: the step needs a GPU worker; where none is live, it is skipped with that reason, not failed. */
  requires: z.enum(['gpu']).optional(),
});
export type PipelineStep = z.infer<typeof PipelineStep>;

export const DomainAdaptParams = z.strictObject({
  /** Dataset (format corpus) to adapt BERT to with masked-LM pretraining. */
  corpus: z.string().regex(/^ds_[a-z2-7]{20}$/),
  /** Dataset (format squad) to fine-tune question answering on. */
  squad: z.string().regex(/^ds_[a-z2-7]{20}$/),
  corpusFile: z.string().default('corpus.txt'),
  squadTrainFile: z.string().default('train.json'),
  squadDevFile: z.string().default('dev.json'),
  modelConfig: z.enum(['tiny', 'mini', 'base', 'large']).default('base'),
  pretrainSteps: z.number().int().min(1).optional(),
  finetuneSteps: z.number().int().min(1).optional(),
  /** GPUs per training step; 0 runs the CPU image. */
  gpus: z.number().int().min(0).max(8).default(1),
});
export type DomainAdaptParams = z.infer<typeof DomainAdaptParams>;

export const PipelineSpec = z.union([
  z.strictObject({ name: z.string().min(1).max(200), steps: z.array(PipelineStep).min(1).max(32) }),
  z.strictObject({
    name: z.string().min(1).max(200).optional(),
    template: z.literal('domain-adapt'),
    params: DomainAdaptParams,
  }),
]);
export type PipelineSpec = z.infer<typeof PipelineSpec>;

export const StepState = z.union([JobState, z.enum(['waiting', 'skipped'])]);
export type StepState = z.infer<typeof StepState>;

export const PipelineStepRecord = z.object({
  name: z.string(),
  state: StepState,
  job: z.string().optional(),
  /** Why a step was skipped or could not be submitted. */
  reason: z.string().optional(),
  /** A skipped step: after a failure (the pipeline fails), or not applicable here (e.g. no GPU; it does not). */
  skip: z.enum(['after-failure', 'not-applicable']).optional(),
});

export const PipelineId = z.string().regex(/^pl_[a-z2-7]{20}$/);

export const Pipeline = z.object({
  id: PipelineId,
  /** The user who started it; its steps' jobs are theirs too. */
  owner: z.string(),
  name: z.string(),
  state: z.enum(['running', 'succeeded', 'failed', 'cancelled']),
  createdAt: z.string(),
  updatedAt: z.string(),
  steps: z.array(PipelineStepRecord),
  /** The steps as submitted (a template expanded). */
  definition: z.array(PipelineStep),
});
export type Pipeline = z.infer<typeof Pipeline>;
