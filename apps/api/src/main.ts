// Reads config, checks Redis, builds the API, listens, and shuts down gracefully on SIGINT/SIGTERM.
import { exitOnSignals, maskUrl } from '@berth/contracts';
import { ManifestError } from '@berth/manifests';
import { checkRedisSafety, redactDebugOutput } from '@berth/store';
import { pino } from 'pino';
import { buildApp } from './app.js';
import { setFlagsFromString } from 'node:v8';
import { loadApiConfig } from './env.js';

redactDebugOutput();
const config = loadApiConfig();
// How far the heap may outgrow what is live: BERTH_HEAP_GROWTH_PERCENT (env.ts).
if (config.heapGrowthPercent > 0) setFlagsFromString(`--heap-growing-percent=${config.heapGrowthPercent}`);
const startLog = pino({ level: config.logLevel });
const redisAt = maskUrl(config.redisUrl);
// Before anything is written: on a Redis that can lose or evict writes, jobs and BullMQ's locks vanish silently.
const unsafe = await checkRedisSafety(config.redisUrl, {
  allowUnsafe: config.allowUnsafeRedis ?? false,
  name: 'berth-api-check',
  waiting: () => startLog.warn({ redis: redisAt }, 'waiting for Redis to answer before starting'),
}).catch((err: unknown) => {
  process.stderr.write(`berth-api: ${redisAt}: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
for (const problem of unsafe) {
  startLog.warn({ redis: redisAt }, `UNSAFE REDIS, starting only because BERTH_ALLOW_UNSAFE_REDIS is set: ${problem}`);
}
const app = await buildApp(config).catch((err: unknown) => {
  // A broken recipe stops start-up with its file, JSON path and reason, in one line.
  process.stderr.write(`berth-api: ${err instanceof ManifestError ? err.message : String(err)}\n`);
  process.exit(1);
});
await app.listen({ port: config.port, host: config.host });

exitOnSignals(() => app.close());
