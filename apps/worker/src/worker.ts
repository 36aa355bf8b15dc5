// Builds the worker: takes jobs from the queue, runs each attempt as a container, records the outcome.
import { terminalStates, type FailureReason } from '@berth/contracts';
import { connectRedis, jobQueue, JobStore, LogStream, type Redis } from '@berth/store';
import { Worker, type Job } from 'bullmq';
import { mkdir } from 'node:fs/promises';
import type { Manifest } from '@berth/manifests';
import type { Logger } from 'pino';
import { LaunchError, type ContainerRuntime } from './executor/container-runtime.js';
import { containerName, renderAttempt } from './executor/render.js';
import { dlloggerPrefixes, judge, MetricNames } from './executor/success.js';
import { LogPump } from './pump/log-pump.js';

export interface WorkerDeps {
  redisUrl: string;
  prefix: string;
  workerId: string;
  concurrency: number;
  /** Absolute; results folders are created under it and bind-mounted by path. */
  dataDir: string;
  /** The recipe catalog, validated at start-up. */
  manifests: ReadonlyMap<string, Manifest>;
  /** How long a job's lock lives without renewal before another worker may take the job over (default 60 s). */
  lockMs?: number;
  runtime: ContainerRuntime;
  logger: Logger;
}

export interface BerthWorker {
  close(): Promise<void>;
}

export function buildWorker(deps: WorkerDeps): BerthWorker {
  const redis: Redis = connectRedis(deps.redisUrl, { name: `berth-worker-${deps.workerId}` });
  const store = new JobStore(redis, deps.prefix);
  const logs = new LogStream(redis, deps.prefix);

  const runAttempt = async (bullJob: Job<{ jobId: string }>): Promise<void> => {
    const { jobId } = bullJob.data;
    // A stalled job handed to us again keeps its attempt number, so it finds the same container.
    const attempt = bullJob.attemptsMade + 1;
    const log = deps.logger.child({ jobId, attempt });
    const job = await store.get(jobId);
    if (!job) {
      log.warn('job record missing; dropping queue entry');
      return;
    }
    const name = containerName(jobId, attempt);
    if (terminalStates.has(job.state)) {
      // Delivered again after it finished (e.g. a crash before the queue heard): never run it twice.
      await deps.runtime.remove(name);
      return;
    }

    await store.transition(jobId, { state: 'starting', attempt, worker: deps.workerId, container: name });
    const stored = await logs.storedLines(jobId, attempt);
    let outcome: { state: 'succeeded' | 'failed'; reason?: FailureReason; message?: string; exitCode?: number };
    let pump: LogPump | undefined;
    try {
      const { manifest, launch } = renderAttempt(deps.manifests, job, attempt, deps.workerId, deps.dataDir);
      // onLine sees skipped lines too: a re-attached worker still learns every metric the attempt reported.
      const metrics = new MetricNames(dlloggerPrefixes(manifest));
      pump = new LogPump(logs, jobId, attempt, { skip: stored, onLine: (text) => metrics.observe(text) });
      const output = pump;
      await mkdir(launch.resultsDir, { recursive: true });
      const result = await deps.runtime.run(launch, {
        onRunning: async () => {
          await store.transition(jobId, { state: 'running' });
          log.info({ container: name }, 'container running');
        },
        onOutput: (stream, chunk) => output.write(stream, chunk),
      });
      await pump.close();
      const verdict = result.oomKilled
        ? ({ ok: false, reason: 'OOM_KILLED', message: 'the container ran out of memory' } as const)
        : judge(manifest, result.exitCode, launch.resultsDir, metrics);
      outcome = verdict.ok
        ? { state: 'succeeded', exitCode: result.exitCode }
        : { state: 'failed', reason: verdict.reason, message: verdict.message, exitCode: result.exitCode };
    } catch (err) {
      await pump?.close().catch(() => {});
      const reason = err instanceof LaunchError ? err.reason : 'INFRA_ERROR';
      log.error({ err }, 'attempt failed before the container finished');
      outcome = { state: 'failed', reason, message: err instanceof Error ? err.message : String(err) };
    }
    await store.transition(jobId, outcome);
    log.info({ state: outcome.state, reason: outcome.reason, exitCode: outcome.exitCode }, 'attempt finished');
    // Only now, with exit code, OOM flag and every line recorded, may the container go.
    await deps.runtime.remove(name);
  };

  const worker = new Worker(jobQueue.name, runAttempt, {
    connection: connectRedis(deps.redisUrl, { name: `berth-worker-${deps.workerId}-bull` }),
    prefix: jobQueue.prefix(deps.prefix),
    concurrency: deps.concurrency,
    // Long trainings must not be handed to a second worker by one slow lock renewal.
    lockDuration: deps.lockMs ?? 60_000,
    stalledInterval: (deps.lockMs ?? 60_000) / 2,
    maxStalledCount: 1,
  });
  worker.on('error', (err) => deps.logger.warn({ err }, 'queue connection trouble'));
  worker.on('lockRenewalFailed', (ids) =>
    deps.logger.error({ jobs: ids }, 'lock renewal failed; another worker may re-attach'),
  );

  return {
    async close() {
      // Active attempts are not awaited: their containers keep running and a later delivery re-attaches.
      await worker.close(true);
      await worker.disconnect();
      redis.disconnect();
    },
  };
}
