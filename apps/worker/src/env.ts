// The worker's configuration: parsed once from the environment; nothing else reads process.env.
import { clusterEnv, GpuMode, maskUrl } from '@berth/contracts';
import { defaultCaps } from '@berth/store';
import { hostname } from 'node:os';
import { z } from 'zod';
import { defaultTimings, workerDefaults } from './defaults.js';

const Env = z.object({
  REDIS_URL: z.string().url().default('redis://127.0.0.1:6379'),
  /** The API this worker uploads artifacts to. */
  BERTH_API_URL: z.string().url().default('http://127.0.0.1:8080'),
  /** The worker account's API token; prefer the file form (a mounted secret). */
  BERTH_API_TOKEN: z.string().optional(),
  BERTH_API_TOKEN_FILE: z.string().optional(),
  DOCKER_HOST: z.string().optional(),
  BERTH_DATA_DIR: z.string().default('./var'),
  BERTH_MANIFESTS_DIR: z.string().default('./ngc-manifests'),
  ...clusterEnv,
  BERTH_WORKER_ID: z
    .string()
    .regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/)
    .default(hostname().slice(0, 63)),
  BERTH_WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(4),
  /** whole-host (default): one GPU job at a time gets every GPU. slots: jobs packed onto disjoint GPUs. */
  BERTH_GPU_MODE: GpuMode.default('whole-host'),
  /** GPUs on a host without nvidia-smi: a count (`8`) or device ids (`0,1` or `GPU-…,GPU-…`). Wins over nvidia-smi. */
  BERTH_GPUS: z.string().optional(),
  BERTH_NVIDIA_SMI: z.string().default('nvidia-smi'),
  /** The NGC API key for nvcr.io pulls; prefer the file form (a Docker/Kubernetes secret). */
  NGC_API_KEY: z.string().optional(),
  NGC_API_KEY_FILE: z.string().optional(),
  BERTH_NGC_REGISTRY: z.string().default('nvcr.io'),
  BERTH_PULL_ATTEMPTS: z.coerce.number().int().min(1).max(20).default(3),
  BERTH_PULL_STALL_MS: z.coerce.number().int().min(1000).default(120_000),
  /** The engine's copy of each container's log (json-file): files of this size, this many kept before rotation. */
  BERTH_CONTAINER_LOG_MAX_SIZE: z
    .string()
    .regex(/^\d+[kmg]$/, 'a size as the json-file log driver takes it, e.g. 256m')
    .default('256m'),
  BERTH_CONTAINER_LOG_MAX_FILES: z.coerce.number().int().min(1).max(100).default(4),
  BERTH_HEARTBEAT_MS: z.coerce.number().int().min(100).default(defaultTimings.heartbeatMs),
  BERTH_STOP_GRACE_S: z.coerce.number().int().min(0).max(3600).default(defaultTimings.stopGraceSeconds),
  BERTH_ORPHAN_GRACE_MS: z.coerce.number().int().min(0).default(defaultTimings.orphanGraceMs),
  BERTH_MAX_BYPASS: z.coerce.number().int().min(0).max(1000).default(workerDefaults.maxBypass),
  /** How long a multi-node job's members hold their GPUs while it forms before giving them back. */
  BERTH_GANG_RESERVATION_MS: z.coerce.number().int().min(100).default(workerDefaults.gangReservationMs),
  /** How long a placed job may take to start, as backfill ahead of a multi-node job counts (docs/queue.md). */
  BERTH_START_ALLOWANCE_MS: z.coerce.number().int().min(0).default(workerDefaults.startAllowanceMs),
  /**
   * Where members of a multi-node job on other hosts reach this worker's member: its host's address. Set, members
   * run on the host's network, fenced from berth's ports by cgroup (docs/network.md). Unset: members share this
   * engine and reach each other by container name on the job's own network.
   */
  BERTH_WORKER_ADDRESS: z.string().min(1).optional(),
  /** Log lines and metric points of a job kept in Redis; the full log is in the attempt's log file regardless. */
  BERTH_LOG_STREAM_MAX_LINES: z.coerce.number().int().min(100).default(defaultCaps.logLines),
  BERTH_METRIC_STREAM_MAX_POINTS: z.coerce.number().int().min(100).default(defaultCaps.metricPoints),
  /** Bytes of a job's log lines and of its metric points kept in Redis (each stream on its own). */
  BERTH_LOG_STREAM_MAX_BYTES: z.coerce
    .number()
    .int()
    .min(64 * 1024)
    .max(256 * 1024 ** 2)
    .default(defaultCaps.logBytes),
  BERTH_METRIC_STREAM_MAX_BYTES: z.coerce
    .number()
    .int()
    .min(64 * 1024)
    .default(defaultCaps.metricBytes),
  /** Bytes of an attempt's log file on this host; past it the oldest part is dropped, with a marker. */
  BERTH_LOG_FILE_MAX_BYTES: z.coerce
    .number()
    .int()
    .min(1024 ** 2)
    .default(defaultCaps.logFileBytes),
  /** What one attempt may leave under /results: bytes (apparent size) and entries; past either it stops. */
  BERTH_RESULTS_MAX_BYTES: z.coerce
    .number()
    .int()
    .min(1)
    .default(200 * 1024 ** 3),
  BERTH_RESULTS_MAX_FILES: z.coerce.number().int().min(1).default(100_000),
  /** A job's memory limit when neither the job nor its recipe sets one (e.g. `16g`); unset: derived from the host. */
  BERTH_JOB_MEMORY_DEFAULT: z
    .string()
    .regex(/^[0-9]+(?:\.[0-9]+)?\s*[kmgt]?i?b?$/i, 'a size like 16g or 512m')
    .optional(),
  /** A job's CPU limit (in CPUs) when its recipe sets none; unset: derived from the host. */
  BERTH_JOB_CPUS_DEFAULT: z.coerce.number().positive().optional(),
  /** The Docker network jobs are attached to (created by the worker, fenced from the host's ports). */
  BERTH_JOB_NETWORK: z.string().default('berth-jobs'),
  /** How often running jobs' GPUs are sampled (nvidia-smi hosts only). */
  BERTH_GPU_SAMPLE_MS: z.coerce.number().int().min(500).default(10_000),
  /** Bytes of datasets and other jobs' artifacts kept on this host. */
  BERTH_INPUT_CACHE_BYTES: z.coerce.number().int().min(1).default(workerDefaults.inputCacheBytes),
  /** Prometheus /metrics of the worker; 0 turns it off. */
  BERTH_WORKER_METRICS_PORT: z.coerce.number().int().min(0).max(65535).default(9464),
  /** Where the metrics listen: loopback, so that jobs on this host cannot read them. */
  BERTH_WORKER_METRICS_HOST: z.string().default('127.0.0.1'),
  /** /healthz says unhealthy when the event loop lagged this long (the worst delay over the last few seconds). */
  BERTH_WORKER_MAX_LAG_MS: z.coerce.number().int().min(100).default(2000),
  /**
   * /healthz says unhealthy when jobs that fit waited this long while BullMQ handed over none, through the watchdog's
   * renewals of its workers; kept above the watchdog's wait so that it reports only what renewing did not cure.
   */
  BERTH_WORKER_STUCK_MS: z.coerce.number().int().min(1000).default(120_000),
  /** Bytes of log output the worker holds in memory for each attempt while Redis is away. */
  BERTH_WORKER_BUFFER_BYTES: z.coerce
    .number()
    .int()
    .min(1024 ** 2)
    .default(workerDefaults.bufferBytes),
  /** Start on a Redis without AOF or with an evicting maxmemory-policy (one warning a problem); never in production. */
  BERTH_ALLOW_UNSAFE_REDIS: z.stringbool().default(false),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /**
   * How far V8 lets the heap grow past what the last full GC kept, in percent (--heap-growing-percent; 0 leaves it to
   * V8). Not a cap. The worker sends files by descriptor and holds log batches only briefly, so 50 keeps it closer to
   * its live heap under a log flood for a little more CPU and no less throughput (bench/RESULTS.md).
   */
  BERTH_HEAP_GROWTH_PERCENT: z.coerce.number().int().min(0).max(1000).default(50),
});

export interface WorkerConfig {
  redisUrl: string;
  /** Start even though Redis may lose or evict writes (BERTH_ALLOW_UNSAFE_REDIS). */
  allowUnsafeRedis: boolean;
  api: { url: string; token?: string | undefined; tokenFile?: string | undefined };
  /** unix:///path or tcp://host:port; the local socket when unset. */
  dockerHost: string | undefined;
  dataDir: string;
  manifestsDir: string;
  prefix: string;
  workerId: string;
  concurrency: number;
  mode: GpuMode;
  gpus: string | undefined;
  nvidiaSmi: string;
  ngc: { key?: string | undefined; keyFile?: string | undefined; registry: string };
  pull: { attempts: number; stallMs: number };
  containerLog: { maxSize: string; maxFiles: number };
  timings: { heartbeatMs: number; lostAfterMs: number; stopGraceSeconds: number; orphanGraceMs: number };
  streamRetentionDays: number;
  maxBypass: number;
  gangReservationMs: number;
  startAllowanceMs: number;
  address?: string;
  retry: { infraRetries: number; backoffMs: number };
  caps: {
    logLines: number;
    metricPoints: number;
    logBytes: number;
    metricBytes: number;
    logFileBytes: number;
  };
  results: { maxBytes: number; maxFiles: number };
  jobDefaults: { memory: string | undefined; cpus: number | undefined; network: string };
  gpuSampleMs: number;
  metricsPort: number;
  metricsHost: string;
  /** When /healthz says unhealthy: event-loop lag, and fitting jobs waiting with nothing fetched. */
  health: { maxLagMs: number; stuckMs: number };
  /** Bytes of one attempt's log output held in memory while Redis is away. */
  bufferBytes: number;
  inputCacheBytes: number;
  logLevel: string;
  /** V8's heap growing factor, in percent over the live heap (0: V8's own rule). */
  heapGrowthPercent: number;
}

export function loadWorkerConfig(env: NodeJS.ProcessEnv = process.env): WorkerConfig {
  const e = Env.parse(env);
  return {
    redisUrl: e.REDIS_URL,
    allowUnsafeRedis: e.BERTH_ALLOW_UNSAFE_REDIS,
    api: {
      url: e.BERTH_API_URL,
      token: e.BERTH_API_TOKEN,
      tokenFile: e.BERTH_API_TOKEN_FILE,
    },
    dockerHost: e.DOCKER_HOST,
    dataDir: e.BERTH_DATA_DIR,
    manifestsDir: e.BERTH_MANIFESTS_DIR,
    prefix: e.BERTH_PREFIX,
    workerId: e.BERTH_WORKER_ID,
    concurrency: e.BERTH_WORKER_CONCURRENCY,
    mode: e.BERTH_GPU_MODE,
    gpus: e.BERTH_GPUS,
    nvidiaSmi: e.BERTH_NVIDIA_SMI,
    ngc: {
      key: e.NGC_API_KEY,
      keyFile: e.NGC_API_KEY_FILE,
      registry: e.BERTH_NGC_REGISTRY,
    },
    pull: { attempts: e.BERTH_PULL_ATTEMPTS, stallMs: e.BERTH_PULL_STALL_MS },
    containerLog: { maxSize: e.BERTH_CONTAINER_LOG_MAX_SIZE, maxFiles: e.BERTH_CONTAINER_LOG_MAX_FILES },
    timings: {
      heartbeatMs: e.BERTH_HEARTBEAT_MS,
      lostAfterMs: e.BERTH_LOST_AFTER_MS,
      stopGraceSeconds: e.BERTH_STOP_GRACE_S,
      orphanGraceMs: e.BERTH_ORPHAN_GRACE_MS,
    },
    streamRetentionDays: e.BERTH_STREAM_RETENTION_DAYS,
    maxBypass: e.BERTH_MAX_BYPASS,
    gangReservationMs: e.BERTH_GANG_RESERVATION_MS,
    startAllowanceMs: e.BERTH_START_ALLOWANCE_MS,
    ...(e.BERTH_WORKER_ADDRESS ? { address: e.BERTH_WORKER_ADDRESS } : {}),
    retry: { infraRetries: e.BERTH_INFRA_RETRIES, backoffMs: e.BERTH_RETRY_BACKOFF_MS },
    caps: {
      logLines: e.BERTH_LOG_STREAM_MAX_LINES,
      metricPoints: e.BERTH_METRIC_STREAM_MAX_POINTS,
      logBytes: e.BERTH_LOG_STREAM_MAX_BYTES,
      metricBytes: e.BERTH_METRIC_STREAM_MAX_BYTES,
      logFileBytes: e.BERTH_LOG_FILE_MAX_BYTES,
    },
    results: { maxBytes: e.BERTH_RESULTS_MAX_BYTES, maxFiles: e.BERTH_RESULTS_MAX_FILES },
    jobDefaults: { memory: e.BERTH_JOB_MEMORY_DEFAULT, cpus: e.BERTH_JOB_CPUS_DEFAULT, network: e.BERTH_JOB_NETWORK },
    gpuSampleMs: e.BERTH_GPU_SAMPLE_MS,
    metricsPort: e.BERTH_WORKER_METRICS_PORT,
    metricsHost: e.BERTH_WORKER_METRICS_HOST,
    health: { maxLagMs: e.BERTH_WORKER_MAX_LAG_MS, stuckMs: e.BERTH_WORKER_STUCK_MS },
    bufferBytes: e.BERTH_WORKER_BUFFER_BYTES,
    inputCacheBytes: e.BERTH_INPUT_CACHE_BYTES,
    logLevel: e.LOG_LEVEL,
    heapGrowthPercent: e.BERTH_HEAP_GROWTH_PERCENT,
  };
}

/** The configuration as it may be logged: the NGC key and the API token never appear, only whether one is set. */
export function loggableConfig(config: WorkerConfig): Record<string, unknown> {
  const { ngc, api, redisUrl, dockerHost, ...rest } = config;
  const set = (...values: (string | undefined)[]) => (values.some(Boolean) ? '[set]' : '[none]');
  // Every URL loses its credentials: REDIS_URL carries the Redis password, and nothing stops an operator from
  // putting userinfo or a token parameter in the others.
  return {
    ...rest,
    redisUrl: maskUrl(redisUrl),
    dockerHost: dockerHost === undefined ? undefined : maskUrl(dockerHost),
    ngc: { registry: maskUrl(ngc.registry), key: set(ngc.key, ngc.keyFile) },
    api: { url: maskUrl(api.url), token: set(api.token, api.tokenFile) },
  };
}

/** dockerode options from DOCKER_HOST (unix:// or tcp://), or the local socket. */
export function dockerOptions(dockerHost: string | undefined): { socketPath: string } | { host: string; port: number } {
  if (!dockerHost) return { socketPath: '/var/run/docker.sock' };
  const url = new URL(dockerHost);
  if (url.protocol === 'unix:') return { socketPath: url.pathname };
  return { host: url.hostname, port: Number(url.port || 2375) };
}
