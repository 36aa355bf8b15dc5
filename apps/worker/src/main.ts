// Reads config, builds the worker on the local Docker engine, and shuts down gracefully.
import { loadManifests, ManifestError } from '@berth/manifests';
import Docker from 'dockerode';
import { resolve } from 'node:path';
import { pino } from 'pino';
import { loadWorkerConfig, dockerOptions } from './env.js';
import { DockerRuntime } from './executor/docker-runtime.js';
import { memlockLimit } from './executor/host-limits.js';
import { buildWorker } from './worker.js';

const config = loadWorkerConfig();
const logger = pino({ level: config.logLevel, base: { worker: config.workerId } });
const docker = new Docker(dockerOptions(config.dockerHost));
try {
  await docker.ping();
} catch {
  logger.fatal(
    `no Docker engine answers at ${config.dockerHost ?? '/var/run/docker.sock'} — run scripts/setup-system.sh`,
  );
  process.exit(1);
}
let manifests;
try {
  manifests = loadManifests(config.manifestsDir);
} catch (err) {
  // A broken recipe stops start-up with its file, JSON path and reason.
  logger.fatal(err instanceof ManifestError ? err.message : String(err));
  process.exit(1);
}
const worker = buildWorker({
  ...config,
  manifests,
  dataDir: resolve(config.dataDir),
  runtime: new DockerRuntime(docker, memlockLimit()),
  logger,
});
logger.info({ concurrency: config.concurrency }, 'worker ready');

let closing = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (closing) return;
    closing = true;
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    void worker.close().then(() => process.exit(0));
  });
}
