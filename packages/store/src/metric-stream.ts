// A job's metric points as a Redis stream (written with its log lines), read back as downsampled series.
import { MetricPoint, type MetricKind, type MetricSeries } from '@berth/contracts';
import type { Redis } from 'ioredis';
import { keys, type Keys } from './keys.js';
import { defaultCaps } from './stream-caps.js';
import { appendToStreams } from './stream-append.js';
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
  names?: readonly string[] | undefined;
  /** At most this many points per series (default 500). */
  points?: number | undefined;
  /** Only this attempt (default: the latest one that reported anything). */
  attempt?: number | undefined;
}

export class MetricStream {
  private readonly keys: Keys;

  /** @param metricBytes bytes of points kept per job (BERTH_METRIC_STREAM_MAX_BYTES; default 64 MiB). */
  constructor(
    private readonly redis: Redis,
    prefix: string,
    private readonly metricBytes = defaultCaps.metricBytes,
  ) {
    this.keys = keys(prefix);
  }

  /**
   * Points written by the worker itself (e.g. GPU telemetry), outside the log pump's batches: through the log's
   * append script, so the stream's byte count stays right whoever writes.
   */
  async add(jobId: string, attempt: number, points: readonly NewMetric[], cap: number): Promise<void> {
    if (points.length === 0) return;
    await appendToStreams(
      this.redis,
      { logs: this.keys.logs(jobId), metrics: this.keys.metrics(jobId), counts: this.keys.logCount(jobId) },
      // No lines go in, so the log's caps are never consulted.
      { logLines: 0, logBytes: 0, metricPoints: cap, metricBytes: this.metricBytes },
      attempt,
      [],
      points.map((p) => metricFields(attempt, p)),
    );
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

  /**
   * Every series of one attempt, each downsampled to at most `points` points (bucket means, last point kept). The
   * stream is read in chunks and never held whole: a first pass counts each series' points (and keeps them while
   * there are few in all); where there are many, a second pass over the same entries folds them into buckets.
   */
  async series(jobId: string, query: SeriesQuery = {}): Promise<{ attempt: number | null; series: MetricSeries[] }> {
    const attempt = query.attempt ?? (await this.latestAttempt(jobId));
    if (attempt === null) return { attempt: null, series: [] };
    const wanted = query.names ? new Set(query.names) : null;
    const limit = query.points ?? 500;
    const found = new Map<string, SeriesScan>();
    let held = 0;
    const keep = (p: MetricPoint): boolean => p.attempt === attempt && (!wanted || wanted.has(p.name));
    const last = await this.scan(jobId, '-', (p) => {
      if (!keep(p)) return;
      let s = found.get(p.name);
      if (!s) found.set(p.name, (s = { count: 0, byStep: true, last: p, points: [] }));
      s.count++;
      s.last = p;
      if (p.step === null) s.byStep = false;
      if (held <= heldPointsMax) {
        s.points.push(p);
        held++;
      }
    });
    const many = held > heldPointsMax;
    const samplers = new Map<string, Downsampler>();
    for (const [name, s] of found) samplers.set(name, new Downsampler(s.count, limit));
    const x = (s: SeriesScan, p: MetricPoint): number => (s.byStep ? p.step! : Date.parse(p.time));
    if (many && last) {
      // Up to the last entry the first pass saw: points added since then are not in its counts.
      await this.scan(
        jobId,
        '-',
        (p) => {
          const s = keep(p) ? found.get(p.name) : undefined;
          if (s) samplers.get(p.name)!.push(x(s, p), p.value, Date.parse(p.time));
        },
        last,
      );
    } else {
      for (const [name, s] of found) {
        for (const p of s.points) samplers.get(name)!.push(x(s, p), p.value, Date.parse(p.time));
      }
    }
    const series = [...found.entries()].map(([name, s]): MetricSeries => ({
      name,
      unit: s.last.unit,
      kind: s.last.kind,
      count: s.count,
      points: samplers.get(name)!.result(),
      x: s.byStep ? 'step' : 'time',
      ...(s.byStep ? { times: samplers.get(name)!.times() } : {}),
      latest: s.last.value,
    }));
    return { attempt, series: series.sort((a, b) => a.name.localeCompare(b.name)) };
  }

  /** The attempt of the newest point, null when there is none. */
  private async latestAttempt(jobId: string): Promise<number | null> {
    for (let before = '+'; ;) {
      const raw = (await this.redis.xrevrange(this.keys.metrics(jobId), before, '-', 'COUNT', 16)) as RawEntry[];
      for (const e of raw) {
        const entry = parseEntry(e);
        if (entry.entry === 'point') return entry.attempt;
      }
      if (raw.length < 16) return null;
      before = `(${raw.at(-1)![0]}`;
    }
  }

  /** Calls `each` for every point from `from` to `to` (inclusive), in chunks; returns the last entry's id. */
  private async scan(jobId: string, from: string, each: (p: MetricPoint) => void, to = '+'): Promise<string | null> {
    let lastId: string | null = null;
    for (let start = from; ;) {
      const raw = (await this.redis.xrange(this.keys.metrics(jobId), start, to, 'COUNT', scanChunk)) as RawEntry[];
      for (const e of raw) {
        const entry = parseEntry(e);
        if (entry.entry === 'point') each(entry);
      }
      if (raw.length > 0) lastId = raw.at(-1)![0];
      if (raw.length < scanChunk) return lastId;
      start = `(${lastId}`;
    }
  }
}

/** What the first pass learns of one series. */
interface SeriesScan {
  count: number;
  /** Every point has a step (x is the step), else x is the time. */
  byStep: boolean;
  last: MetricPoint;
  /** The points themselves, while the read holds few in all. */
  points: MetricPoint[];
}

/** Entries read per XRANGE: a chunk of parsed points is a few MB at most. */
const scanChunk = 5_000;
/** Points held by a read in all series together before it falls back to a second, bucketing pass (~20 MB). */
const heldPointsMax = 100_000;

/**
 * `downsample` one point at a time, knowing the count in advance: the same buckets, holding one bucket's sum.
 */
export class Downsampler {
  /** [x, y, t]: `t` rides along with each kept point (a step series' unix ms), the bucket's last one for a mean. */
  private readonly out: [number, number, number][] = [];
  private seen = 0;
  private bucket = 0;
  private bucketEnd = 0;
  private sum = 0;
  private inBucket = 0;
  private lastX = 0;
  private lastT = 0;
  private final: [number, number, number] | undefined;

  constructor(
    private readonly count: number,
    private readonly limit: number,
  ) {
    this.bucketEnd = this.edge(1);
  }

  push(x: number, y: number, t = x): void {
    const i = this.seen++;
    if (this.count <= this.limit) {
      this.out.push([x, y, t]);
      return;
    }
    if (this.limit < 3 || i === this.count - 1) {
      this.final = [x, y, t];
      return;
    }
    if (i === 0) {
      this.out.push([x, y, t]);
      return;
    }
    // Inner points (all but the first and last) go into limit - 2 equal runs.
    const inner = i - 1;
    while (inner >= this.bucketEnd) {
      this.close();
      this.bucket++;
      this.bucketEnd = this.edge(this.bucket + 1);
    }
    this.sum += y;
    this.inBucket++;
    this.lastX = x;
    this.lastT = t;
  }

  /** The kept points as [x, y]. */
  result(): [number, number][] {
    return this.kept().map(([x, y]) => [x, y]);
  }

  /** The `t` of each point `result()` gives, in the same order. */
  times(): number[] {
    return this.kept().map(([, , t]) => t);
  }

  private kept(): [number, number, number][] {
    if (this.count <= this.limit) return this.out;
    this.close();
    if (this.limit < 3) return this.final ? [this.final] : [];
    return this.final ? [...this.out, this.final] : this.out;
  }

  private edge(b: number): number {
    return Math.floor((b * (this.count - 2)) / (this.limit - 2));
  }

  private close(): void {
    if (this.inBucket > 0) this.out.push([this.lastX, this.sum / this.inBucket, this.lastT]);
    this.sum = 0;
    this.inBucket = 0;
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
