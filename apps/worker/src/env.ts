// The worker's configuration: parsed once from the environment; nothing else reads process.env.
import { hostname } from 'node:os';
import { z } from 'zod';

const Env = z.object({
  REDIS_URL: z.string().url().default('redis://127.0.0.1:6379'),
  DOCKER_HOST: z.string().optional(),
  BERTH_DATA_DIR: z.string().default('./var'),
  BERTH_MANIFESTS_DIR: z.string().default('./ngc-manifests'),
  BERTH_PREFIX: z
    .string()
    .regex(/^[a-z0-9-]+$/)
    .default('berth'),
  BERTH_WORKER_ID: z
    .string()
    .regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/)
    .default(hostname().slice(0, 63)),
  BERTH_WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(4),
  BERTH_WORKER_LOCK_MS: z.coerce.number().int().min(1000).default(60_000),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export interface WorkerConfig {
  redisUrl: string;
  /** unix:///path or tcp://host:port; the local socket when unset. */
  dockerHost: string | undefined;
  dataDir: string;
  manifestsDir: string;
  prefix: string;
  workerId: string;
  concurrency: number;
  lockMs: number;
  logLevel: string;
}

export function loadWorkerConfig(env: NodeJS.ProcessEnv = process.env): WorkerConfig {
  const e = Env.parse(env);
  return {
    redisUrl: e.REDIS_URL,
    dockerHost: e.DOCKER_HOST,
    dataDir: e.BERTH_DATA_DIR,
    manifestsDir: e.BERTH_MANIFESTS_DIR,
    prefix: e.BERTH_PREFIX,
    workerId: e.BERTH_WORKER_ID,
    concurrency: e.BERTH_WORKER_CONCURRENCY,
    lockMs: e.BERTH_WORKER_LOCK_MS,
    logLevel: e.LOG_LEVEL,
  };
}

/** dockerode options from DOCKER_HOST (unix:// or tcp://), or the local socket. */
export function dockerOptions(dockerHost: string | undefined): { socketPath: string } | { host: string; port: number } {
  if (!dockerHost) return { socketPath: '/var/run/docker.sock' };
  const url = new URL(dockerHost);
  if (url.protocol === 'unix:') return { socketPath: url.pathname };
  return { host: url.hostname, port: Number(url.port || 2375) };
}
