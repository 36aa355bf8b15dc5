// Turns a job record into the launch of one attempt. The manifests package takes this over for YAML recipes.
import type { JobRecord } from '@berth/contracts';
import { join } from 'node:path';
import type { LaunchSpec } from './container-runtime.js';

export function containerName(jobId: string, attempt: number): string {
  return `berth-${jobId}-a${attempt}`;
}

/** Where an attempt's /results lives on the host, under the worker's data dir. */
export function resultsDir(dataDir: string, jobId: string, attempt: number): string {
  return join(dataDir, 'results', jobId, `a${attempt}`);
}

export function renderLaunch(job: JobRecord, attempt: number, workerId: string, dataDir: string): LaunchSpec {
  const { params, resources } = job.spec;
  return {
    name: containerName(job.id, attempt),
    image: params.image,
    command: params.command,
    env: params.env,
    labels: { 'berth.job': job.id, 'berth.attempt': String(attempt), 'berth.worker': workerId },
    gpus: resources.gpus > 0 ? 'all' : 'none',
    shmSizeBytes: 1024 * 1024 * 1024,
    resultsDir: resultsDir(dataDir, job.id, attempt),
  };
}
