// A job's log: a Redis stream of lines whose ids are the SSE event ids, closed by one `end` entry. The live stream
// is capped; where lines were dropped, a read from before them starts with a `truncated` marker.
import type { JobState, LogEntry } from '@berth/contracts';
import type { Redis } from 'ioredis';
import { keys, type Keys } from './keys.js';
import { defaultCaps, type StreamCaps } from './stream-caps.js';
import { metricFields, type NewMetric } from './metric-stream.js';
import { appendToStreams, type AppendAnswer } from './stream-append.js';
import { latestId, type RawEntry, type TailSource } from './tail.js';

/**
 * The id a multi-node job's member logs under: `<job id>.n<rank>` for the members after the head, whose log is the
 * job's own. Each member's stream and line counts are its own, so a re-attached member resumes its own position.
 */
export function memberLogId(jobId: string, rank: number): string {
  return rank > 0 ? `${jobId}.n${rank}` : jobId;
}

/** Consecutive lines of one output stream, read at one time: one entry of the log stream. */
export interface NewBatch {
  stream: 'stdout' | 'stderr';
  time: string;
  lines: string[];
}

// One script call per flush rather than a MULTI of one XADD per entry: the same atomic step, but the worker encodes
// one command and parses one reply. An entry is a batch of lines (one read of the container's output), so Redis, the
// API and a follower handle entries, not lines (a flood of short lines was bound by per-entry costs everywhere).
// Fields: `l` = attempt TAB stream TAB time TAB line LF line…, `s` = the job's lines before this batch (which turns
// the stream's first entry into the count of lines the caps dropped). The caps are kept by stream-append.ts.

export class LogStream {
  private readonly keys: Keys;
  /** The caps in force, defaults filled in (the log pump takes its file's cap from here). */
  readonly caps: Required<StreamCaps>;

  constructor(
    private readonly redis: Redis,
    prefix: string,
    caps: StreamCaps = defaultCaps,
  ) {
    this.keys = keys(prefix);
    this.caps = { ...defaultCaps, ...caps };
  }

  /**
   * Appends batches of lines and the metric points read from them, and counts the lines for the attempt, in one
   * transaction: the count never disagrees with the stream, and a point never exists without its line. With `from`
   * (the attempt's lines the writer knows are stored before this call) a retried call stores nothing twice.
   */
  async append(
    jobId: string,
    attempt: number,
    batches: readonly NewBatch[],
    points: readonly NewMetric[] = [],
    from?: number,
    mark?: string,
  ): Promise<AppendAnswer> {
    const filled = batches.filter((b) => b.lines.length > 0);
    if (filled.length === 0 && points.length === 0 && !mark) return { before: from ?? 0, applied: true };
    const packed = filled.map((b) => ({
      lines: b.lines.length,
      packed: `${attempt}\t${b.stream === 'stdout' ? 'o' : 'e'}\t${b.time}\t${b.lines.join('\n')}`,
    }));
    return appendToStreams(
      this.redis,
      { logs: this.keys.logs(jobId), metrics: this.keys.metrics(jobId), counts: this.keys.logCount(jobId) },
      this.caps,
      attempt,
      packed,
      points.map((p) => metricFields(attempt, p)),
      from,
      mark,
    );
  }

  /** Lines already stored for an attempt: a worker that re-attaches to a container skips this many. */
  async storedLines(jobId: string, attempt: number): Promise<number> {
    return Number((await this.redis.hget(this.keys.logCount(jobId), String(attempt))) ?? 0);
  }

  /**
   * Where a worker that re-attaches to the attempt's container goes on reading: the writer's last mark (an opaque
   * `since atLast lines` of the engine's log) and the lines stored then, or null for a read from the start.
   */
  async storedMark(jobId: string, attempt: number): Promise<{ stored: number; mark: string | null }> {
    const [stored, mark] = await this.redis.hmget(this.keys.logCount(jobId), String(attempt), `mark:${attempt}`);
    return { stored: Number(stored ?? 0), mark: mark ?? null };
  }

  /**
   * Entries strictly after `afterId` ('0' for the beginning), at most `count`. A read that starts at the oldest
   * stored entry where the cap dropped lines begins with a `truncated` marker.
   */
  async read(jobId: string, afterId: string, count: number): Promise<LogEntry[]> {
    const raw = (await this.redis.xrange(this.keys.logs(jobId), `(${afterId}`, '+', 'COUNT', count)) as RawEntry[];
    const entries = raw.map(parseEntry);
    const dropped = Number(raw[0]?.[1][3] ?? 0);
    if (dropped > 0) {
      const oldest = (await this.redis.xrange(this.keys.logs(jobId), '-', '+', 'COUNT', 1)) as RawEntry[];
      if (oldest[0]?.[0] === raw[0]![0]) entries.unshift({ kind: 'truncated', dropped });
    }
    return entries;
  }

  /**
   * A page of whole batches after `afterId`: batches are added while the page stays within `limit` lines and
   * `maxBytes` (a line counts its UTF-8 bytes and `lineOverhead` for its JSON shape), though the first batch always
   * goes in. Lines of other attempts are skipped when `attempt` is given. `cursor` is the last entry read (where the
   * next page starts); `more` says a limit stopped the page before entries that are there.
   */
  async page(
    jobId: string,
    afterId: string,
    limit: { lines: number; maxBytes: number; attempt?: number | undefined },
  ): Promise<{ entries: LogEntry[]; cursor: string | null; more: boolean }> {
    const entries: LogEntry[] = [];
    let lines = 0;
    let bytes = 0;
    let cursor: string | null = null;
    for (let after = afterId, first = true; ; first = false) {
      const chunk = first
        ? await this.read(jobId, after, pageChunk)
        : ((await this.redis.xrange(this.keys.logs(jobId), `(${after}`, '+', 'COUNT', pageChunk)) as RawEntry[]).map(
            parseEntry,
          );
      let read = 0;
      for (const e of chunk) {
        if (e.kind === 'truncated') {
          entries.push(e);
          continue;
        }
        read++;
        if (e.kind === 'lines') {
          if (limit.attempt !== undefined && e.attempt !== limit.attempt) {
            cursor = e.id;
            continue;
          }
          const size = batchBytes(e.lines);
          if (lines > 0 && (lines + e.lines.length > limit.lines || bytes + size > limit.maxBytes))
            return { entries, cursor, more: true };
          lines += e.lines.length;
          bytes += size;
        }
        entries.push(e);
        cursor = e.id;
      }
      if (read < pageChunk || lines >= limit.lines || bytes >= limit.maxBytes)
        return { entries, cursor, more: read === pageChunk };
      after = cursor!;
    }
  }

  /**
   * The last `n` lines (of one attempt if given), oldest first, in their batches (the first one cut to fit), and at
   * most `maxBytes` of them counted as `page` counts: a tail of long lines stops early.
   */
  async tail(jobId: string, n: number, attempt?: number, maxBytes = Infinity): Promise<LogEntry[]> {
    const found: LogEntry[] = [];
    let wanted = n;
    let bytes = 0;
    for (let before = '+'; wanted > 0;) {
      const raw = (await this.redis.xrevrange(this.keys.logs(jobId), before, '-', 'COUNT', pageChunk)) as RawEntry[];
      for (const entry of raw.map(parseEntry)) {
        if (entry.kind !== 'lines' || (attempt !== undefined && entry.attempt !== attempt)) continue;
        if (entry.lines.length > wanted) entry.lines = entry.lines.slice(-wanted);
        // Newest lines first: the batch keeps the lines at its end that still fit.
        let keep = 0;
        for (let i = entry.lines.length - 1; i >= 0; i--) {
          const size = Buffer.byteLength(entry.lines[i]!) + lineOverhead;
          if (bytes + size > maxBytes && (found.length > 0 || keep > 0)) break;
          bytes += size;
          keep++;
        }
        if (keep < entry.lines.length) {
          if (keep > 0) found.push({ ...entry, lines: entry.lines.slice(-keep) });
          return found.reverse();
        }
        found.push(entry);
        wanted -= entry.lines.length;
        if (wanted === 0) break;
      }
      if (raw.length < pageChunk) break;
      before = `(${raw.at(-1)![0]}`;
    }
    return found.reverse();
  }

  /** A tail source over this job's log, for followers. */
  source(jobId: string): TailSource<LogEntry> {
    // Only a follower's first read can start before the oldest stored line; later ones skip the check.
    let first = true;
    return {
      read: async (after, count) => {
        if (!first)
          return ((await this.redis.xrange(this.keys.logs(jobId), `(${after}`, '+', 'COUNT', count)) as RawEntry[]).map(
            parseEntry,
          );
        first = false;
        return this.read(jobId, after, count);
      },
      waitFor: async (conn, after, count, blockMs) => {
        const res = (await conn.xread('COUNT', count, 'BLOCK', blockMs, 'STREAMS', this.keys.logs(jobId), after)) as
          [string, RawEntry[]][] | null;
        return res?.[0]?.[1].map(parseEntry) ?? [];
      },
      latest: () => latestId(this.redis, this.keys.logs(jobId)),
      isEnd: (e) => e.kind === 'end',
    };
  }
}

/** Entries read per XRANGE by `page` and `tail`: at most a few MB however long the lines. */
const pageChunk = 32;

/** What a line costs in a JSON page besides its text: its batch's id, attempt, stream and time. */
export const lineOverhead = 100;

function batchBytes(lines: readonly string[]): number {
  let bytes = lines.length * lineOverhead;
  for (const l of lines) bytes += Buffer.byteLength(l);
  return bytes;
}

function parseEntry([id, fields]: RawEntry): LogEntry {
  if (fields[0] === 'end') return { kind: 'end', id, state: fields[1] as JobState };
  // attempt TAB stream TAB time TAB lines (the lines may hold tabs of their own: only the first three split).
  const packed = fields[1] ?? '';
  const a = packed.indexOf('\t');
  const s = packed.indexOf('\t', a + 1);
  const t = packed.indexOf('\t', s + 1);
  return {
    kind: 'lines',
    id,
    attempt: Number(packed.slice(0, a)),
    stream: packed.slice(a + 1, s) === 'e' ? 'stderr' : 'stdout',
    time: packed.slice(s + 1, t),
    lines: packed.slice(t + 1).split('\n'),
  };
}
