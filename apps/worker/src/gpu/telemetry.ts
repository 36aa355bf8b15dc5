// GPU telemetry for running jobs: one nvidia-smi reading per interval, shared by every attempt on this worker,
// turned into `gpu.<index>.*` metric points for the GPUs each attempt holds.
import type { NewMetric } from '@berth/store';
import type { GpuQueryRow } from '@berth/telemetry';

export interface GpuReader {
  sample(): Promise<GpuQueryRow[]>;
}

export class GpuTelemetry {
  private last: { at: number; rows: Promise<GpuQueryRow[]> } | undefined;

  constructor(
    private readonly reader: GpuReader,
    /** How often running jobs are sampled (ms). */
    readonly intervalMs: number,
  ) {}

  /** Points for these GPUs (by UUID) from a reading at most half an interval old. */
  async points(uuids: readonly string[], now = Date.now()): Promise<NewMetric[]> {
    if (!this.last || now - this.last.at > this.intervalMs / 2) {
      this.last = { at: now, rows: this.reader.sample().catch(() => []) };
    }
    const rows = await this.last.rows;
    const time = new Date(now).toISOString();
    return rows.filter((r) => uuids.includes(r.uuid)).flatMap((r) => toPoints(r, time));
  }
}

function toPoints(r: GpuQueryRow, time: string): NewMetric[] {
  const series: [string, number | undefined, string][] = [
    ['utilization', r.utilizationPercent, '%'],
    ['memory_used', r.memoryUsedMiB, 'MiB'],
    ['memory_total', r.memoryTotalMiB, 'MiB'],
    ['power', r.powerDrawW, 'W'],
    ['temperature', r.temperatureC, 'C'],
    ['sm_clock', r.smClockMHz, 'MHz'],
  ];
  return series.flatMap(([name, value, unit]) =>
    value === undefined
      ? []
      : [{ name: `gpu.${r.index}.${name}`, value, step: null, unit, kind: 'gpu' as const, time }],
  );
}
