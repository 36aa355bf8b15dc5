// Settings every berth process must read alike (the API and the workers write off silent workers and retry their
// jobs by the same rule): one definition, spread into each process's env.ts.
import { z } from 'zod';

/** Silence after which a worker is written off, by default: long enough for a Redis blip or a slow event loop. */
export const defaultLostAfterMs = 300_000;

export const clusterEnv = {
  /** Prefix of every Redis key: lets deployments (and tests) share one Redis. */
  BERTH_PREFIX: z
    .string()
    .regex(/^[a-z0-9-]+$/)
    .default('berth'),
  /** Silence after which a worker is written off and its jobs are retried elsewhere. */
  BERTH_LOST_AFTER_MS: z.coerce.number().int().min(1000).default(defaultLostAfterMs),
  /** New attempts after infrastructure failures. */
  BERTH_INFRA_RETRIES: z.coerce.number().int().min(0).max(20).default(3),
  /** Delay before the first retry; doubled for each further one. */
  BERTH_RETRY_BACKOFF_MS: z.coerce.number().int().min(0).default(5000),
  /** Days after a job ended before its log, metric and event streams are trimmed (the record and artifacts stay). */
  BERTH_STREAM_RETENTION_DAYS: z.coerce.number().min(0).default(30),
};
