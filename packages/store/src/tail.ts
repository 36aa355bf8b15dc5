// What a follower needs from a Redis stream: read what is there, wait for more, and know the last entry.
import type { Redis } from 'ioredis';

export type RawEntry = [id: string, fields: string[]];

export interface TailSource<T> {
  /** Entries strictly after `after` ('0' for the beginning). */
  read(after: string, count: number): Promise<T[]>;
  /**
   * Waits up to `blockMs` for entries after `after`, on a connection of its own (a blocked one serves nothing else).
   * It must send exactly `conn.xread('COUNT', count, 'BLOCK', blockMs, 'STREAMS', key, after)`: the API passes a
   * shared reader in the place of `conn` (apps/api/src/streams/shared-xread.ts), which refuses any other shape.
   */
  waitFor(conn: Redis, after: string, count: number, blockMs: number): Promise<T[]>;
  /** The id of the newest entry ('0' when empty): where a shared reader starts. */
  latest(): Promise<string>;
  /** The entry that closes the stream: nothing follows it. */
  isEnd(entry: T): boolean;
}

export function parseFields(fields: readonly string[]): Map<string, string> {
  const f = new Map<string, string>();
  for (let i = 0; i + 1 < fields.length; i += 2) f.set(fields[i]!, fields[i + 1]!);
  return f;
}

/** The newest id of a stream, '0' when it is empty or missing. */
export async function latestId(redis: Redis, key: string): Promise<string> {
  const raw = (await redis.xrevrange(key, '+', '-', 'COUNT', 1)) as RawEntry[];
  return raw[0]?.[0] ?? '0';
}
