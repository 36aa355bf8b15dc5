// The pipeline coordinator: submits each step's job once the steps it depends on succeeded (passing their artifacts
// on as initFrom), tries again later a submit refused for a passing reason, skips the steps after a failure with the
// reason, and cancels everything on request. Any API process may advance or cancel a pipeline; the pipeline's lock
// makes it one at a time, so a cancel always sees the jobs a pass submitted.
import {
  isoNow,
  BerthError,
  newPipelineId,
  terminalStates,
  type DomainAdaptParams,
  type JobState,
  type Pipeline,
  type PipelineSpec,
  type PipelineStep,
} from '@berth/contracts';
import { asRedisUnavailable, type AuthStore, type PipelineStore } from '@berth/store';
import { cancelJob, submitJob, type Cancelling, type Submitting } from '../jobs/job-service.js';
import {
  describeSubmitError,
  readStepRetries,
  SubmitRetry,
  type StepRetry,
  submitErrorMessage,
  type SubmitRetryOptions,
} from './submit-retry.js';

/** MLM pretraining on a corpus → SQuAD fine-tune from its model → ONNX export → TensorRT build → TensorRT perf. */
export function domainAdapt(p: DomainAdaptParams): PipelineStep[] {
  const resources = { gpus: p.gpus };
  return [
    {
      name: 'pretrain',
      manifest: 'bert-pretrain',
      params: {
        train_file: p.corpusFile,
        model_config: p.modelConfig,
        ...(p.pretrainSteps ? { max_steps: p.pretrainSteps } : {}),
        ...(p.gpus === 0 ? { precision: 'fp32' } : {}),
      },
      resources,
      inputs: { dataset: p.corpus },
    },
    {
      name: 'finetune',
      manifest: 'bert-finetune-squad',
      params: {
        train_file: p.squadTrainFile,
        predict_file: p.squadDevFile,
        ...(p.finetuneSteps ? { max_steps: p.finetuneSteps } : {}),
        ...(p.gpus === 0 ? { precision: 'fp32', max_seq_length: 128, doc_stride: 64 } : {}),
      },
      resources,
      inputs: { dataset: p.squad, initFrom: { step: 'pretrain', artifact: 'model' } },
    },
    {
      name: 'export',
      manifest: 'bert-export-onnx',
      params: {},
      resources: { gpus: 0 },
      inputs: { initFrom: { step: 'finetune', artifact: 'model' } },
    },
    {
      name: 'trt-build',
      manifest: 'tensorrt-build',
      params: {},
      resources: { gpus: 1 },
      inputs: { initFrom: { step: 'export', artifact: 'model.onnx' } },
      requires: 'gpu',
    },
    {
      name: 'trt-perf',
      manifest: 'tensorrt-perf',
      params: {},
      resources: { gpus: 1 },
      inputs: { initFrom: { step: 'trt-build', artifact: 'model.engine' } },
      requires: 'gpu',
    },
  ];
}

function dependencies(step: PipelineStep): string[] {
  const from = step.inputs?.initFrom;
  return [...new Set([...(step.dependsOn ?? []), ...(from && 'step' in from ? [from.step] : [])])];
}

/** Names unique, dependencies known and earlier in the list (so there is no cycle). */
function checkSteps(steps: readonly PipelineStep[]): void {
  const issues: { path: string; message: string }[] = [];
  const seen = new Set<string>();
  steps.forEach((step, i) => {
    if (seen.has(step.name)) issues.push({ path: `steps.${i}.name`, message: `two steps are named ${step.name}` });
    for (const dep of dependencies(step)) {
      if (!seen.has(dep))
        issues.push({ path: `steps.${i}`, message: `depends on ${dep}, which is not an earlier step` });
    }
    seen.add(step.name);
  });
  if (issues.length > 0) throw new BerthError('VALIDATION_FAILED', 'the pipeline is invalid', { issues });
}

const failedStates: ReadonlySet<string> = new Set(['failed', 'cancelled']);

export interface PipelineOptions {
  /** When a step whose submit was refused for a passing reason is tried again, and for how long. */
  retry?: SubmitRetryOptions;
  /**
   * How long a cancel waits for a pass of the coordinator that holds the pipeline (default 45 s: longer than an
   * unrenewed lock lives, so a holder that died is outwaited).
   */
  cancelWaitMs?: number;
}

/** The Idempotency-Key of a step's submit: one job per step, however often the submit is tried. */
const stepKey = (pipelineId: string, step: string) => `pipeline:${pipelineId}:${step}`;

/** What the coordinator reads and writes besides its own store: it submits and cancels as its owners would. */
export interface Coordinating extends Submitting, Cancelling {
  authStore: Pick<AuthStore, 'user'>;
}

export class Pipelines {
  private readonly retry: SubmitRetry;
  private readonly cancelWaitMs: number;

  constructor(
    private readonly deps: Coordinating,
    readonly store: PipelineStore,
    options: PipelineOptions = {},
  ) {
    this.retry = new SubmitRetry(options.retry);
    this.cancelWaitMs = options.cancelWaitMs ?? 45_000;
  }

  async create(spec: PipelineSpec, owner: string): Promise<Pipeline> {
    const definition = 'template' in spec ? domainAdapt(spec.params) : spec.steps;
    checkSteps(definition);
    const now = isoNow();
    const pipeline: Pipeline = {
      id: newPipelineId(),
      owner,
      name: spec.name ?? ('template' in spec ? spec.template : 'pipeline'),
      state: 'running',
      createdAt: now,
      updatedAt: now,
      steps: definition.map((s) => ({ name: s.name, state: 'waiting' })),
      definition,
    };
    await this.store.save(pipeline);
    await this.advance(pipeline.id);
    return (await this.store.get(pipeline.id))!;
  }

  /** Advances every running pipeline; called by the API's housekeeping timer. */
  async sweep(): Promise<void> {
    for (const id of await this.store.active()) await this.advance(id).catch(() => {});
  }

  async advance(id: string): Promise<void> {
    await this.store.withLock(id, async () => {
      const stored = await this.store.getWithRetries(id);
      if (!stored || stored.pipeline.state !== 'running') return;
      const p = stored.pipeline;
      const retries = readStepRetries(stored.retries);
      const byName = new Map(p.steps.map((s) => [s.name, s]));
      const gpuWorker = (await this.deps.workers.list()).some((w) => w.status === 'live' && w.gpus.length > 0);
      for (const [i, step] of p.steps.entries()) {
        const def = p.definition[i]!;
        if (step.job && !terminalStates.has(step.state as JobState)) {
          const job = await this.deps.store.get(step.job);
          if (job) step.state = job.state;
          continue;
        }
        if (step.state !== 'waiting') continue;
        const deps = dependencies(def).map((d) => byName.get(d)!);
        const broken = deps.find((d) => failedStates.has(d.state) || d.skip === 'after-failure');
        if (broken) {
          Object.assign(step, {
            state: 'skipped',
            skip: 'after-failure',
            reason: `step ${broken.name} did not succeed (${broken.state})`,
          });
          continue;
        }
        const moot = deps.find((d) => d.skip === 'not-applicable');
        if (moot) {
          Object.assign(step, { state: 'skipped', skip: 'not-applicable', reason: `step ${moot.name} was skipped` });
          continue;
        }
        if (!deps.every((d) => d.state === 'succeeded')) continue;
        if (def.requires === 'gpu' && !gpuWorker) {
          Object.assign(step, {
            state: 'skipped',
            skip: 'not-applicable',
            reason: 'no live worker has a GPU, and this step needs one (TensorRT runs only on NVIDIA GPUs)',
          });
          continue;
        }
        if (!this.retry.due(retries.get(step.name), Date.now())) continue;
        await this.submit(def, step, byName, p, retries);
      }
      for (const step of p.steps) if (step.state !== 'waiting') retries.delete(step.name);
      p.state = pipelineState(p);
      p.updatedAt = isoNow();
      await this.store.save(p, Object.fromEntries(retries));
    });
  }

  /**
   * Cancels every step not yet ended. It waits for the lock a pass of the coordinator holds and reads the pipeline
   * only then, so a step that pass submitted is seen with its job, and that job is cancelled too.
   */
  async cancel(id: string): Promise<Pipeline> {
    await this.load(id);
    const done = await this.store.withLock(
      id,
      async () => {
        const p = await this.store.get(id);
        if (!p || p.state !== 'running') return true;
        for (const step of p.steps) {
          // A process that died between a submit and its save left the job unnamed; its Idempotency-Key names it.
          if (!step.job && step.state === 'waiting') {
            const job = await this.store.submittedJob(p.owner, stepKey(p.id, step.name));
            if (job) Object.assign(step, { job, state: 'queued', reason: undefined });
          }
          if (step.job && !terminalStates.has(step.state as JobState)) {
            const job = await this.deps.store.get(step.job!);
            if (job && !terminalStates.has(job.state)) {
              const ended = await cancelJob(this.deps, job);
              step.state = ended ? ended.state : job.state;
            } else if (job) {
              step.state = job.state;
            }
          } else if (step.state === 'waiting') {
            step.state = 'cancelled';
            step.reason = 'the pipeline was cancelled';
          }
        }
        p.state = 'cancelled';
        p.updatedAt = isoNow();
        await this.store.save(p);
        return true;
      },
      { waitMs: this.cancelWaitMs },
    );
    // Only a holder whose every Redis call crawls keeps renewing the lock this long: the store is as good as gone.
    if (!done) throw new BerthError('REDIS_UNAVAILABLE', 'the pipeline is still being advanced; try again shortly');
    return this.load(id);
  }

  async load(id: string): Promise<Pipeline> {
    const p = /^pl_[a-z2-7]{20}$/.test(id) ? await this.store.get(id) : null;
    if (!p) throw new BerthError('PIPELINE_NOT_FOUND', `no pipeline ${id}`);
    return p;
  }

  /** Newest first; only this owner's when one is named. */
  async list(owner: string | undefined): Promise<Pipeline[]> {
    const all = await this.store.list();
    return all.filter((p) => !owner || p.owner === owner);
  }

  /** A step's job is its pipeline owner's, within their quotas; the step's name keys it, so it is never sent twice. */
  private async submit(
    def: PipelineStep,
    step: Pipeline['steps'][number],
    byName: Map<string, { job?: string | undefined }>,
    pipeline: Pipeline,
    retries: Map<string, StepRetry>,
  ) {
    const ownerId = pipeline.owner;
    const { name: _name, dependsOn: _deps, requires: _requires, inputs, ...spec } = def;
    const from = inputs?.initFrom;
    const initFrom = from && 'step' in from ? { job: byName.get(from.step)!.job!, artifact: from.artifact } : from;
    try {
      const owner = await this.deps.authStore.user(ownerId);
      if (!owner) throw new BerthError('USER_NOT_FOUND', `the pipeline's owner ${ownerId} no longer exists`);
      const { record: job } = await submitJob(
        this.deps,
        {
          ...spec,
          labels: { ...spec.labels, 'berth.step': def.name },
          ...(inputs
            ? { inputs: { ...(inputs.dataset ? { dataset: inputs.dataset } : {}), ...(initFrom ? { initFrom } : {}) } }
            : {}),
        },
        owner,
        stepKey(pipeline.id, def.name),
      );
      step.job = job.id;
      step.state = job.state;
      delete step.reason;
      retries.delete(def.name);
    } catch (thrown) {
      // Redis being away reads as it does to a client (REDIS_UNAVAILABLE), not as an unexpected failure.
      const err = asRedisUnavailable(thrown) ?? thrown;
      const now = Date.now();
      const previous = retries.get(def.name);
      const error = describeSubmitError(err);
      const transient = SubmitRetry.transient(err);
      const next = transient ? this.retry.next(previous, error, now) : null;
      if (next) {
        retries.set(def.name, next);
        step.reason = this.retry.waitingReason(next, now);
        return;
      }
      retries.delete(def.name);
      step.state = 'failed';
      step.reason = transient
        ? this.retry.gaveUpReason(previous, error, now)
        : `could not submit: ${submitErrorMessage(err)}`;
    }
  }
}

function pipelineState(p: Pipeline): Pipeline['state'] {
  const done = (s: { state: string }) => terminalStates.has(s.state as JobState) || s.state === 'skipped';
  if (!p.steps.every(done)) return 'running';
  const failed = p.steps.some((s) => failedStates.has(s.state) || s.skip === 'after-failure');
  return failed ? 'failed' : 'succeeded';
}
