// Pure parsers for what `nvidia-smi` prints: the --query-gpu CSV (inventory and telemetry), the versions in its
// banner or -q -x XML, and -L. Running the binary is the caller's business; these only read text.

/**
 * The fields asked of `nvidia-smi --query-gpu`, in column order. The command is built from this list and the parser
 * finds each column by its place in it, so the two cannot drift apart. Checked against driver 580 on an H200:
 * `clocks.sm` is the current SM clock, and `power.draw` is the one-second average on Ampere and newer.
 */
export const gpuQueryFields = [
  'index',
  'uuid',
  'name',
  'memory.total',
  'memory.used',
  'utilization.gpu',
  'temperature.gpu',
  'power.draw',
  'power.limit',
  'clocks.sm',
  'driver_version',
] as const;

export type GpuQueryField = (typeof gpuQueryFields)[number];

/** Arguments for `nvidia-smi` that print the CSV {@link parseGpuQueryCsv} reads. */
export const gpuQueryArgs: readonly string[] = [
  `--query-gpu=${gpuQueryFields.join(',')}`,
  '--format=csv,noheader,nounits',
];

/** One GPU's line of the query. Readings the GPU cannot give (`[N/A]`, `[Not Supported]`, …) are undefined. */
export interface GpuQueryRow {
  index: number;
  /** `GPU-…`; stable across reboots and reordering, unlike the index. */
  uuid: string;
  name: string;
  memoryTotalMiB?: number | undefined;
  memoryUsedMiB?: number | undefined;
  utilizationPercent?: number | undefined;
  temperatureC?: number | undefined;
  powerDrawW?: number | undefined;
  powerLimitW?: number | undefined;
  smClockMHz?: number | undefined;
  driverVersion?: string | undefined;
}

export interface NvidiaSmiVersions {
  driverVersion: string;
  /** The newest CUDA the driver supports; absent where nvidia-smi does not say. */
  cudaVersion?: string;
}

/** A GPU as `nvidia-smi -L` lists it. */
export interface ListedGpu {
  index: number;
  name: string;
  uuid: string;
}

/** Output that is not what nvidia-smi prints. `line` is the offending line (or the start of the text). */
export class NvidiaSmiParseError extends Error {
  override readonly name = 'NvidiaSmiParseError';

  constructor(
    message: string,
    readonly line: string,
    readonly lineNumber?: number,
  ) {
    super(
      lineNumber === undefined
        ? `${message}: ${JSON.stringify(line)}`
        : `${message} (line ${lineNumber}): ${JSON.stringify(line)}`,
    );
  }
}

// nvidia-smi writes a bracketed reason where a reading is unavailable: [N/A], [Not Supported], [Unknown Error],
// [Insufficient Permissions], [GPU requires reset]. Bare N/A shows up in older drivers.
const unavailable = /^(\[[^\]]*\]|N\/A)$/;
const decimal = /^-?\d+(\.\d+)?$/;

function lines(text: string): { text: string; number: number }[] {
  return text
    .split('\n')
    .map((l, i) => ({ text: l.replace(/\r$/, ''), number: i + 1 }))
    .filter((l) => l.text.trim() !== '');
}

/** Parses the output of `nvidia-smi` with {@link gpuQueryArgs}: one line per GPU, no header. */
export function parseGpuQueryCsv(text: string): GpuQueryRow[] {
  return lines(text).map(({ text: line, number }) => {
    // nvidia-smi does not quote; no field we ask for can hold a comma, so a plain split is exact.
    const cells = line.split(',').map((c) => c.trim());
    if (cells.length !== gpuQueryFields.length) {
      throw new NvidiaSmiParseError(
        `expected ${gpuQueryFields.length} columns (${gpuQueryFields.join(',')}), got ${cells.length}`,
        line,
        number,
      );
    }
    const raw = (field: GpuQueryField): string | undefined => {
      const cell = cells[gpuQueryFields.indexOf(field)] ?? '';
      return cell === '' || unavailable.test(cell) ? undefined : cell;
    };
    const num = (field: GpuQueryField): number | undefined => {
      const cell = raw(field);
      if (cell === undefined) return undefined;
      if (!decimal.test(cell))
        throw new NvidiaSmiParseError(`${field} is not a number: ${JSON.stringify(cell)}`, line, number);
      return Number(cell);
    };
    const required = <T>(field: GpuQueryField, value: T | undefined): T => {
      if (value === undefined) throw new NvidiaSmiParseError(`${field} is missing`, line, number);
      return value;
    };

    const index = required('index', num('index'));
    if (!Number.isInteger(index) || index < 0) {
      throw new NvidiaSmiParseError(`index is not a GPU index: ${index}`, line, number);
    }
    return {
      index,
      uuid: required('uuid', raw('uuid')),
      name: required('name', raw('name')),
      memoryTotalMiB: num('memory.total'),
      memoryUsedMiB: num('memory.used'),
      utilizationPercent: num('utilization.gpu'),
      temperatureC: num('temperature.gpu'),
      powerDrawW: num('power.draw'),
      powerLimitW: num('power.limit'),
      smClockMHz: num('clocks.sm'),
      driverVersion: raw('driver_version'),
    };
  });
}

function presentOrUndefined(value: string | undefined): string | undefined {
  return value === undefined || unavailable.test(value) ? undefined : value;
}

/** Driver and CUDA versions from the header of plain `nvidia-smi`. */
export function parseBannerVersions(text: string): NvidiaSmiVersions {
  const line = lines(text).find((l) => l.text.includes('Driver Version:'));
  const driverVersion = presentOrUndefined(line?.text.match(/Driver Version:\s*(\S+)/)?.[1]);
  if (line === undefined || driverVersion === undefined) {
    throw new NvidiaSmiParseError('no "Driver Version:" in the nvidia-smi banner', firstLine(text));
  }
  const cudaVersion = presentOrUndefined(line.text.match(/CUDA Version:\s*([^\s|]+)/)?.[1]);
  return cudaVersion === undefined ? { driverVersion } : { driverVersion, cudaVersion };
}

/** Driver and CUDA versions from `nvidia-smi -q -x`. Both tags sit once, at the top of <nvidia_smi_log>. */
export function parseXmlVersions(xml: string): NvidiaSmiVersions {
  const tag = (name: string) =>
    presentOrUndefined(xml.match(new RegExp(`<${name}>\\s*([^<]*?)\\s*</${name}>`))?.[1] || undefined);
  const driverVersion = tag('driver_version');
  if (driverVersion === undefined) {
    throw new NvidiaSmiParseError('no <driver_version> in the nvidia-smi XML', firstLine(xml));
  }
  const cudaVersion = tag('cuda_version');
  return cudaVersion === undefined ? { driverVersion } : { driverVersion, cudaVersion };
}

/** Parses `nvidia-smi -L`. MIG instances, listed indented under their GPU, are left out: the inventory is per GPU. */
export function parseGpuList(text: string): ListedGpu[] {
  const gpus: ListedGpu[] = [];
  for (const { text: line, number } of lines(text)) {
    if (/^\s+MIG\b/.test(line)) continue;
    const m = line.match(/^GPU (\d+): (.+) \(UUID: ([^)\s]+)\)\s*$/);
    if (!m) throw new NvidiaSmiParseError('not a line of nvidia-smi -L', line, number);
    gpus.push({ index: Number(m[1]), name: m[2] ?? '', uuid: m[3] ?? '' });
  }
  return gpus;
}

function firstLine(text: string): string {
  return lines(text)[0]?.text ?? '';
}
