// Turns a job record into the launch of one attempt, through its recipe (validated again on this side).
import type { JobRecord } from '@berth/contracts';
import { renderLaunch, validateParams, type Manifest } from '@berth/manifests';
import { join } from 'node:path';
import { LaunchError, type LaunchSpec } from './container-runtime.js';

export function containerName(jobId: string, attempt: number): string {
  return `berth-${jobId}-a${attempt}`;
}

/** Where an attempt's /results lives on the host, under the worker's data dir. */
export function resultsDir(dataDir: string, jobId: string, attempt: number): string {
  return join(dataDir, 'results', jobId, `a${attempt}`);
}

export function renderAttempt(
  manifests: ReadonlyMap<string, Manifest>,
  job: JobRecord,
  attempt: number,
  workerId: string,
  dataDir: string,
): { manifest: Manifest; launch: LaunchSpec } {
  const manifest = manifests.get(job.spec.manifest);
  if (!manifest) throw new LaunchError('INFRA_ERROR', `recipe ${job.spec.manifest} is not known on worker ${workerId}`);
  const checked = validateParams(manifest, job.spec.params);
  if (!checked.ok) {
    const problems = checked.issues.map((i) => `${i.path}: ${i.message}`).join('; ');
    throw new LaunchError('INFRA_ERROR', `the job's parameters no longer fit recipe ${manifest.id}: ${problems}`);
  }
  const gpus = job.spec.resources.gpus ?? manifest.resources.gpus.default;
  const launch = renderLaunch(manifest, checked.params, {
    gpus: gpus > 0 ? 'all' : 'none',
    gpuCount: gpus,
    attempt,
    jobId: job.id,
    workerId,
    resultsDir: resultsDir(dataDir, job.id, attempt),
    cpu: gpus === 0,
  });
  return { manifest, launch };
}
