// The API's configuration: parsed once from the environment; nothing else reads process.env.
import { z } from 'zod';

const Env = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  HOST: z.string().default('127.0.0.1'),
  REDIS_URL: z.string().url().default('redis://127.0.0.1:6379'),
  BERTH_DATA_DIR: z.string().default('./var'),
  BERTH_MANIFESTS_DIR: z.string().default('./ngc-manifests'),
  BERTH_PREFIX: z
    .string()
    .regex(/^[a-z0-9-]+$/)
    .default('berth'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export interface ApiConfig {
  port: number;
  host: string;
  redisUrl: string;
  dataDir: string;
  /** Folder of recipe YAML files, all validated at start-up. */
  manifestsDir: string;
  /** Prefix of every Redis key and BullMQ queue: lets deployments (and tests) share one Redis. */
  prefix: string;
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
    logLevel: e.LOG_LEVEL,
  };
}
