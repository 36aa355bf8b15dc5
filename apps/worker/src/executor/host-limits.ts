// Limits every job container gets, derived from this host once at start.
//
// NGC images want `--ulimit memlock=-1`; a host whose own hard limit is lower (a nested container, a locked-down VM)
// makes runc fail every start. Read this process's hard limit and never ask for more than the host allows.
import { parseSize } from '@berth/manifests';
import { readFileSync } from 'node:fs';
import { availableParallelism, totalmem } from 'node:os';

/** The memlock value to give containers: -1 (unlimited) where the host permits it, else its hard limit in bytes. */
export function memlockLimit(limitsFile = '/proc/self/limits'): number {
  let text: string;
  try {
    text = readFileSync(limitsFile, 'utf8');
  } catch {
    return -1;
  }
  const line = text.split('\n').find((l) => l.startsWith('Max locked memory'));
  const hard = line?.slice('Max locked memory'.length).trim().split(/\s+/)[1];
  return hard === undefined || hard === 'unlimited' ? -1 : Number(hard);
}

/** What a job gets when neither it nor its recipe sets a limit. */
export interface JobLimitDefaults {
  memoryBytes: number;
  /** Docker's NanoCpus: billionths of a CPU. */
  nanoCpus: number;
}

export interface HostSize {
  memoryBytes: number;
  cpus: number;
}

/**
 * One job's share of the host: 3/4 of its memory and 7/8 of its CPUs, split between the jobs that may run at once
 * (`concurrency`), never below 256 MiB and one CPU.
 */
export function hostShare(host: HostSize, concurrency = 1): JobLimitDefaults {
  const jobs = Math.max(1, Math.floor(concurrency));
  // Without a memory limit a runaway job makes the kernel's OOM killer choose among every process on the host, the
  // worker and the engine included; with one, only the job ends (as OOM_KILLED). The quarter left over is for the
  // worker, the engine, Redis where it shares the host, and the page cache the jobs' dataset reads need. Split by
  // the jobs that run at once, so one tenant's job cannot take what the others were promised.
  const memoryBytes = Math.max(256 * 1024 ** 2, Math.floor((host.memoryBytes * 3) / 4 / jobs));
  // A CPU-bound job must not starve the worker's heartbeats and log pumping: an eighth of the host stays free.
  const cpus = Math.max(1, (host.cpus * 7) / 8 / jobs);
  return { memoryBytes, nanoCpus: Math.round(cpus * 1e9) };
}

/**
 * The configured defaults (config.jobDefaults: BERTH_JOB_MEMORY_DEFAULT, BERTH_JOB_CPUS_DEFAULT), and the host's
 * share for whichever is unset. Called once when the runtime is built.
 */
export function jobLimitDefaults(
  config: { memory?: string | undefined; cpus?: number | undefined },
  o: { concurrency?: number; host?: HostSize } = {},
): JobLimitDefaults {
  const share = hostShare(o.host ?? { memoryBytes: totalmem(), cpus: availableParallelism() }, o.concurrency);
  let memoryBytes = share.memoryBytes;
  if (config.memory !== undefined) {
    try {
      memoryBytes = parseSize(config.memory);
    } catch {
      throw new Error(`BERTH_JOB_MEMORY_DEFAULT is not a size (like 16g or 512m): ${config.memory}`);
    }
    if (memoryBytes < 6 * 1024 ** 2) throw new Error(`BERTH_JOB_MEMORY_DEFAULT is below Docker's 6 MiB minimum`);
  }
  const nanoCpus = config.cpus !== undefined ? Math.round(config.cpus * 1e9) : share.nanoCpus;
  return { memoryBytes, nanoCpus };
}
