// The API's configuration: parsed once from the environment; nothing else reads process.env.
import { clusterEnv, maxNodes, type Quotas } from '@berth/contracts';
import { join } from 'node:path';
import { z } from 'zod';
import type { RateLimit } from './auth/auth.js';
import type { ImagePolicy } from './jobs/image-policy.js';

const Env = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  HOST: z.string().default('127.0.0.1'),
  REDIS_URL: z.string().url().default('redis://127.0.0.1:6379'),
  BERTH_DATA_DIR: z.string().default('./var'),
  BERTH_MANIFESTS_DIR: z.string().default('./ngc-manifests'),
  ...clusterEnv,
  /** How often the API ends expired jobs and writes off silent workers. */
  BERTH_SWEEP_MS: z.coerce.number().int().min(100).default(5000),
  /** A waiting job moves up a priority level (low → normal → high) for each this many seconds it waits. */
  BERTH_PRIORITY_AGING_S: z.coerce.number().int().min(1).default(1800),
  /** Checkpoint folders kept per job; older ones are deleted as new ones arrive. */
  BERTH_KEEP_CHECKPOINTS: z.coerce.number().int().min(1).default(3),
  BERTH_ARTIFACT_MAX_BYTES: z.coerce
    .number()
    .int()
    .min(1)
    .default(64 * 1024 ** 3),
  /** Largest dataset upload; unpacked it may be at most four times that. */
  BERTH_DATASET_MAX_BYTES: z.coerce
    .number()
    .int()
    .min(1)
    .default(16 * 1024 ** 3),
  /** The first admin's token: read from here on the first start, or made and written here (0600). */
  BERTH_BOOTSTRAP_TOKEN_FILE: z.string().optional(),
  /** A new member's limits: jobs waiting at once, and GPUs asked for by their unfinished jobs together. */
  BERTH_QUOTA_QUEUED_JOBS: z.coerce.number().int().min(0).default(1000),
  BERTH_QUOTA_GPUS: z.coerce.number().int().min(0).default(64),
  /** Requests a second a member may make on average (per API process), and at once after a quiet spell. */
  BERTH_RATE_LIMIT: z.coerce.number().min(0.1).default(100),
  BERTH_RATE_BURST: z.coerce.number().int().min(1).default(400),
  /** Comma-separated image patterns jobs may run (`*` one path part, `**` any). */
  BERTH_IMAGE_ALLOWLIST: z.string().default('nvcr.io/nvidia/**,docker.io/berth/**'),
  BERTH_IMAGE_REQUIRE_DIGEST: z.stringbool().default(false),
  /** How long a signed URL (EventSource, download links) works. */
  BERTH_SIGNED_URL_TTL_S: z.coerce.number().int().min(10).max(86_400).default(600),
  /** A connection silent this long is closed (SSE heartbeats every 15 s keep followers alive). */
  BERTH_IDLE_TIMEOUT_MS: z.coerce.number().int().min(1000).default(120_000),
  /** Live streams (SSE follows) one user may hold open at once, across this API process. */
  BERTH_MAX_STREAMS_PER_USER: z.coerce.number().int().min(1).default(64),
  /** The most hosts one job may span (resources.nodes), at most berth's own limit of 64. */
  BERTH_MAX_NODES: z.coerce.number().int().min(1).max(maxNodes).default(maxNodes),
  /** The built dashboard (apps/web/dist), served at /. */
  BERTH_WEB_DIR: z.string().default('./apps/web/dist'),
  /** Start on a Redis without AOF or with an evicting maxmemory-policy (one warning a problem); never in production. */
  BERTH_ALLOW_UNSAFE_REDIS: z.stringbool().default(false),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /**
   * How far V8 lets the heap grow past what the last full GC kept, in percent (--heap-growing-percent; 0 leaves it to
   * V8, whose own rule lets a log flood grow the heap several times over what is live). Not a cap. The API keeps 100:
   * lower, it spends its time collecting while it receives checkpoint uploads (bench/RESULTS.md).
   */
  BERTH_HEAP_GROWTH_PERCENT: z.coerce.number().int().min(0).max(1000).default(100),
});

export interface ApiConfig {
  port: number;
  host: string;
  redisUrl: string;
  /** Start even though Redis may lose or evict writes (BERTH_ALLOW_UNSAFE_REDIS); read by main.ts, not by buildApp. */
  allowUnsafeRedis?: boolean;
  dataDir: string;
  /** Folder of recipe YAML files, all validated at start-up. */
  manifestsDir: string;
  /** Prefix of every Redis key: lets deployments (and tests) share one Redis. */
  prefix: string;
  lostAfterMs: number;
  retry: { infraRetries: number; backoffMs: number };
  sweepMs: number;
  priorityAgingMs: number;
  keepCheckpoints: number;
  artifactMaxBytes: number;
  datasetMaxBytes: number;
  bootstrapTokenFile: string;
  memberQuotas: Quotas;
  rateLimit: RateLimit;
  images: ImagePolicy;
  signedUrlTtlSeconds: number;
  webDir: string;
  idleTimeoutMs: number;
  maxStreamsPerUser: number;
  /** The most hosts one job may span (BERTH_MAX_NODES). */
  maxNodes: number;
  streamRetentionDays: number;
  logLevel: string;
  /** V8's heap growing factor, in percent over the live heap (0: V8's own rule). */
  heapGrowthPercent: number;
}

export function loadApiConfig(env: NodeJS.ProcessEnv = process.env): ApiConfig {
  const e = Env.parse(env);
  return {
    port: e.PORT,
    host: e.HOST,
    redisUrl: e.REDIS_URL,
    allowUnsafeRedis: e.BERTH_ALLOW_UNSAFE_REDIS,
    dataDir: e.BERTH_DATA_DIR,
    manifestsDir: e.BERTH_MANIFESTS_DIR,
    prefix: e.BERTH_PREFIX,
    lostAfterMs: e.BERTH_LOST_AFTER_MS,
    retry: { infraRetries: e.BERTH_INFRA_RETRIES, backoffMs: e.BERTH_RETRY_BACKOFF_MS },
    sweepMs: e.BERTH_SWEEP_MS,
    priorityAgingMs: e.BERTH_PRIORITY_AGING_S * 1000,
    keepCheckpoints: e.BERTH_KEEP_CHECKPOINTS,
    artifactMaxBytes: e.BERTH_ARTIFACT_MAX_BYTES,
    datasetMaxBytes: e.BERTH_DATASET_MAX_BYTES,
    bootstrapTokenFile: e.BERTH_BOOTSTRAP_TOKEN_FILE ?? join(e.BERTH_DATA_DIR, 'admin-token'),
    memberQuotas: { queuedJobs: e.BERTH_QUOTA_QUEUED_JOBS, gpus: e.BERTH_QUOTA_GPUS },
    rateLimit: { perSecond: e.BERTH_RATE_LIMIT, burst: e.BERTH_RATE_BURST },
    images: {
      allow: e.BERTH_IMAGE_ALLOWLIST.split(',')
        .map((p) => p.trim())
        .filter(Boolean),
      requireDigest: e.BERTH_IMAGE_REQUIRE_DIGEST,
    },
    signedUrlTtlSeconds: e.BERTH_SIGNED_URL_TTL_S,
    webDir: e.BERTH_WEB_DIR,
    idleTimeoutMs: e.BERTH_IDLE_TIMEOUT_MS,
    maxStreamsPerUser: e.BERTH_MAX_STREAMS_PER_USER,
    maxNodes: e.BERTH_MAX_NODES,
    streamRetentionDays: e.BERTH_STREAM_RETENTION_DAYS,
    logLevel: e.LOG_LEVEL,
    heapGrowthPercent: e.BERTH_HEAP_GROWTH_PERCENT,
  };
}
