// Reads config, checks Redis, the Docker engine and the recipes, detects the GPUs, fences the jobs network, assembles
// the worker (assemble.ts), serves its metrics, and shuts down gracefully.
import { exitOnSignals, maskUrl } from '@berth/contracts';
import { checkRedisSafety, redactDebugOutput } from '@berth/store';
import { loadManifests, ManifestError } from '@berth/manifests';
import Docker from 'dockerode';
import { setFlagsFromString } from 'node:v8';
import { pino } from 'pino';
import { assembleWorker, berthPorts, jobLimits } from './assemble.js';
import { dockerOptions, loadWorkerConfig, loggableConfig } from './env.js';
import { cgroup2Root, ensureHostNetworkFence, ensureJobNetwork } from './executor/job-network.js';
import { detectGpus } from './gpu/inventory.js';
import { WorkerHealth } from './observability/worker-health.js';

redactDebugOutput();
const config = loadWorkerConfig();
// How far the heap may outgrow what is live: BERTH_HEAP_GROWTH_PERCENT (env.ts).
if (config.heapGrowthPercent > 0) setFlagsFromString(`--heap-growing-percent=${config.heapGrowthPercent}`);
const logger = pino({
  level: config.logLevel,
  base: { worker: config.workerId },
  // Secrets by path, should an error or a config ever carry one into a log line.
  redact: {
    paths: ['*.token', '*.password', '*.key', '*.authorization', '*["x-registry-auth"]', '*.authconfig'],
    censor: '[redacted]',
  },
});
const fatal = (message: string): never => {
  logger.fatal(message);
  process.exit(1);
};

const redisAt = maskUrl(config.redisUrl);
// Before anything is written: on a Redis that can lose or evict writes, jobs and BullMQ's locks vanish silently.
const unsafe = await checkRedisSafety(config.redisUrl, {
  allowUnsafe: config.allowUnsafeRedis,
  name: `berth-worker-${config.workerId}-check`,
  waiting: () => logger.warn({ redis: redisAt }, 'waiting for Redis to answer before starting'),
}).catch((err: unknown) => fatal(`${redisAt}: ${err instanceof Error ? err.message : String(err)}`));
for (const problem of unsafe) {
  logger.warn({ redis: redisAt }, `UNSAFE REDIS, starting only because BERTH_ALLOW_UNSAFE_REDIS is set: ${problem}`);
}

const docker = new Docker(dockerOptions(config.dockerHost));
const dockerVersion = await docker.version().then(
  (v) => v.Version,
  () =>
    fatal(
      `no Docker engine answers at ${config.dockerHost ? maskUrl(config.dockerHost) : '/var/run/docker.sock'} — ` +
        'run scripts/setup-system.sh',
    ),
);
const manifests = (() => {
  try {
    return loadManifests(config.manifestsDir);
  } catch (err) {
    // A broken recipe stops start-up with its file, JSON path and reason.
    return fatal(err instanceof ManifestError ? err.message : String(err));
  }
})();
const gpus = await detectGpus({
  configured: config.gpus,
  nvidiaSmi: config.nvidiaSmi,
}).catch((err: unknown) => fatal(`GPU detection failed: ${err instanceof Error ? err.message : String(err)}`));
// Jobs never run on an unfenced network: the network and its host rules exist before the worker takes a job.
const jobNetwork = await ensureJobNetwork(docker, { name: config.jobDefaults.network }).catch((err: unknown) =>
  fatal(`job network ${config.jobDefaults.network}: ${err instanceof Error ? err.message : String(err)}`),
);
// Members of multi-node jobs across hosts run on the host's network: fenced from berth's ports before any does.
const hostNetwork =
  config.address === undefined
    ? undefined
    : await docker
        .info()
        .then((info: { CgroupDriver?: string }) =>
          ensureHostNetworkFence(berthPorts(config), cgroup2Root(), info.CgroupDriver ?? 'cgroupfs'),
        )
        .catch((err: unknown) => fatal(`host-network fence: ${err instanceof Error ? err.message : String(err)}`));

const worker = (() => {
  try {
    return assembleWorker(config, {
      docker,
      dockerVersion,
      manifests,
      gpus,
      logger,
      hostNetwork,
    });
  } catch (err) {
    // No API token, an unreadable NGC key file, job limits the engine would refuse.
    return fatal(err instanceof Error ? err.message : String(err));
  }
})();
// Liveness for a supervisor: /healthz and berth_worker_healthy, served with the metrics.
const health =
  config.metricsPort > 0 ? new WorkerHealth({ ...config.health, queueStuckSince: worker.queueStuckSince }) : undefined;
if (health) worker.metrics.watch(health);
const metricsServer =
  config.metricsPort > 0
    ? await worker.metrics.serve(config.metricsPort, config.metricsHost).catch((err: unknown) => {
        const inUse = (err as NodeJS.ErrnoException).code === 'EADDRINUSE';
        logger.warn(
          { port: config.metricsPort, host: config.metricsHost, ...(inUse ? {} : { err }) },
          inUse
            ? `port ${config.metricsPort} is in use (another worker on this host?): this worker's Prometheus /metrics is not served; set BERTH_WORKER_METRICS_PORT to another port, or 0 for none`
            : 'Prometheus /metrics not served',
        );
        return undefined;
      })
    : undefined;
logger.info(
  {
    config: loggableConfig(config),
    jobNetwork: jobNetwork.name,
    limits: jobLimits(config),
    gpus: gpus.gpus.length,
    driver: gpus.driverVersion,
    cuda: gpus.cudaVersion,
  },
  'worker starting',
);

exitOnSignals(async () => {
  metricsServer?.close();
  health?.close();
  await worker.close();
});
