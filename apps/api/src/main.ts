// Reads config, builds the API, listens, and shuts down gracefully on SIGINT/SIGTERM.
import { buildApp } from './app.js';
import { loadApiConfig } from './env.js';

const config = loadApiConfig();
const app = await buildApp(config);
await app.listen({ port: config.port, host: config.host });

let closing = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (closing) return;
    closing = true;
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    void app.close().then(() => process.exit(0));
  });
}
