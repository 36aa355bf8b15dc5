// A job's log: a Redis stream of lines whose ids are the SSE event ids, closed by one `end` entry.
import type { JobState, LogEntry } from '@berth/contracts';
import type { Redis } from 'ioredis';
import { keys, type Keys } from './keys.js';

export interface NewLine {
  stream: 'stdout' | 'stderr';
  text: string;
  time: string;
}

type RawEntry = [id: string, fields: string[]];

export class LogStream {
  private readonly keys: Keys;

  constructor(
    private readonly redis: Redis,
    prefix: string,
  ) {
    this.keys = keys(prefix);
  }

  /** Appends lines and counts them for the attempt in one transaction, so the count never disagrees with the stream. */
  async append(jobId: string, attempt: number, lines: readonly NewLine[]): Promise<void> {
    if (lines.length === 0) return;
    const tx = this.redis.multi();
    const key = this.keys.logs(jobId);
    for (const l of lines)
      tx.xadd(key, '*', 'a', attempt, 's', l.stream === 'stdout' ? 'o' : 'e', 't', l.time, 'x', l.text);
    tx.hincrby(this.keys.logCount(jobId), String(attempt), lines.length);
    await tx.exec();
  }

  /** Lines already stored for an attempt: a worker that re-attaches to a container skips this many. */
  async storedLines(jobId: string, attempt: number): Promise<number> {
    return Number((await this.redis.hget(this.keys.logCount(jobId), String(attempt))) ?? 0);
  }

  /** Entries strictly after `afterId` ('0' for the beginning). */
  async read(jobId: string, afterId: string, count: number): Promise<LogEntry[]> {
    const raw = (await this.redis.xrange(this.keys.logs(jobId), `(${afterId}`, '+', 'COUNT', count)) as RawEntry[];
    return raw.map(parseEntry);
  }

  /**
   * Waits up to `blockMs` for entries after `afterId`. Needs a connection of its own: a blocked
   * connection can't serve anything else.
   */
  async waitFor(conn: Redis, jobId: string, afterId: string, count: number, blockMs: number): Promise<LogEntry[]> {
    const res = (await conn.xread('COUNT', count, 'BLOCK', blockMs, 'STREAMS', this.keys.logs(jobId), afterId)) as
      [string, RawEntry[]][] | null;
    return res?.[0]?.[1].map(parseEntry) ?? [];
  }
}

function parseEntry([id, fields]: RawEntry): LogEntry {
  const f = new Map<string, string>();
  for (let i = 0; i + 1 < fields.length; i += 2) f.set(fields[i]!, fields[i + 1]!);
  const end = f.get('end');
  if (end !== undefined) return { kind: 'end', id, state: end as JobState };
  return {
    kind: 'line',
    id,
    attempt: Number(f.get('a')),
    stream: f.get('s') === 'e' ? 'stderr' : 'stdout',
    time: f.get('t') ?? '',
    text: f.get('x') ?? '',
  };
}
