// Builds the worker: registers its GPUs, places queued jobs on them, runs each attempt, and recovers after a crash.
import type { ApiTarget } from './api-client.js';
import { defaultResultsBudget, type ResultsBudget } from './artifacts/results-tree.js';
import { isoNow, type GpuMode } from '@berth/contracts';
import type { Manifest } from '@berth/manifests';
import {
  AttemptTaker,
  connectRedis,
  EventStream,
  Housekeeper,
  JobQueues,
  JobStore,
  LogStream,
  MetricStream,
  defaultCaps,
  ownerToken,
  parseHold,
  parseOwner,
  Placement,
  WorkerRegistry,
  WorkerSignals,
  defaultRetryPolicy,
  type Claim,
  type Redis,
  type RetryPolicy,
  type StreamCaps,
} from '@berth/store';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { Attempt } from './attempt.js';
import { InputCache } from './inputs/input-cache.js';
import type { ContainerRuntime, ImageSource } from './executor/container-runtime.js';
import type { GpuInventoryReport } from './gpu/inventory.js';
import type { GpuTelemetry } from './gpu/telemetry.js';
import { defaultTimings, workerDefaults, type WorkerTimings } from './defaults.js';
import { WorkerMetrics } from './observability/worker-metrics.js';
import { OrphanSweeper } from './recovery/orphan-sweeper.js';

export type { WorkerTimings } from './defaults.js';

export interface WorkerDeps {
  redisUrl: string;
  prefix: string;
  workerId: string;
  /** How many attempts may run at once. */
  concurrency: number;
  /** whole-host: one GPU job at a time gets every GPU; slots: jobs packed onto disjoint GPUs. */
  mode: GpuMode;
  gpus: GpuInventoryReport;
  /** Absolute; results folders are created under it and bind-mounted by path. */
  dataDir: string;
  /** The recipe catalog, validated at start-up. */
  manifests: ReadonlyMap<string, Manifest>;
  runtime: ContainerRuntime;
  images: ImageSource;
  dockerVersion?: string | undefined;
  /** Later jobs that may start ahead of a waiting one before it reserves the worker (defaults: workerDefaults). */
  maxBypass?: number;
  retry?: RetryPolicy;
  timings?: Partial<WorkerTimings>;
  /** The API artifacts go to and inputs come from, with the worker account's token. */
  api: ApiTarget;
  /** How often /results is scanned and complete checkpoints uploaded while a job runs. */
  uploadIntervalMs?: number | undefined;
  /** What one attempt may leave under /results (BERTH_RESULTS_MAX_BYTES, BERTH_RESULTS_MAX_FILES). */
  resultsBudget?: ResultsBudget;
  /** Bytes of datasets and fetched artifacts kept in the input cache. */
  inputCacheBytes?: number;
  /** How much of each job's log and metrics stays in Redis (the full log is in a file either way). */
  caps?: StreamCaps;
  /** Log text each attempt may hold in memory while Redis does not take it. */
  bufferBytes?: number;
  /** Samples running jobs' GPUs; absent where nvidia-smi can't run. */
  gpuTelemetry?: GpuTelemetry | undefined;
  /** How long a multi-node job's members hold their GPUs while it forms (BERTH_GANG_RESERVATION_MS). */
  gangReservationMs?: number;
  /** How long a placed job may take to start, as backfill counts (BERTH_START_ALLOWANCE_MS). */
  startAllowanceMs?: number;
  /**
   * Where members of a multi-node job on other hosts reach this worker's member (BERTH_WORKER_ADDRESS); left out,
   * members share one engine and reach each other's containers by name on the job's own network.
   */
  address?: string | undefined;
  logger: Logger;
}

export interface BerthWorker {
  /** Prometheus metrics of this worker (main.ts serves them). */
  readonly metrics: WorkerMetrics;
  /** Resolves once the worker is registered, has re-attached to its containers and takes jobs. */
  readonly ready: Promise<void>;
  /** Since when jobs that fit have waited while BullMQ handed over none, renewals included (the liveness check's). */
  queueStuckSince(): number | undefined;
  close(): Promise<void>;
}

/** What a caller left out, from workerDefaults: one step, so no default is written twice. */
function withDefaults(deps: WorkerDeps) {
  return {
    maxBypass: deps.maxBypass ?? workerDefaults.maxBypass,
    inputCacheBytes: deps.inputCacheBytes ?? workerDefaults.inputCacheBytes,
    bufferBytes: deps.bufferBytes ?? workerDefaults.bufferBytes,
    uploadIntervalMs: deps.uploadIntervalMs ?? workerDefaults.uploadIntervalMs,
    gangReservationMs: deps.gangReservationMs ?? workerDefaults.gangReservationMs,
    startAllowanceMs: deps.startAllowanceMs ?? workerDefaults.startAllowanceMs,
    timings: { ...defaultTimings, ...deps.timings },
  };
}

export function buildWorker(deps: WorkerDeps): BerthWorker {
  const o = withDefaults(deps);
  const timings = o.timings;
  const retry = deps.retry ?? defaultRetryPolicy;
  const caps = deps.caps ?? defaultCaps;
  const redis: Redis = connectRedis(deps.redisUrl, { name: `berth-worker-${deps.workerId}` });
  const subscriber: Redis = connectRedis(deps.redisUrl, { name: `berth-worker-${deps.workerId}-sub` });
  const store = new JobStore(redis, deps.prefix);
  const placement = new Placement(redis, deps.prefix, o.gangReservationMs);
  const signals = new WorkerSignals(redis, deps.prefix);
  const queues = new JobQueues(redis, deps.prefix);
  // The BullMQ lock of a running attempt lasts as long as the worker's heartbeats may stop before it is written off,
  // and each heartbeat renews it.
  const taker = new AttemptTaker(deps.redisUrl, deps.prefix, deps.workerId, timings.lostAfterMs);
  const registry = new WorkerRegistry(redis, deps.prefix);
  const housekeeper = new Housekeeper(redis, deps.prefix, store, queues, { lostAfterMs: timings.lostAfterMs, retry });
  const log = deps.logger;
  const gpuOrder = [...deps.gpus.gpus].sort((a, b) => a.index - b.index).map((g) => g.uuid);
  const attempts = new Map<string, Attempt>();
  const observe = new WorkerMetrics(
    () => ({
      total: gpuOrder.length,
      used:
        deps.mode === 'whole-host' && [...attempts.values()].some((a) => a.claim.devices.length > 0)
          ? gpuOrder.length
          : [...attempts.values()].reduce((n, a) => n + a.claim.devices.length, 0),
    }),
    () => redis.ping(),
  );
  const context = {
    observe,
    api: deps.api,
    inputs: new InputCache(join(deps.dataDir, 'cache'), deps.api, o.inputCacheBytes),
    uploadIntervalMs: o.uploadIntervalMs,
    resultsBudget: deps.resultsBudget ?? defaultResultsBudget,
    logBufferBytes: o.bufferBytes,
    signals,
    store,
    logs: new LogStream(redis, deps.prefix, caps),
    metrics: new MetricStream(redis, deps.prefix, caps.metricBytes),
    metricCap: caps.metricPoints,
    gpuTelemetry: deps.gpuTelemetry,
    events: new EventStream(redis, deps.prefix),
    placement,
    queues,
    lockToken: taker.token,
    runtime: deps.runtime,
    images: deps.images,
    manifests: deps.manifests,
    workerId: deps.workerId,
    prefix: deps.prefix,
    dataDir: deps.dataDir,
    wholeHost: deps.mode === 'whole-host',
    retry,
    stopGraceSeconds: timings.stopGraceSeconds,
    logger: log,
  };
  const orphans = new OrphanSweeper({
    runtime: deps.runtime,
    placement,
    registry,
    prefix: deps.prefix,
    workerId: deps.workerId,
    isRunningHere: (jobId, attempt) => attempts.get(jobId)?.claim.attempt === attempt,
    graceMs: timings.orphanGraceMs,
    lostAfterMs: timings.lostAfterMs,
    logger: log,
  });
  let closing = false;
  // The watchdog's clock restarts with each renewal; this one runs on until a fetch succeeds or nothing waits.
  let stuckSince: number | undefined;

  const start = (claim: Claim): void => {
    if (attempts.has(claim.jobId)) return;
    const attempt = new Attempt(context, claim);
    attempts.set(claim.jobId, attempt);
    void attempt.run().finally(() => {
      attempts.delete(claim.jobId);
      // Freed GPUs: this worker and the others may place the next jobs.
      if (!closing) placement.wake().catch(() => {});
    });
  };

  const placementWorker = {
    id: deps.workerId,
    mode: deps.mode,
    concurrency: deps.concurrency,
    gpus: gpuOrder,
    ...(deps.address ? { address: deps.address } : {}),
  };

  // One placement at a time; a wake-up during one runs another right after.
  let placing: Promise<void> | undefined;
  let again = false;
  const place = (): void => {
    if (closing) return;
    if (placing) {
      again = true;
      return;
    }
    placing = (async () => {
      do {
        again = false;
        // A gang placed since the last round starts its member here before anything else is weighed.
        await adoptHolds('starting a member of a multi-node job', true);
        const claims = await placement.claim(
          placementWorker,
          {
            maxBypass: o.maxBypass,
            gangReservationMs: o.gangReservationMs,
            // A job placed here frees its GPUs by its maxRuntime plus these at the latest (backfill's bound).
            overrunMs: o.startAllowanceMs + timings.stopGraceSeconds * 1000,
          },
          queues,
          taker,
        );
        for (const claim of claims) start(claim);
        await adoptHolds('starting a member of a multi-node job', true);
        if (claims.length > 0 || !taker.stuck(0)) stuckSince = undefined;
      } while (again && !closing);
    })()
      .catch((err: unknown) => log.warn({ err }, 'placement failed; retrying on the next tick'))
      .finally(() => (placing = undefined));
  };

  /**
   * Every attempt Redis says this worker holds runs here. At start-up that re-attaches (same container, same log
   * position); on each heartbeat it adopts a claim whose result never reached the placement loop (a lost reply, a
   * throw after the script ran), which would otherwise sit placed here and `queued` for ever. `start` ignores a job
   * already running, so a claim the loop is about to start is not started twice.
   */
  const adoptHolds = async (why: string, gangsOnly = false): Promise<void> => {
    for (const hold of await registry.active(deps.workerId)) {
      const { jobId, attempt } = parseHold(hold);
      if (attempts.has(jobId)) continue;
      // A multi-node job's hold: its gang is forming (keep it), placed (run this worker's member), or over.
      if (await placement.isGang(jobId)) {
        const gang = await placement.gangHold(deps.workerId, jobId, attempt);
        if (gang.status === 'placed') {
          log.info({ jobId, attempt, node: gang.rank }, why);
          const seat = gang.members[gang.rank]!;
          start({ jobId, attempt, devices: seat.devices, gang: { rank: gang.rank, members: gang.members } });
        }
        continue;
      }
      if (gangsOnly) continue;
      if ((await placement.owner(jobId)) === ownerToken(deps.workerId, attempt)) {
        log.info({ jobId, attempt }, why);
        start({ jobId, attempt, devices: await placement.devices(jobId) });
      } else {
        await placement.forget(deps.workerId, jobId, attempt);
      }
    }
  };

  const beat = async (): Promise<void> => {
    const wasLost = await registry.heartbeat(deps.workerId);
    if (wasLost) log.error('this worker had been written off as lost; checking which of its jobs moved on');
    for (const attempt of attempts.values()) {
      // A missed cancel broadcast or a job moved elsewhere while we were silent: both are caught here.
      const owner = await placement.owner(attempt.jobId);
      // A multi-node member runs while the record is its head's.
      if (owner !== (attempt.claim.gang?.members[0]?.token ?? attempt.owner)) attempt.stop('FENCED');
      else if (await store.cancelRequested(attempt.jobId)) attempt.stop('CANCELLED');
      else {
        const ticket = await queues.ticket(attempt.jobId, attempt.claim.attempt);
        // A lapsed lock changes nothing by itself (no berth process redelivers on it); it is worth a line.
        if (ticket && !(await taker.keep(queues, ticket))) {
          log.warn({ jobId: attempt.jobId }, 'the BullMQ lock of a running attempt had lapsed');
        }
      }
    }
    await checkMembers();
    if (taker.stuck(timings.watchdogMs)) {
      stuckSince ??= Date.now() - timings.watchdogMs;
      log.warn('jobs that fit have waited while BullMQ handed over none; making new BullMQ workers');
      await taker.renew();
    }
    await adoptHolds('adopting a placement that never started here');
    await housekeeper.sweep();
    await orphans.sweep();
  };

  /**
   * A head whose member's worker was written off stops its gang: that member's container may live on, but nothing
   * runs it, so the attempt ends as WORKER_LOST and is retried as a whole.
   */
  const checkMembers = async (): Promise<void> => {
    const heads = [...attempts.values()].filter((a) => a.claim.gang?.rank === 0);
    if (heads.length === 0) return;
    const lost = new Set(
      (await registry.list(timings.lostAfterMs)).filter((w) => w.status === 'lost').map((w) => w.id),
    );
    for (const head of heads) {
      for (const m of head.claim.gang!.members) {
        const worker = parseOwner(m.token).workerId;
        if (m.rank > 0 && lost.has(worker)) {
          const message = `its worker ${worker} was written off (silent for ${timings.lostAfterMs} ms)`;
          head.gangMemberEnded({ rank: m.rank, state: 'failed', reason: 'WORKER_LOST', message });
        }
      }
    }
  };

  const timers: NodeJS.Timeout[] = [];
  const ready = (async () => {
    await registry.register({
      id: deps.workerId,
      host: hostname(),
      mode: deps.mode,
      concurrency: deps.concurrency,
      gpus: deps.gpus.gpus.map(({ index, uuid, name, memoryMiB }) => ({
        index,
        uuid,
        name,
        ...(memoryMiB !== undefined ? { memoryMiB } : {}),
      })),
      gpuSource: deps.gpus.source,
      ...(deps.gpus.driverVersion ? { driverVersion: deps.gpus.driverVersion } : {}),
      ...(deps.gpus.cudaVersion ? { cudaVersion: deps.gpus.cudaVersion } : {}),
      ...(deps.dockerVersion ? { dockerVersion: deps.dockerVersion } : {}),
      startedAt: isoNow(),
    });
    await adoptHolds('re-attaching after a restart');
    for (const jobId of await placement.reconcileFetched(placementWorker, queues, taker.token)) {
      log.info({ jobId }, 'settled a BullMQ job this worker held a lock on but no longer runs');
    }
    await signals.listen(subscriber, {
      onWake: place,
      onCancel: (jobId) => attempts.get(jobId)?.stop('CANCELLED'),
      onGangStop: (end) => {
        // A member of a multi-node attempt ended: the member of it this worker runs stops too (see Attempt).
        const running = attempts.get(end.jobId);
        if (running?.claim.attempt === end.attempt) running.gangMemberEnded(end);
      },
      onUnreadable: (err) => log.warn({ err }, 'unreadable message on a worker channel'),
    });
    timers.push(setInterval(place, timings.pollMs));
    timers.push(
      setInterval(() => {
        if (!closing) beat().catch((err: unknown) => log.warn({ err }, 'heartbeat round failed'));
      }, timings.heartbeatMs),
    );
    place();
    log.info({ mode: deps.mode, gpus: gpuOrder.length, concurrency: deps.concurrency }, 'worker ready');
  })();
  ready.catch((err: unknown) => log.error({ err }, 'worker failed to start'));

  return {
    ready,
    metrics: observe,
    queueStuckSince: () => stuckSince,
    async close() {
      closing = true;
      for (const t of timers) clearInterval(t);
      await ready.catch(() => {});
      await placing?.catch(() => {});
      // Running attempts are not awaited: their containers keep running and the next start re-attaches.
      await taker.close();
      await queues.close().catch(() => {});
      subscriber.disconnect();
      redis.disconnect();
    },
  };
}
