// Settings every berth process must read alike (the API and the workers write off silent workers and retry their
// jobs by the same rule): one definition, spread into each process's env.ts.
import { z } from 'zod';

export const clusterEnv = {
  /** Prefix of every Redis key: lets deployments (and tests) share one Redis. */
  BERTH_PREFIX: z
    .string()
    .regex(/^[a-z0-9-]+$/)
    .default('berth'),
  /** Silence after which a worker is written off and its jobs are retried elsewhere. */
  BERTH_LOST_AFTER_MS: z.coerce.number().int().min(1000).default(300_000),
  /** New attempts after infrastructure failures. */
  BERTH_INFRA_RETRIES: z.coerce.number().int().min(0).max(20).default(3),
  /** Delay before the first retry; doubled for each further one. */
  BERTH_RETRY_BACKOFF_MS: z.coerce.number().int().min(0).default(5000),
  /** Days after a job ended before its log, metric and event streams are trimmed (the record and artifacts stay). */
  BERTH_STREAM_RETENTION_DAYS: z.coerce.number().min(0).default(30),
  /**
   * How far V8 lets the heap grow past what the last full GC kept, in percent (V8's --heap-growing-percent; 0 leaves
   * it to V8). V8's own rule let a process with ~28 MB live grow to 130 MB while it streamed a log flood, because its
   * GC looked cheap; at 100 the same flood peaks ~40 MB above rest. Not a cap: the heap still grows with what is
   * live. Below 100 it costs: at 50, streaming a checkpoint download (1 MiB buffers) ran at half speed, collecting.
   */
  BERTH_HEAP_GROWTH_PERCENT: z.coerce.number().int().min(0).max(1000).default(100),
};
