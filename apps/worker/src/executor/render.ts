// Turns a job record into the launch of one attempt, through its recipe (validated again on this side).
import type { JobRecord } from '@berth/contracts';
import { parseSize, renderLaunch, validateParams, type GangPlace, type Manifest } from '@berth/manifests';
import { join } from 'node:path';
import { LaunchError, type LaunchSpec } from './container-runtime.js';

/** An attempt's container; a multi-node member's carries its rank (the head's is the attempt's own). */
export function containerName(jobId: string, attempt: number, rank = 0): string {
  return `berth-${jobId}-a${attempt}${rank > 0 ? `-n${rank}` : ''}`;
}

/** Where an attempt's /results lives on the host, under the worker's data dir. */
export function resultsDir(dataDir: string, jobId: string, attempt: number): string {
  return join(dataDir, 'results', jobId, `a${attempt}`);
}

/** The attempt's full log on the worker host: every line, whatever the live stream's cap dropped. */
export function logFile(dataDir: string, jobId: string, attempt: number): string {
  return join(dataDir, 'logs', jobId, `a${attempt}.log`);
}

export interface AttemptPlace {
  attempt: number;
  workerId: string;
  /** The deployment's key prefix, labelled on the container so a worker only ever sweeps its own. */
  prefix: string;
  dataDir: string;
  /** 'all' in whole-host mode, the reserved GPU UUIDs in slot mode. */
  gpus: 'all' | string[];
  /** Host folders of the job's inputs: its dataset (/data) and another job's artifact (/init). */
  inputs?: { data?: string; init?: string };
  /** A multi-node member's place, and the network its members share. */
  gang?: GangPlace & { network: string };
}

export function renderAttempt(
  manifests: ReadonlyMap<string, Manifest>,
  job: JobRecord,
  place: AttemptPlace,
): { manifest: Manifest; launch: LaunchSpec } {
  const { attempt, workerId, dataDir } = place;
  const manifest = manifests.get(job.spec.manifest);
  if (!manifest) throw new LaunchError('INFRA_ERROR', `recipe ${job.spec.manifest} is not known on worker ${workerId}`);
  const checked = validateParams(manifest, job.spec.params);
  if (!checked.ok) {
    const problems = checked.issues.map((i) => `${i.path}: ${i.message}`).join('; ');
    throw new LaunchError('INFRA_ERROR', `the job's parameters no longer fit recipe ${manifest.id}: ${problems}`);
  }
  const gpus = job.spec.resources.gpus ?? manifest.resources.gpus.default;
  const launch = renderLaunch(manifest, checked.params, {
    gpus: gpus > 0 ? place.gpus : 'none',
    gpuCount: gpus,
    attempt,
    jobId: job.id,
    workerId,
    resultsDir: resultsDir(dataDir, job.id, attempt),
    ...(place.inputs?.data ? { dataDir: place.inputs.data } : {}),
    ...(place.inputs?.init ? { initDir: place.inputs.init } : {}),
    cpu: gpus === 0,
    gang: place.gang,
  });
  const memory = job.spec.resources.memory;
  return {
    manifest,
    launch: {
      ...launch,
      labels: { ...launch.labels, 'berth.prefix': place.prefix },
      // egress jobs go on the runtime's network (the fenced jobs network); the rest get no interface at all.
      // A multi-node member goes on its gang's network, whatever the recipe says: its members must reach each other.
      ...(place.gang
        ? { network: place.gang.network }
        : manifest.container.network === 'none'
          ? { network: 'none' }
          : {}),
      ...(memory !== undefined ? { memoryBytes: parseSize(memory) } : {}),
    },
  };
}
