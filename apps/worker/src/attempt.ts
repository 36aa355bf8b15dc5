// One placed attempt of a job, from pull to removal: the only code that starts, stops and judges a container.
import type { ApiTarget } from './api-client.js';
import { terminalStates, type FailureReason, type JobRecord } from '@berth/contracts';
import type { Manifest } from '@berth/manifests';
import {
  endAttempt,
  type AttemptEnd,
  type Claim,
  type EventStream,
  type JobStore,
  type LogStream,
  type MetricStream,
  type NewMetric,
  type JobQueues,
  type Placement,
  ownerToken,
  type RetryPolicy,
  untilRedisTakes,
} from '@berth/store';
import { MetricLineParser, summaryMetricNames } from '@berth/telemetry';
import { cp, mkdir, readdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Logger } from 'pino';
import { overBudgetMessage, ResultsTree, type ResultsBudget, type ResultsScan } from './artifacts/results-tree.js';
import { ArtifactUploader, AttemptFenced } from './artifacts/uploader.js';
import type { InputCache } from './inputs/input-cache.js';
import {
  LaunchError,
  type AttemptResult,
  type ContainerRuntime,
  type ImageSource,
} from './executor/container-runtime.js';
import { containerName, logFile, renderAttempt } from './executor/render.js';
import { GpuSampler } from './gpu/sampler.js';
import type { GpuTelemetry } from './gpu/telemetry.js';
import type { WorkerMetrics } from './observability/worker-metrics.js';
import { dlloggerPrefixes, judge, MetricNames, StderrTail } from './executor/success.js';
import { parseMark } from './pump/log-cursor.js';
import { countLogFileLines, LogPump } from './pump/log-pump.js';

export interface AttemptContext {
  store: JobStore;
  logs: LogStream;
  metrics: MetricStream;
  events: EventStream;
  placement: Placement;
  queues: JobQueues;
  /** The BullMQ lock token this worker takes attempts under. */
  lockToken: string;
  runtime: ContainerRuntime;
  images: ImageSource;
  manifests: ReadonlyMap<string, Manifest>;
  workerId: string;
  prefix: string;
  dataDir: string;
  wholeHost: boolean;
  retry: RetryPolicy;
  /** Seconds between SIGTERM and SIGKILL when a job is cancelled or times out. */
  stopGraceSeconds: number;
  /** Samples the attempt's GPUs while it runs; absent where nvidia-smi can't run. */
  gpuTelemetry?: GpuTelemetry;
  /** Metric points kept per job in Redis. */
  metricCap: number;
  observe: WorkerMetrics;
  /** Datasets and other jobs' artifacts, fetched once and cached. */
  inputs: InputCache;
  /** Where results are uploaded (the API). */
  api: ApiTarget;
  /** How often /results is scanned (budget, complete checkpoints to upload) while the job runs. */
  uploadIntervalMs: number;
  /** What one attempt may leave under /results. */
  resultsBudget: ResultsBudget;
  /** Log text an attempt may hold in memory while Redis does not take it (BERTH_WORKER_BUFFER_BYTES). */
  logBufferBytes: number;
  logger: Logger;
}

/**
 * Why berth stopped a container itself: the user cancelled, maxRuntime passed, /results outgrew its budget, or the job
 * moved on (fenced).
 */
type StopCause = 'CANCELLED' | 'TIMEOUT' | 'RESULTS_TOO_LARGE' | 'FENCED';

export class Attempt {
  readonly owner: string;
  readonly name: string;
  private stopCause: StopCause | undefined;
  /** What a scan found over budget, for the job's record. */
  private overBudget: ResultsScan['over'];
  private readonly pullAbort = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private sampler: GpuSampler | undefined;
  private uploads: NodeJS.Timeout | undefined;
  /** Cached input folders this attempt mounts, released when it ends. */
  private readonly held: string[] = [];
  /** The container's last stderr lines, for the message of a failure (verdict). */
  private readonly stderr = new StderrTail();
  /** Final figures the run reported (DLLogger summaries etc.), copied onto the job record at the end. */
  private readonly summary: Record<string, number> = {};
  private readonly log: Logger;

  constructor(
    private readonly ctx: AttemptContext,
    readonly claim: Claim,
  ) {
    this.owner = ownerToken(ctx.workerId, claim.attempt);
    this.name = containerName(claim.jobId, claim.attempt);
    this.log = ctx.logger.child({ jobId: claim.jobId, attempt: claim.attempt });
  }

  get jobId(): string {
    return this.claim.jobId;
  }

  /** Stops the attempt: its container gets SIGTERM, then SIGKILL after the grace period. */
  stop(cause: StopCause, graceSeconds = this.ctx.stopGraceSeconds): void {
    if (this.stopCause) return;
    this.stopCause = cause;
    this.log.info({ cause }, 'stopping the attempt');
    this.pullAbort.abort();
    this.ctx.runtime.stop(this.name, graceSeconds).catch((err: unknown) => {
      this.log.warn({ err }, 'stop failed; the container may still be running');
    });
  }

  /**
   * A write of the attempt's progress or outcome, retried while Redis is away or full: it is delayed, never lost,
   * and never the reason a running container is stopped.
   */
  private persist<T>(op: () => Promise<T>): Promise<T> {
    return untilRedisTakes(op, (err, tries) => {
      if (tries === 1 || tries % 20 === 0) this.log.warn({ err, tries }, 'Redis did not take a write; retrying');
    });
  }

  /** Runs the attempt to its end and records it; never throws. */
  async run(): Promise<void> {
    try {
      const end = await this.execute();
      if (end) await this.finish(end);
      else await this.abandon();
    } catch (err) {
      this.log.error({ err }, 'attempt could not be recorded; the job stays placed here until this worker restarts');
    } finally {
      clearTimeout(this.timer);
      this.sampler?.stop();
      clearInterval(this.uploads);
      for (const dir of this.held) this.ctx.inputs.release(dir);
    }
  }

  private async execute(): Promise<AttemptEnd | null> {
    const { store, runtime } = this.ctx;
    const { jobId, attempt, devices } = this.claim;
    const job = await store.get(jobId);
    if (!job || terminalStates.has(job.state)) return null;
    let current: JobRecord = job;

    if (job.attempts.at(-1)?.attempt !== attempt) {
      const placed = await this.persist(() =>
        store.transition(
          jobId,
          {
            state: 'pulling',
            attempt,
            worker: this.ctx.workerId,
            container: this.name,
            newAttempt: { worker: this.ctx.workerId, gpus: devices },
          },
          { owner: this.owner },
        ),
      );
      if (typeof placed === 'string') return null;
      current = placed;
    }
    if (await this.persist(() => store.cancelRequested(jobId))) return cancelled();

    let pump: LogPump | undefined;
    try {
      const inputs = await this.fetchInputs(current);
      const { manifest, launch } = renderAttempt(this.ctx.manifests, current, {
        attempt,
        workerId: this.ctx.workerId,
        prefix: this.ctx.prefix,
        dataDir: this.ctx.dataDir,
        gpus: this.ctx.wholeHost ? 'all' : devices,
        inputs,
      });
      if (!(await runtime.exists(this.name))) {
        // A container that had run and is gone is never made again under the same attempt: that would run the job
        // twice. Its log file says whether a `starting` attempt's container had started before its worker went.
        const ran =
          current.state === 'running' ||
          current.state === 'uploading' ||
          (current.state === 'starting' && (await countLogFileLines(logFile(this.ctx.dataDir, jobId, attempt))) > 0);
        if (ran) {
          return infra(
            `the container disappeared while its worker was away (the attempt was ${current.state}); its exit ` +
              'code is unknown',
          );
        }
        await this.pull(launch.image);
        if (this.stopCause) return this.stoppedEnd();
        await this.seedCheckpoint(manifest, current, launch.resultsDir);
        const starting = await this.persist(() =>
          store.transition(jobId, { state: 'starting' }, { owner: this.owner }),
        );
        if (typeof starting === 'string') return null;
      }
      // onLine sees skipped lines too: a re-attached worker still learns every metric the attempt reported.
      const metrics = new MetricNames(dlloggerPrefixes(manifest));
      const parser = new MetricLineParser(
        manifest.metrics.filter((r) => !r.file),
        current.spec.params,
      );
      // A re-attached worker reads the container's log again from the mark the last writer stored (or from the
      // start, where there is none) and skips what Redis and the log file already hold past it.
      const stored = await this.persist(() => this.ctx.logs.storedMark(jobId, attempt));
      const from = parseMark(stored.mark);
      const startLine = from?.lines ?? 0;
      const file = logFile(this.ctx.dataDir, jobId, attempt);
      pump = new LogPump(this.ctx.logs, jobId, attempt, {
        skip: Math.max(0, stored.stored - startLine),
        startLine,
        file: { path: file, skip: Math.max(0, (await countLogFileLines(file)) - startLine) },
        onLine: (text, stream) => {
          metrics.observe(text);
          if (stream === 'stderr') this.stderr.push(text);
          this.ctx.observe.logLines.inc();
          this.ctx.observe.logBytes.inc(Buffer.byteLength(text));
        },
        parse: (text, time) => {
          const points = parser.parse(text);
          if (points.length === 0) return [];
          return points.map((p): NewMetric => ({ ...p, time }));
        },
        onPoint: (p) => {
          if (p.kind === 'summary' || summaryMetricNames.includes(p.name)) this.summary[p.name] = p.value;
        },
        bufferChars: this.ctx.logBufferBytes,
        onRetry: (err, tries) => {
          if (tries === 1 || tries % 20 === 0) {
            this.log.warn({ err, tries }, 'Redis did not take log lines; the container runs on, retrying');
          }
        },
      });
      const output = pump;
      await mkdir(launch.resultsDir, { recursive: true });
      const results = new ResultsTree(launch.resultsDir, this.ctx.resultsBudget);
      const uploader = new ArtifactUploader(this.ctx.api, jobId, attempt, results, manifest.artifacts);
      this.watchResults(results, uploader);
      const result = await runtime.run(
        launch,
        {
          onRunning: async () => {
            // A stop that came while the container was being created found nothing to stop: repeat it now.
            if (this.stopCause) await runtime.stop(this.name, this.ctx.stopGraceSeconds);
            const running =
              current.state === 'running'
                ? current
                : await this.persist(() => store.transition(jobId, { state: 'running' }, { owner: this.owner }));
            if (typeof running === 'string') this.stop('FENCED');
            else {
              if (current.state !== 'running') this.ctx.observe.queueWait.observe(queuedFor(running));
              this.armTimeout(running);
              this.sampleGpus(devices);
            }
            this.log.info({ container: this.name }, 'container running');
          },
          onOutput: (stream, chunk, position) => output.write(stream, chunk, position),
        },
        from?.position,
      );
      await pump.close();
      clearInterval(this.uploads);
      const scan = await results.scan();
      if (scan.over && !this.stopCause) {
        this.overBudget = scan.over;
        this.stopCause = 'RESULTS_TOO_LARGE';
      }
      const end = await this.verdict(manifest, launch, result, metrics, { tree: results, scan });
      if (!end) return end;
      // Results of a failed or cancelled run are kept too: its last checkpoint is what a retry or a user needs.
      const uploading = await this.persist(() =>
        store.transition(jobId, { state: 'uploading' }, { owner: this.owner }),
      );
      if (typeof uploading === 'string') return null;
      try {
        if (scan.over) {
          // Only the log goes up, and the tree goes from the host: it is what filled the disk.
          await uploader.uploadAll({ files: [], bytes: 0, entries: 0 }, file);
          await rm(launch.resultsDir, { recursive: true, force: true });
        } else await uploader.uploadAll(scan, file);
      } catch (err) {
        // The job moved on without this attempt: nothing more of it may be recorded.
        if (err instanceof AttemptFenced) return null;
        if (end.state !== 'succeeded') return end;
        const reason: FailureReason = err instanceof LaunchError ? err.reason : 'ARTIFACT_UPLOAD_FAILED';
        return { ...end, state: 'failed', reason, message: err instanceof Error ? err.message : String(err) };
      }
      return end;
    } catch (err) {
      await pump?.close().catch(() => {});
      if (this.stopCause) return this.stoppedEnd();
      const reason: FailureReason = err instanceof LaunchError ? err.reason : 'INFRA_ERROR';
      this.log.error({ err }, 'attempt failed before the container finished');
      return { state: 'failed', reason, message: err instanceof Error ? err.message : String(err) };
    }
  }

  private async pull(image: string): Promise<void> {
    const { events } = this.ctx;
    const { jobId, attempt } = this.claim;
    let bytes = 0;
    const outcome = await this.ctx.images
      .ensure(
        image,
        (progress) => {
          bytes = progress.bytesDone;
          events.add(jobId, attempt, 'pull-progress', { image, ...progress }).catch(() => {});
        },
        this.pullAbort.signal,
      )
      .catch((err: unknown) => {
        this.ctx.observe.pulls.inc({ result: 'failed' });
        throw err;
      });
    this.ctx.observe.pulls.inc({ result: outcome });
    this.ctx.observe.pullBytes.inc(bytes);
    if (outcome === 'pulled') await events.add(jobId, attempt, 'pull-done', { image });
  }

  /**
   * Puts the checkpoint this attempt continues from into its /results/checkpoints, where the trainer resumes: the
   * newest of the job named by inputs.resumeFrom (berth resume), or, for a recipe that resumes, the newest of this
   * job's previous attempt (a retry). Nothing when there is none: the attempt starts from the beginning.
   */
  private async seedCheckpoint(manifest: Manifest, job: JobRecord, resultsDir: string): Promise<void> {
    const { attempt } = this.claim;
    const resumeFrom = job.spec.inputs?.resumeFrom;
    const from = resumeFrom
      ? { job: resumeFrom }
      : manifest.retry.resumes && attempt > 1
        ? { job: job.id, attempt: attempt - 1 }
        : undefined;
    if (!from) return;
    const entry = await this.ctx.inputs.checkpoint(from.job, from.attempt);
    if (!entry) return;
    this.held.push(entry);
    // The entry holds the checkpoint's own folder (step-…), as the API's tar names it.
    const [step] = await readdir(entry);
    if (!step) return;
    const target = join(resultsDir, 'checkpoints', step);
    await mkdir(dirname(target), { recursive: true });
    await cp(join(entry, step), target, { recursive: true, force: false, errorOnExist: false });
  }

  /** The job's dataset and initFrom artifact as local folders (fetched unless cached). */
  private async fetchInputs(job: JobRecord): Promise<{ data?: string; init?: string }> {
    const { dataset, initFrom } = job.spec.inputs ?? {};
    const out: { data?: string; init?: string } = {};
    if (dataset) {
      out.data = await this.ctx.inputs.dataset(dataset);
      this.held.push(out.data);
    }
    if (initFrom) {
      // The API names the artifact in the record at submit (checkInputs); `latest` was the default before it did.
      out.init = await this.ctx.inputs.artifact(initFrom.job, initFrom.artifact ?? 'latest');
      this.held.push(out.init);
    }
    return out;
  }

  private async verdict(
    manifest: Manifest,
    launch: { memoryBytes?: number },
    result: AttemptResult,
    metrics: MetricNames,
    results: { tree: ResultsTree; scan: ResultsScan },
  ): Promise<AttemptEnd | null> {
    if (this.stopCause) return this.stoppedEnd(result.exitCode);
    if (result.oomKilled) {
      return {
        state: 'failed',
        reason: 'OOM_KILLED',
        message: this.stderr.explain(
          `the container used more than its memory limit${launch.memoryBytes ? ` (${launch.memoryBytes} bytes)` : ''} and was killed`,
        ),
        exitCode: result.exitCode,
      };
    }
    if (result.engineOutage && result.exitCode !== 0) {
      return {
        state: 'failed',
        reason: 'INFRA_ERROR',
        message:
          `the Docker engine went away while the job ran and the container ended with exit code ${result.exitCode}: ` +
          'it most likely died with the engine. Run dockerd with "live-restore": true so jobs outlive engine restarts.',
        exitCode: result.exitCode,
      };
    }
    const verdict = await judge(manifest, result.exitCode, results, metrics);
    return verdict.ok
      ? { state: 'succeeded', exitCode: result.exitCode }
      : {
          state: 'failed',
          reason: verdict.reason,
          message: this.stderr.explain(verdict.message),
          exitCode: result.exitCode,
        };
  }

  /** While the job runs, /results is scanned one scan at a time: past its budget it stops, else checkpoints go up. */
  private watchResults(results: ResultsTree, uploader: ArtifactUploader): void {
    let busy = false;
    this.uploads = setInterval(() => {
      if (busy) return;
      busy = true;
      results
        .scan()
        .then((scan) => {
          if (!scan.over) return uploader.uploadCheckpoints(scan);
          this.overBudget = scan.over;
          // No grace: every second of it is more written to the host's disk.
          this.stop('RESULTS_TOO_LARGE', 0);
          return 0;
        })
        .catch((err: unknown) => {
          if (err instanceof AttemptFenced) this.stop('FENCED');
          else this.log.warn({ err }, 'checkpoint upload failed; retrying at the next scan or the end');
        })
        .finally(() => (busy = false));
    }, this.ctx.uploadIntervalMs);
    this.uploads.unref();
  }

  /** GPU utilisation, memory, power and temperature of this attempt's GPUs into its metrics, while it runs. */
  private sampleGpus(devices: readonly string[]): void {
    const telemetry = this.ctx.gpuTelemetry;
    if (!telemetry || this.sampler) return;
    this.sampler = new GpuSampler(
      telemetry,
      devices,
      (points) => this.ctx.metrics.add(this.jobId, this.claim.attempt, points, this.ctx.metricCap),
      this.log,
    );
    this.sampler.start();
  }

  /** maxRuntime counts from the moment the container first ran, across worker restarts. */
  private armTimeout(job: JobRecord): void {
    const limit = job.spec.maxRuntime;
    if (limit === undefined || this.timer) return;
    const startedAt = job.startedAt ? Date.parse(job.startedAt) : Date.now();
    const left = Math.max(0, startedAt + limit * 1000 - Date.now());
    this.timer = setTimeout(() => {
      this.persist(() =>
        this.ctx.events.add(this.jobId, this.claim.attempt, 'timeout', {
          maxRuntime: limit,
          graceSeconds: this.ctx.stopGraceSeconds,
        }),
      ).catch(() => {});
      this.stop('TIMEOUT');
    }, left);
    this.timer.unref();
  }

  private stoppedEnd(exitCode?: number): AttemptEnd | null {
    const code = exitCode === undefined ? {} : { exitCode };
    switch (this.stopCause) {
      case 'CANCELLED':
        return { ...cancelled(), ...code };
      case 'TIMEOUT':
        return {
          state: 'failed',
          reason: 'TIMEOUT',
          message: 'the job ran longer than its maxRuntime and was stopped',
          ...code,
        };
      case 'RESULTS_TOO_LARGE':
        return { state: 'failed', reason: 'RESULTS_TOO_LARGE', message: overBudgetMessage(this.overBudget!), ...code };
      default:
        // Fenced: the job was moved to another worker; this one must not write anything.
        return null;
    }
  }

  private async finish(end: AttemptEnd): Promise<void> {
    const { store, runtime, events } = this.ctx;
    const job = await this.persist(() => store.get(this.jobId));
    if (!job) return;
    const hints = this.ctx.manifests.get(job.spec.manifest)?.retry;
    this.sampler?.stop();
    const summary = Object.keys(this.summary).length > 0 ? { summary: this.summary } : {};
    const ender = { store, queues: this.ctx.queues, token: this.ctx.lockToken };
    const recorded = await this.persist(() =>
      endAttempt(ender, job, this.owner, { ...end, ...summary }, this.ctx.retry, hints),
    );
    if (job.startedAt && job.attempts.at(-1)?.attempt === this.claim.attempt) {
      this.ctx.observe.runTime.observe(
        { outcome: end.reason ?? end.state },
        (Date.now() - Date.parse(job.startedAt)) / 1000,
      );
    }
    if (typeof recorded === 'string') {
      this.log.warn({ refusal: recorded }, 'the job moved on while this attempt ran; its outcome is dropped');
    } else {
      if (recorded.state === 'queued') {
        await events.add(this.jobId, this.claim.attempt, 'retry', {
          reason: end.reason,
          nextAttempt: this.claim.attempt + 1,
        });
      }
      this.log.info({ state: recorded.state, reason: end.reason, exitCode: end.exitCode }, 'attempt finished');
    }
    // Only now, with exit code, OOM flag and every line recorded, may the container go.
    await runtime.remove(this.name);
  }

  /** The job ended or moved on without this attempt: its container and its hold on this worker go. */
  private async abandon(): Promise<void> {
    await this.ctx.runtime.remove(this.name);
    await this.ctx.placement.forget(this.ctx.workerId, this.jobId, this.claim.attempt);
  }
}

/** Seconds since the job last entered the queue. */
function queuedFor(job: JobRecord): number {
  const queued = [...job.history].reverse().find((h) => h.state === 'queued');
  return (Date.now() - Date.parse(queued?.at ?? job.createdAt)) / 1000;
}

function cancelled(): AttemptEnd {
  return { state: 'cancelled', reason: 'CANCELLED', message: 'cancelled by request' };
}

function infra(message: string): AttemptEnd {
  return { state: 'failed', reason: 'INFRA_ERROR', message };
}
