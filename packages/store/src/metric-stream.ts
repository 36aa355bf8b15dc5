// A job's metric points as a Redis stream (written with its log lines), read back as downsampled series.
import { MetricPoint, type MetricKind, type MetricSeries } from '@berth/contracts';
import type { Redis } from 'ioredis';
import { keys, type Keys } from './keys.js';
import { latestId, parseFields, type RawEntry, type TailSource } from './tail.js';

export interface NewMetric {
  name: string;
  value: number;
  step: number | null;
  unit?: string;
  kind: MetricKind;
  time: string;
}

export function metricFields(attempt: number, p: NewMetric): (string | number)[] {
  return ['a', attempt, 'n', p.name, 'v', p.value, 's', p.step ?? '', 'u', p.unit ?? '', 'k', p.kind, 't', p.time];
}

/** A point, or the entry that closes the stream when the job ends. */
export type MetricEntry = ({ entry: 'point' } & MetricPoint) | { entry: 'end'; id: string; state: string };

export interface SeriesQuery {
  /** Only these series (default: all). */
  names?: readonly string[];
  /** At most this many points per series (default 500). */
  points?: number;
  /** Only this attempt (default: the latest one that reported anything). */
  attempt?: number;
}

export class MetricStream {
  private readonly keys: Keys;

  constructor(
    private readonly redis: Redis,
    prefix: string,
  ) {
    this.keys = keys(prefix);
  }

  /** Points written by the worker itself (e.g. GPU telemetry), outside the log pump's batches. */
  async add(jobId: string, attempt: number, points: readonly NewMetric[], cap: number): Promise<void> {
    if (points.length === 0) return;
    const tx = this.redis.multi();
    for (const p of points) tx.xadd(this.keys.metrics(jobId), 'MAXLEN', '~', cap, '*', ...metricFields(attempt, p));
    await tx.exec();
  }

  async read(jobId: string, after: string, count: number): Promise<MetricEntry[]> {
    const raw = (await this.redis.xrange(this.keys.metrics(jobId), `(${after}`, '+', 'COUNT', count)) as RawEntry[];
    return raw.map(parseEntry);
  }

  source(jobId: string): TailSource<MetricEntry> {
    return {
      read: (after, count) => this.read(jobId, after, count),
      waitFor: async (conn, after, count, blockMs) => {
        const res = (await conn.xread('COUNT', count, 'BLOCK', blockMs, 'STREAMS', this.keys.metrics(jobId), after)) as
          [string, RawEntry[]][] | null;
        return res?.[0]?.[1].map(parseEntry) ?? [];
      },
      latest: () => latestId(this.redis, this.keys.metrics(jobId)),
      isEnd: (e) => e.entry === 'end',
    };
  }

  /** Every series of one attempt, each downsampled to at most `points` points (bucket means, last point kept). */
  async series(jobId: string, query: SeriesQuery = {}): Promise<{ attempt: number | null; series: MetricSeries[] }> {
    const all: MetricPoint[] = [];
    for (let after = '0'; ;) {
      const batch = await this.read(jobId, after, 10_000);
      for (const e of batch) if (e.entry === 'point') all.push(e);
      if (batch.length < 10_000) break;
      after = batch.at(-1)!.id;
    }
    const attempt = query.attempt ?? all.at(-1)?.attempt ?? null;
    const wanted = query.names ? new Set(query.names) : null;
    const byName = new Map<string, MetricPoint[]>();
    for (const p of all) {
      if (p.attempt !== attempt || (wanted && !wanted.has(p.name))) continue;
      const list = byName.get(p.name) ?? [];
      list.push(p);
      byName.set(p.name, list);
    }
    const limit = query.points ?? 500;
    const series = [...byName.entries()].map(([name, points]): MetricSeries => {
      const byStep = points.every((p) => p.step !== null);
      const xy = points.map((p): [number, number] => [byStep ? p.step! : Date.parse(p.time), p.value]);
      const last = points.at(-1)!;
      return {
        name,
        ...(last.unit ? { unit: last.unit } : {}),
        kind: last.kind,
        count: points.length,
        points: downsample(xy, limit),
        x: byStep ? 'step' : 'time',
        latest: last.value,
      };
    });
    return { attempt, series: series.sort((a, b) => a.name.localeCompare(b.name)) };
  }
}

/** Bucket means over equal runs of points; the first and last points are kept as they are. */
export function downsample(xy: readonly [number, number][], limit: number): [number, number][] {
  if (xy.length <= limit) return [...xy];
  if (limit < 3) return [xy.at(-1)!];
  const inner = xy.slice(1, -1);
  const buckets = limit - 2;
  const out: [number, number][] = [xy[0]!];
  for (let b = 0; b < buckets; b++) {
    const from = Math.floor((b * inner.length) / buckets);
    const to = Math.floor(((b + 1) * inner.length) / buckets);
    const slice = inner.slice(from, to);
    if (slice.length === 0) continue;
    out.push([slice.at(-1)![0], slice.reduce((s, p) => s + p[1], 0) / slice.length]);
  }
  out.push(xy.at(-1)!);
  return out;
}

function parseEntry([id, fields]: RawEntry): MetricEntry {
  const f = parseFields(fields);
  const end = f.get('end');
  if (end !== undefined) return { entry: 'end', id, state: end };
  const step = f.get('s');
  const unit = f.get('u');
  const point = MetricPoint.parse({
    id,
    attempt: Number(f.get('a')),
    name: f.get('n'),
    value: Number(f.get('v')),
    step: step ? Number(step) : null,
    ...(unit ? { unit } : {}),
    kind: f.get('k'),
    time: f.get('t'),
  });
  return { entry: 'point', ...point };
}
