// One placed attempt of a job, from pull to removal: the only code that starts, stops and judges a container.
import type { ApiTarget } from './api-client.js';
import { FailureReason, JobState, terminalStates, type GangMember, type JobRecord } from '@berth/contracts';
import type { GangPlace, Manifest } from '@berth/manifests';
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
  memberLogId,
  ownerToken,
  parseOwner,
  type GangSeat,
  type GangStop,
  type WorkerSignals,
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
  gpuTelemetry?: GpuTelemetry | undefined;
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
  /** Tells the other members of a multi-node attempt how this one ended. */
  signals: WorkerSignals;
  logger: Logger;
}

/**
 * Why berth stopped a container itself: the user cancelled, maxRuntime passed, /results outgrew its budget, or the job
 * moved on (fenced).
 */
type StopCause = 'CANCELLED' | 'TIMEOUT' | 'RESULTS_TOO_LARGE' | 'FENCED' | 'GANG';

/** How another member of this multi-node attempt ended (WorkerSignals). */
type GangEnd = Omit<GangStop, 'jobId' | 'attempt'>;

/** The port the head of a multi-node job listens on for its rendezvous (on the gang's own network). */
const gangMasterPort = 29_500;

/** The rendezvous port of a head on its host's network: one of 1000 from 29500, by job and attempt. */
function hostMasterPort(jobId: string, attempt: number): number {
  let h = 0;
  for (const c of `${jobId}#${attempt}`) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return gangMasterPort + (h % 1000);
}

/** How member `rank` ended, as the other members (and the job's reads) are told it. */
function gangEndOf(rank: number, end: AttemptEnd): GangEnd {
  return {
    rank,
    state: end.state,
    ...(end.reason ? { reason: end.reason } : {}),
    ...(end.exitCode !== undefined ? { exitCode: end.exitCode } : {}),
    ...(end.message ? { message: end.message } : {}),
  };
}

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
  /** The member whose end stopped this multi-node attempt, when one did. */
  private gangEnd: GangEnd | undefined;

  constructor(
    private readonly ctx: AttemptContext,
    readonly claim: Claim,
  ) {
    this.owner = ownerToken(ctx.workerId, claim.attempt);
    this.name = containerName(claim.jobId, claim.attempt, claim.gang?.rank);
    this.log = ctx.logger.child({
      jobId: claim.jobId,
      attempt: claim.attempt,
      ...(claim.gang ? { node: claim.gang.rank } : {}),
    });
  }

  /** A member of a multi-node attempt other than the head: it runs its container and reports, the head records. */
  get isMember(): boolean {
    return (this.claim.gang?.rank ?? 0) > 0;
  }

  /** Another member of this multi-node attempt ended: a failure (or the head's end) stops this one too. */
  gangMemberEnded(end: GangEnd): void {
    if (!this.claim.gang || end.rank === this.claim.gang.rank) return;
    if (end.rank !== 0 && end.state === 'succeeded') return;
    this.gangEnd ??= end;
    this.stop('GANG');
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
    // A member that starts after its head ended the attempt never runs, but says so on the job.
    const after = this.isMember && job ? this.afterHeadEnded(job) : null;
    if (after) return this.memberEnded(after, true);
    if (!job || terminalStates.has(job.state)) return null;
    let current: JobRecord = job;

    if (this.isMember) return this.executeMember(job);
    if (job.attempts.at(-1)?.attempt !== attempt) {
      const placed = await this.persist(() =>
        store.transition(
          jobId,
          {
            state: 'pulling',
            attempt,
            worker: this.ctx.workerId,
            container: this.name,
            newAttempt: { worker: this.ctx.workerId, gpus: devices, ...this.membersOf() },
          },
          { owner: this.owner },
        ),
      );
      if (!placed.ok) return null;
      current = placed.record;
    }
    if (await this.persist(() => store.cancelRequested(jobId))) return cancelled();

    let pump: LogPump | undefined;
    try {
      const { manifest, launch } = await this.render(current);
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
        if (!starting.ok) return null;
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
                ? { ok: true as const, record: current }
                : await this.persist(() => store.transition(jobId, { state: 'running' }, { owner: this.owner }));
            if (!running.ok) this.stop('FENCED');
            else {
              if (current.state !== 'running') this.ctx.observe.queueWait.observe(queuedFor(running.record));
              this.armTimeout(running.record);
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
      if (!uploading.ok) return null;
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
      (points) => this.ctx.metrics.add(this.jobId, this.claim.attempt, this.ofNode(points), this.ctx.metricCap),
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
      case 'GANG': {
        // The head records the member's end as the attempt's: the job failed there, not here.
        const end = this.gangEnd!;
        if (end.rank === 0) return null;
        const reason = FailureReason.safeParse(end.reason).data ?? 'INFRA_ERROR';
        const message = `node ${end.rank} ended (${end.state}${end.exitCode !== undefined ? `, exit code ${end.exitCode}` : ''}): ${end.message ?? reason}; every node was stopped`;
        return { state: 'failed', reason, message, ...code };
      }
      default:
        // Fenced: the job was moved to another worker; this one must not write anything.
        return null;
    }
  }

  private async finish(end: AttemptEnd): Promise<void> {
    if (this.isMember) return this.abandon();
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
    if (!recorded.ok) {
      this.log.warn({ refusal: recorded.refusal }, 'the job moved on while this attempt ran; its outcome is dropped');
    } else {
      if (recorded.record.state === 'queued') {
        await events.add(this.jobId, this.claim.attempt, 'retry', {
          reason: end.reason,
          nextAttempt: this.claim.attempt + 1,
        });
      }
      this.log.info({ state: recorded.record.state, reason: end.reason, exitCode: end.exitCode }, 'attempt finished');
    }
    // The head's own part: stopped for a member's end, its container did not fail; the attempt did, there.
    const own = this.stopCause === 'GANG' ? ((await this.memberStoppedEnd(end.exitCode)) ?? end) : end;
    await this.tellGang(gangEndOf(0, own));
    if (this.claim.gang) await this.persist(() => this.ctx.placement.dropGang(this.jobId, this.claim.attempt));
    // Only now, with exit code, OOM flag and every line recorded, may the container go.
    await runtime.remove(this.name);
    await this.dropGangNetwork();
  }

  /** The job ended or moved on without this attempt: its container and its hold on this worker go. */
  private async abandon(): Promise<void> {
    if (!this.isMember) await this.tellGang({ rank: 0, state: 'moved-on' });
    await this.ctx.runtime.remove(this.name);
    await this.ctx.placement.forget(this.ctx.workerId, this.jobId, this.claim.attempt);
    await this.dropGangNetwork();
  }

  /** A member's GPU series carry its node (`n1.gpu.0.utilization`): every node has a GPU 0. */
  private ofNode(points: NewMetric[]): NewMetric[] {
    const rank = this.claim.gang?.rank ?? 0;
    return rank === 0 ? points : points.map((p) => ({ ...p, name: `n${rank}.${p.name}` }));
  }

  /** The attempt's launch, with its inputs fetched (or found in the cache) and, for a gang, its member's place. */
  private async render(job: JobRecord): Promise<ReturnType<typeof renderAttempt>> {
    const inputs = await this.fetchInputs(job);
    return renderAttempt(this.ctx.manifests, job, {
      attempt: this.claim.attempt,
      workerId: this.ctx.workerId,
      prefix: this.ctx.prefix,
      dataDir: this.ctx.dataDir,
      gpus: this.ctx.wholeHost ? 'all' : this.claim.devices,
      inputs,
      ...(await this.gangPlace()),
    });
  }

  /** The members of a multi-node attempt, for its attempt record. */
  private membersOf(): { members?: GangMember[] } {
    const gang = this.claim.gang;
    if (!gang) return {};
    return {
      members: gang.members.map((m) => ({
        rank: m.rank,
        worker: parseOwner(m.token).workerId,
        gpus: m.devices,
        address: this.addressOf(m),
        container: containerName(this.jobId, this.claim.attempt, m.rank),
      })),
    };
  }

  /** Where the other members reach a member: its worker's address, or its container's name on the gang network. */
  private addressOf(m: GangSeat): string {
    return m.address || containerName(this.jobId, this.claim.attempt, m.rank);
  }

  /**
   * A multi-node member's place in the rendezvous, and the network the members share; nothing for one host. Members
   * whose workers all gave an address (BERTH_WORKER_ADDRESS: on several hosts) run on the host's network, reaching
   * each other at those addresses; others share their engine's gang network.
   */
  private async gangPlace(): Promise<{ gang?: GangPlace & { network: string } }> {
    const gang = this.claim.gang;
    if (!gang) return {};
    const addresses = gang.members.map((m) => this.addressOf(m));
    const place = { nodeRank: gang.rank, addresses };
    if (this.acrossHosts) {
      // Heads of several gangs may share a host's network: each listens on a port of its own.
      return { gang: { ...place, masterPort: hostMasterPort(this.jobId, this.claim.attempt), network: 'host' } };
    }
    if (gang.members.some((m) => m.address)) {
      throw new LaunchError('INFRA_ERROR', 'some members of this multi-node job have a worker address and some none');
    }
    const network = this.ctx.runtime.gangNetwork
      ? await this.ctx.runtime.gangNetwork(this.jobId)
      : (() => {
          throw new LaunchError('INFRA_ERROR', 'this worker cannot run members of a multi-node job');
        })();
    return { gang: { ...place, masterPort: gangMasterPort, network } };
  }

  /** Whether this multi-node attempt's members run on their hosts' networks (every worker gave its address). */
  private get acrossHosts(): boolean {
    return this.claim.gang?.members.every((m) => m.address) ?? false;
  }

  private async dropGangNetwork(): Promise<void> {
    if (this.claim.gang && !this.acrossHosts) await this.ctx.runtime.dropGangNetwork?.(this.jobId);
  }

  /**
   * Notes how this member of a multi-node attempt ended, for the job's record, and, unless it was only stopped for
   * another's end (`quiet`), tells every member of the attempt.
   */
  private async tellGang(end: GangEnd, quiet = false): Promise<void> {
    if (!this.claim.gang) return;
    const { rank, state, exitCode, reason, message } = end;
    const noted = JobState.safeParse(state).data;
    const why = FailureReason.safeParse(reason).data;
    await this.persist(async () => {
      if (noted) {
        await this.ctx.store.recordMemberEnd(this.jobId, this.claim.attempt, rank, {
          state: noted,
          exitCode,
          reason: why,
          ...(message ? { message } : {}),
        });
      }
      if (!quiet) await this.ctx.signals.gangStop({ jobId: this.jobId, attempt: this.claim.attempt, ...end });
    }).catch(() => {});
  }

  /**
   * How a member stopped by berth ended (cancelled, timed out, or stopped for another member's end). A member fenced
   * because its head ended the attempt, whose word of that end came late or not at all (pub/sub drops it while a
   * subscriber reconnects, and the head records its end before it tells), reads that end from the record.
   */
  private async memberStoppedEnd(exitCode: number | undefined): Promise<AttemptEnd | null> {
    const code = exitCode === undefined ? {} : { exitCode };
    if (this.stopCause === 'GANG') return { ...stoppedFor(this.gangEnd!), ...code };
    if (this.stopCause === 'FENCED') {
      const job = await this.persist(() => this.ctx.store.get(this.jobId));
      const after = job && this.afterHeadEnded(job);
      return after ? { ...after, ...code } : null;
    }
    return this.stoppedEnd(exitCode);
  }

  /** This member's end if the head has ended this attempt on the record: stopped for it. */
  private afterHeadEnded(job: JobRecord): AttemptEnd | null {
    const entry = job.attempts.find((a) => a.attempt === this.claim.attempt);
    if (!entry?.finishedAt || !entry.state) return null;
    return stoppedFor({ rank: 0, state: entry.state });
  }

  /**
   * A member other than the head: runs its container with its own log stream (`<job>.n<rank>`, in the log file of
   * its own name), and tells the others how it ended; the head records the attempt, its metrics and its artifacts.
   */
  private async executeMember(job: JobRecord): Promise<AttemptEnd | null> {
    const { runtime } = this.ctx;
    const { jobId, attempt, devices } = this.claim;
    const rank = this.claim.gang!.rank;
    const stream = memberLogId(jobId, rank);
    let end: AttemptEnd | null;
    try {
      const { manifest, launch } = await this.render(job);
      const resultsDir = `${launch.resultsDir}-n${rank}`;
      const spec = {
        ...launch,
        resultsDir,
        mounts: launch.mounts.map((m) => (m.containerPath === '/results' ? { ...m, hostPath: resultsDir } : m)),
      };
      await this.pull(spec.image);
      if (this.stopCause) return this.memberEnded(await this.memberStoppedEnd(undefined));
      await mkdir(resultsDir, { recursive: true });
      await this.seedCheckpoint(manifest, job, resultsDir);
      const stored = await this.persist(() => this.ctx.logs.storedMark(stream, attempt));
      const from = parseMark(stored.mark);
      const startLine = from?.lines ?? 0;
      const file = logFile(this.ctx.dataDir, stream, attempt);
      const pump = new LogPump(this.ctx.logs, stream, attempt, {
        skip: Math.max(0, stored.stored - startLine),
        startLine,
        file: { path: file, skip: Math.max(0, (await countLogFileLines(file)) - startLine) },
        onLine: (text, s) => {
          if (s === 'stderr') this.stderr.push(text);
        },
        bufferChars: this.ctx.logBufferBytes,
      });
      const result = await runtime.run(
        spec,
        {
          onRunning: async () => {
            if (this.stopCause) await runtime.stop(this.name, this.ctx.stopGraceSeconds);
            this.sampleGpus(devices);
          },
          onOutput: (s, chunk, position) => pump.write(s, chunk, position),
        },
        from?.position,
      );
      await pump.close();
      end = this.stopCause
        ? await this.memberStoppedEnd(result.exitCode)
        : result.oomKilled
          ? {
              state: 'failed',
              reason: 'OOM_KILLED',
              message: 'the member used more than its memory limit',
              exitCode: result.exitCode,
            }
          : result.exitCode === 0
            ? { state: 'succeeded', exitCode: 0 }
            : {
                state: 'failed',
                reason: 'EXIT_NONZERO',
                message: this.stderr.explain(`exit code ${result.exitCode}`),
                exitCode: result.exitCode,
              };
    } catch (err) {
      end = this.stopCause
        ? await this.memberStoppedEnd(undefined)
        : {
            state: 'failed',
            reason: err instanceof LaunchError ? err.reason : 'INFRA_ERROR',
            message: err instanceof Error ? err.message : String(err),
          };
    }
    return this.memberEnded(end);
  }

  /** Notes how this member ended (and tells the others, unless berth stopped it); the head records the attempt. */
  private async memberEnded(end: AttemptEnd | null, quiet = this.stopCause !== undefined): Promise<null> {
    if (end) await this.tellGang(gangEndOf(this.claim.gang!.rank, end), quiet);
    this.log.info({ state: end?.state ?? 'stopped', exitCode: end?.exitCode }, 'member finished');
    return null;
  }
}

/** Seconds since the job last entered the queue. */
function queuedFor(job: JobRecord): number {
  const queued = [...job.history].reverse().find((h) => h.state === 'queued');
  return (Date.now() - Date.parse(queued?.at ?? job.createdAt)) / 1000;
}

/** A member's end when another member's end (`by`) stopped it. */
function stoppedFor(by: Pick<GangEnd, 'rank' | 'state'>): AttemptEnd {
  if (by.state === 'cancelled') return cancelled();
  return { state: 'failed', message: `stopped when node ${by.rank} ended (${by.state})` };
}

function cancelled(): AttemptEnd {
  return { state: 'cancelled', reason: 'CANCELLED', message: 'cancelled by request' };
}

function infra(message: string): AttemptEnd {
  return { state: 'failed', reason: 'INFRA_ERROR', message };
}
