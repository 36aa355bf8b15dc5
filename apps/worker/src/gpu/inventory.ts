// The GPUs this worker may hand to containers, found by nvidia-smi or declared in BERTH_GPUS on hosts without it.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { gpuQueryArgs, parseBannerVersions, parseGpuQueryCsv, type GpuQueryRow } from '@berth/telemetry';

const run = promisify(execFile);

export interface Gpu {
  index: number;
  /**
   * The ledger key, and what the worker passes to Docker as a DeviceID: a `GPU-…` UUID from nvidia-smi, or the id
   * given in BERTH_GPUS (an index or a UUID). The NVIDIA runtime accepts both.
   */
  uuid: string;
  name: string;
  memoryMiB?: number;
}

export interface GpuInventoryReport {
  gpus: Gpu[];
  driverVersion?: string;
  cudaVersion?: string;
  source: 'nvidia-smi' | 'config' | 'none';
}

export interface GpuInventory {
  detect(): Promise<GpuInventoryReport>;
}

export interface NvidiaSmiInventoryOptions {
  /** The nvidia-smi executable, looked up on PATH unless it has a slash. Default `nvidia-smi`. */
  binary?: string;
  /** A hung driver can keep nvidia-smi waiting for minutes; give up after this long. Default 10 000 ms. */
  timeoutMs?: number;
}

/** nvidia-smi is installed but did not answer: no driver loaded, a GPU fallen off the bus, a timeout. */
export class NvidiaSmiFailedError extends Error {
  override readonly name = 'NvidiaSmiFailedError';

  constructor(
    message: string,
    readonly args: readonly string[],
    readonly exitCode: number | undefined,
    readonly output: string,
  ) {
    super(message);
  }
}

interface ExecError {
  code?: number | string;
  killed?: boolean;
  signal?: NodeJS.Signals | null;
  stdout?: string;
  stderr?: string;
}

export class NvidiaSmiInventory implements GpuInventory {
  private readonly binary: string;
  private readonly timeoutMs: number;

  constructor(options: NvidiaSmiInventoryOptions = {}) {
    this.binary = options.binary ?? 'nvidia-smi';
    this.timeoutMs = options.timeoutMs ?? 10_000;
  }

  async detect(): Promise<GpuInventoryReport> {
    const csv = await this.run(gpuQueryArgs);
    if (csv === undefined) return { gpus: [], source: 'none' };
    const rows = parseGpuQueryCsv(csv);
    // --query-gpu has no CUDA field; the banner carries both versions and is far cheaper than -q -x.
    const banner = await this.run([]);
    const versions = banner === undefined ? undefined : parseBannerVersions(banner);
    const driverVersion = versions?.driverVersion ?? rows[0]?.driverVersion;
    return {
      gpus: rows.map((r) => ({
        index: r.index,
        uuid: r.uuid,
        name: r.name,
        ...(r.memoryTotalMiB !== undefined ? { memoryMiB: r.memoryTotalMiB } : {}),
      })),
      ...(driverVersion !== undefined ? { driverVersion } : {}),
      ...(versions?.cudaVersion !== undefined ? { cudaVersion: versions.cudaVersion } : {}),
      source: 'nvidia-smi',
    };
  }

  /** One reading of every GPU (utilisation, memory, power, temperature); empty where nvidia-smi does not exist. */
  async sample(): Promise<GpuQueryRow[]> {
    const csv = await this.run(gpuQueryArgs);
    return csv === undefined ? [] : parseGpuQueryCsv(csv);
  }

  /** stdout, or undefined where the binary does not exist. */
  private async run(args: readonly string[]): Promise<string | undefined> {
    try {
      const { stdout } = await run(this.binary, args, { encoding: 'utf8', timeout: this.timeoutMs });
      return stdout;
    } catch (err) {
      const e = err as ExecError;
      if (e.code === 'ENOENT') return undefined;
      const command = [this.binary, ...args].join(' ');
      const exitCode = typeof e.code === 'number' ? e.code : undefined;
      // nvidia-smi prints its own failures ("couldn't communicate with the NVIDIA driver", "not a valid field")
      // on stdout, so stderr alone is often empty.
      const output = [e.stderr, e.stdout]
        .map((s) => s?.trim() ?? '')
        .filter((s) => s !== '')
        .join('\n');
      const why = e.killed
        ? `timed out after ${this.timeoutMs} ms`
        : exitCode !== undefined
          ? `exited with code ${exitCode}`
          : e.signal
            ? `was killed by ${e.signal}`
            : `could not run (${String(e.code ?? (err as Error).message)})`;
      throw new NvidiaSmiFailedError(`${command} ${why}${output !== '' ? `: ${output}` : ''}`, args, exitCode, output);
    }
  }
}

const configHelp = 'BERTH_GPUS must be a GPU count (e.g. 8) or a comma-separated list of GPU indices or UUIDs';
const configuredName = 'configured GPU';
const uuidPattern = /^(GPU|MIG)-[0-9A-Za-z/-]+$/;

/**
 * GPUs declared in BERTH_GPUS, for hosts where nvidia-smi cannot run (the worker in a container without it).
 * `N` is a count and gives ids `0`..`N-1`; `0,2,5` or `GPU-aaa,GPU-bbb` name the GPUs; `''` or `0` means none.
 * A bare number is always a count: one GPU is `1` (GPU 0) or, for any other, its UUID.
 */
export function configInventory(spec: string): GpuInventoryReport {
  const trimmed = spec.trim();
  if (/^\d+$/.test(trimmed)) {
    const count = Number(trimmed);
    return {
      gpus: Array.from({ length: count }, (_, index) => ({ index, uuid: String(index), name: configuredName })),
      source: 'config',
    };
  }
  if (trimmed === '') return { gpus: [], source: 'config' };

  const entries = trimmed.split(',').map((s) => s.trim());
  const bad = entries.find((id) => !/^\d+$/.test(id) && !uuidPattern.test(id));
  if (bad !== undefined)
    throw new Error(`${configHelp}; ${JSON.stringify(bad)} is neither, in ${JSON.stringify(spec)}`);
  const allIndices = entries.every((id) => /^\d+$/.test(id));
  if (!allIndices && entries.some((id) => /^\d+$/.test(id))) {
    // Mixed, an index and a UUID could name the same GPU and the ledger would hand it out twice.
    throw new Error(`${configHelp}, not a mix of both: ${JSON.stringify(spec)}`);
  }
  const ids = allIndices ? entries.map((id) => String(Number(id))) : entries;
  const duplicate = ids.find((id, i) => ids.indexOf(id) !== i);
  if (duplicate !== undefined) throw new Error(`BERTH_GPUS names GPU ${duplicate} twice: ${JSON.stringify(spec)}`);

  return {
    gpus: ids.map((id, position) => ({ index: allIndices ? Number(id) : position, uuid: id, name: configuredName })),
    source: 'config',
  };
}

export interface DetectGpusOptions {
  /** BERTH_GPUS. When set, even to '' or '0', it is the whole truth and nvidia-smi is not run. */
  configured?: string | undefined;
  /** The nvidia-smi executable. Default `nvidia-smi`. */
  nvidiaSmi?: string;
}

/** BERTH_GPUS when set; else nvidia-smi; no nvidia-smi at all means a CPU-only host with no GPUs. */
export async function detectGpus(opts: DetectGpusOptions = {}): Promise<GpuInventoryReport> {
  if (opts.configured !== undefined) return configInventory(opts.configured);
  return new NvidiaSmiInventory(opts.nvidiaSmi !== undefined ? { binary: opts.nvidiaSmi } : {}).detect();
}
