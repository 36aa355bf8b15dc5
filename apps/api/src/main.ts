// Reads config, builds the API, listens, and shuts down gracefully on SIGINT/SIGTERM.
import { exitOnSignals } from '@berth/contracts';
import { ManifestError } from '@berth/manifests';
import { redactDebugOutput } from '@berth/store';
import { buildApp } from './app.js';
import { setFlagsFromString } from 'node:v8';
import { loadApiConfig } from './env.js';

redactDebugOutput();
const config = loadApiConfig();
// How far the heap may outgrow what is live: BERTH_HEAP_GROWTH_PERCENT (env.ts).
if (config.heapGrowthPercent > 0) setFlagsFromString(`--heap-growing-percent=${config.heapGrowthPercent}`);
const app = await buildApp(config).catch((err: unknown) => {
  // A broken recipe stops start-up with its file, JSON path and reason, in one line.
  process.stderr.write(`berth-api: ${err instanceof ManifestError ? err.message : String(err)}\n`);
  process.exit(1);
});
await app.listen({ port: config.port, host: config.host });

exitOnSignals(() => app.close());
