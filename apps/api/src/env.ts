// The API's configuration: parsed once from the environment; nothing else reads process.env.
import { clusterEnv } from '@berth/contracts';
import { z } from 'zod';

const Env = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  HOST: z.string().default('127.0.0.1'),
  REDIS_URL: z.string().url().default('redis://127.0.0.1:6379'),
  BERTH_DATA_DIR: z.string().default('./var'),
  BERTH_MANIFESTS_DIR: z.string().default('./ngc-manifests'),
  ...clusterEnv,
  /** How often the API ends expired jobs and writes off silent workers. */
  BERTH_SWEEP_MS: z.coerce.number().int().min(100).default(5000),
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
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export interface ApiConfig {
  port: number;
  host: string;
  redisUrl: string;
  dataDir: string;
  /** Folder of recipe YAML files, all validated at start-up. */
  manifestsDir: string;
  /** Prefix of every Redis key: lets deployments (and tests) share one Redis. */
  prefix: string;
  lostAfterMs: number;
  retry: { infraRetries: number; backoffMs: number };
  sweepMs: number;
  keepCheckpoints: number;
  artifactMaxBytes: number;
  datasetMaxBytes: number;
  logLevel: string;
}

export function loadApiConfig(env: NodeJS.ProcessEnv = process.env): ApiConfig {
  const e = Env.parse(env);
  return {
    port: e.PORT,
    host: e.HOST,
    redisUrl: e.REDIS_URL,
    dataDir: e.BERTH_DATA_DIR,
    manifestsDir: e.BERTH_MANIFESTS_DIR,
    prefix: e.BERTH_PREFIX,
    lostAfterMs: e.BERTH_LOST_AFTER_MS,
    retry: { infraRetries: e.BERTH_INFRA_RETRIES, backoffMs: e.BERTH_RETRY_BACKOFF_MS },
    sweepMs: e.BERTH_SWEEP_MS,
    keepCheckpoints: e.BERTH_KEEP_CHECKPOINTS,
    artifactMaxBytes: e.BERTH_ARTIFACT_MAX_BYTES,
    datasetMaxBytes: e.BERTH_DATASET_MAX_BYTES,
    logLevel: e.LOG_LEVEL,
  };
}
