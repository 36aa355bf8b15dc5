// The composition root: the worker main.ts runs, from its config and what the process found on the host. Tests
// build their workers through it too, so what main.ts wires is what the integration tests run.
import type { Manifest } from '@berth/manifests';
import type Docker from 'dockerode';
import { resolve } from 'node:path';
import type { Logger } from 'pino';
import { workerToken } from './api-client.js';
import type { WorkerTimings } from './defaults.js';
import type { WorkerConfig } from './env.js';
import type { ImageSource } from './executor/container-runtime.js';
import { DockerRuntime } from './executor/docker-runtime.js';
import { jobLimitDefaults, type JobLimitDefaults } from './executor/host-limits.js';
import { ImagePuller, ngcCredential } from './executor/image-puller.js';
import { NvidiaSmiInventory, type GpuInventoryReport } from './gpu/inventory.js';
import { GpuTelemetry } from './gpu/telemetry.js';
import { buildWorker, type BerthWorker } from './worker.js';

/** What the process brings that the config only names: the engine, the checked recipes, the GPUs it detected. */
export interface WorkerHost {
  docker: Docker;
  /** The engine's version as it answered at start-up, for the worker's registration. */
  dockerVersion?: string;
  manifests: ReadonlyMap<string, Manifest>;
  gpus: GpuInventoryReport;
  logger: Logger;
  /** The host-network fence (ensureHostNetworkFence), made where members run across hosts (config.address). */
  hostNetwork?: { cgroupParent: string } | undefined;
}

/** Settings the environment has no variable for; main.ts leaves them to buildWorker's defaults, tests shorten them. */
export interface WorkerOverrides {
  /** Over config.timings, including the ones with no variable (pollMs, watchdogMs). */
  timings?: Partial<WorkerTimings>;
  uploadIntervalMs?: number;
  /** How long the API may be away before an upload or input fetch fails (default: untilApiAnswers'). */
  apiGraceMs?: number;
  /** In place of the ImagePuller on the engine. */
  images?: ImageSource | undefined;
  /** In place of nvidia-smi sampling (which runs only where the GPUs came from nvidia-smi). */
  gpuTelemetry?: GpuTelemetry | undefined;
}

/** The limits of jobs that set none: the host's share, split between the jobs that may run at once in slots mode. */
export function jobLimits(config: WorkerConfig): JobLimitDefaults {
  // Whole-host mode gives one GPU job every GPU, so it keeps the whole host share; slots split it.
  return jobLimitDefaults(config.jobDefaults, { concurrency: config.mode === 'slots' ? config.concurrency : 1 });
}

/**
 * berth's own TCP ports as this worker knows them: Redis, the API, its metrics, a TCP Docker engine. Members on the
 * host's network are refused all of them (ensureHostNetworkFence).
 */
export function berthPorts(config: WorkerConfig): number[] {
  const portOf = (url: string, fallback: number) => Number(new URL(url).port || fallback);
  const ports = [portOf(config.redisUrl, 6379), portOf(config.api.url, config.api.url.startsWith('https:') ? 443 : 80)];
  if (config.metricsPort > 0) ports.push(config.metricsPort);
  if (config.dockerHost?.startsWith('tcp://')) ports.push(portOf(config.dockerHost.replace(/^tcp:/, 'http:'), 2375));
  return [...new Set(ports)].sort((a, b) => a - b);
}

/**
 * Builds (and so starts) the worker. Throws, before anything is started, for a config that cannot work: no API
 * token, an unreadable NGC key file, job limits the engine would refuse. The jobs network config.jobDefaults.network
 * must exist already (main.ts ensures it).
 */
export function assembleWorker(config: WorkerConfig, host: WorkerHost, overrides: WorkerOverrides = {}): BerthWorker {
  const token = workerToken(config.api);
  const credential = ngcCredential(config.ngc);
  const limits = jobLimits(config);
  const gpuTelemetry =
    overrides.gpuTelemetry ??
    (host.gpus.source === 'nvidia-smi'
      ? new GpuTelemetry(new NvidiaSmiInventory({ binary: config.nvidiaSmi }), config.gpuSampleMs)
      : undefined);
  return buildWorker({
    redisUrl: config.redisUrl,
    prefix: config.prefix,
    workerId: config.workerId,
    concurrency: config.concurrency,
    mode: config.mode,
    gpus: host.gpus,
    dataDir: resolve(config.dataDir),
    manifests: host.manifests,
    runtime: new DockerRuntime(host.docker, {
      limits,
      network: config.jobDefaults.network,
      log: config.containerLog,
      hostNetwork: host.hostNetwork,
    }),
    images:
      overrides.images ??
      new ImagePuller(host.docker, {
        attempts: config.pull.attempts,
        stallMs: config.pull.stallMs,
        credentials: credential ? [credential] : undefined,
      }),
    dockerVersion: host.dockerVersion,
    maxBypass: config.maxBypass,
    retry: config.retry,
    timings: { ...config.timings, ...overrides.timings },
    api: {
      url: config.api.url,
      token,
      ...(overrides.apiGraceMs !== undefined ? { graceMs: overrides.apiGraceMs } : {}),
    },
    uploadIntervalMs: overrides.uploadIntervalMs,
    resultsBudget: config.results,
    inputCacheBytes: config.inputCacheBytes,
    caps: config.caps,
    bufferBytes: config.bufferBytes,
    gpuTelemetry,
    gangReservationMs: config.gangReservationMs,
    startAllowanceMs: config.startAllowanceMs,
    address: config.address,
    logger: host.logger,
  });
}
