// A job's log: a Redis stream of lines whose ids are the SSE event ids, closed by one `end` entry. The live stream
// is capped; where lines were dropped, a read from before them starts with a `truncated` marker.
import type { JobState, LogEntry } from '@berth/contracts';
import type { Redis } from 'ioredis';
import { keys, type Keys } from './keys.js';
import { runScript } from './scripts.js';
import { metricFields, type NewMetric } from './metric-stream.js';
import { latestId, type RawEntry, type TailSource } from './tail.js';

/** Consecutive lines of one output stream, read at one time: one entry of the log stream. */
export interface NewBatch {
  stream: 'stdout' | 'stderr';
  time: string;
  lines: string[];
}

export interface StreamCaps {
  /** Log lines kept in Redis per job (approximate; default 200,000). */
  logLines: number;
  /** Metric points kept in Redis per job (approximate; default 500,000). */
  metricPoints: number;
}

export const defaultCaps: StreamCaps = { logLines: 200_000, metricPoints: 500_000 };

// One script call per flush rather than a MULTI of one XADD per entry: the same atomic step, but the worker encodes
// one command and parses one reply. An entry is a batch of lines (one read of the container's output), so Redis, the
// API and a follower handle entries, not lines (a flood of short lines was bound by per-entry costs everywhere).
// Fields: `l` = attempt TAB stream TAB time TAB line LF line…, `s` = the job's lines before this batch (which turns
// the stream's first entry into the count of lines the cap dropped).
// The cap counts lines: past it, the oldest entries go, as many as hold the excess on average (the newest one stays).
// KEYS: logs, metrics, logCount
// ARGV: lineCap, attempt, nBatches, (nLines, packed)×nBatches, metricCap, nPoints, (nFields, fields…)×nPoints
const appendScript = `
local n = tonumber(ARGV[3])
local seq = tonumber(redis.call('HGET', KEYS[3], 'lines') or '0')
local added = 0
local i = 4
for _ = 1, n do
  redis.call('XADD', KEYS[1], '*', 'l', ARGV[i + 1], 's', seq)
  seq = seq + tonumber(ARGV[i])
  added = added + tonumber(ARGV[i])
  i = i + 2
end
if added > 0 then
  redis.call('HINCRBY', KEYS[3], ARGV[2], added)
  redis.call('HSET', KEYS[3], 'lines', seq)
  local cap = tonumber(ARGV[1])
  if seq > cap then
    local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)[1]
    local held = seq - tonumber(first[2][4] or seq)
    if held > cap then
      redis.call('XTRIM', KEYS[1], 'MAXLEN', math.max(1, math.floor(redis.call('XLEN', KEYS[1]) * cap / held)))
    end
  end
end
local mcap = ARGV[i]
local m = tonumber(ARGV[i + 1])
i = i + 2
for _ = 1, m do
  local c = tonumber(ARGV[i])
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', mcap, '*', unpack(ARGV, i + 1, i + c))
  i = i + c + 1
end
`;

export class LogStream {
  private readonly keys: Keys;

  constructor(
    private readonly redis: Redis,
    prefix: string,
    private readonly caps: StreamCaps = defaultCaps,
  ) {
    this.keys = keys(prefix);
  }

  /**
   * Appends batches of lines and the metric points read from them, and counts the lines for the attempt, in one
   * transaction: the count never disagrees with the stream, and a point never exists without its line.
   */
  async append(
    jobId: string,
    attempt: number,
    batches: readonly NewBatch[],
    points: readonly NewMetric[] = [],
  ): Promise<void> {
    const filled = batches.filter((b) => b.lines.length > 0);
    if (filled.length === 0 && points.length === 0) return;
    const args: (string | number)[] = [this.caps.logLines, attempt, filled.length];
    for (const b of filled) {
      args.push(b.lines.length, `${attempt}\t${b.stream === 'stdout' ? 'o' : 'e'}\t${b.time}\t${b.lines.join('\n')}`);
    }
    args.push(this.caps.metricPoints, points.length);
    for (const p of points) {
      const fields = metricFields(attempt, p);
      args.push(fields.length, ...fields);
    }
    await runScript(
      this.redis,
      appendScript,
      3,
      this.keys.logs(jobId),
      this.keys.metrics(jobId),
      this.keys.logCount(jobId),
      ...args,
    );
  }

  /** Lines already stored for an attempt: a worker that re-attaches to a container skips this many. */
  async storedLines(jobId: string, attempt: number): Promise<number> {
    return Number((await this.redis.hget(this.keys.logCount(jobId), String(attempt))) ?? 0);
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

  /** The last `n` lines (of one attempt if given), oldest first, in their batches (the first one cut to fit). */
  async tail(jobId: string, n: number, attempt?: number): Promise<LogEntry[]> {
    const found: LogEntry[] = [];
    let wanted = n;
    for (let before = '+'; wanted > 0;) {
      const raw = (await this.redis.xrevrange(this.keys.logs(jobId), before, '-', 'COUNT', 200)) as RawEntry[];
      for (const entry of raw.map(parseEntry)) {
        if (entry.kind !== 'lines' || (attempt !== undefined && entry.attempt !== attempt)) continue;
        if (entry.lines.length > wanted) entry.lines = entry.lines.slice(-wanted);
        found.push(entry);
        wanted -= entry.lines.length;
        if (wanted === 0) break;
      }
      if (raw.length < 200) break;
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
