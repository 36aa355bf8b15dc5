// Every job's state changes in one stream (written by the transition script), for people watching the whole queue.
import type { FailureReason, JobState } from '@berth/contracts';
import type { Redis } from 'ioredis';
import { keys, type Keys } from './keys.js';
import { latestId, parseFields, type RawEntry, type TailSource } from './tail.js';

export interface StateChangeEntry {
  id: string;
  job: string;
  /** The job's owner, so a member's feed carries only their own jobs. */
  owner: string;
  state: JobState;
  attempt: number;
  reason?: FailureReason;
}

export class StateChanges {
  private readonly keys: Keys;

  constructor(
    private readonly redis: Redis,
    prefix: string,
  ) {
    this.keys = keys(prefix);
  }

  source(): TailSource<StateChangeEntry> {
    const key = this.keys.stateChanges;
    return {
      read: async (after, count) =>
        ((await this.redis.xrange(key, `(${after}`, '+', 'COUNT', count)) as RawEntry[]).map(parseEntry),
      waitFor: async (conn, after, count, blockMs) => {
        const res = (await conn.xread('COUNT', count, 'BLOCK', blockMs, 'STREAMS', key, after)) as
          [string, RawEntry[]][] | null;
        return res?.[0]?.[1].map(parseEntry) ?? [];
      },
      latest: () => latestId(this.redis, key),
      // The stream of all jobs never ends.
      isEnd: () => false,
    };
  }
}

function parseEntry([id, fields]: RawEntry): StateChangeEntry {
  const f = parseFields(fields);
  const reason = f.get('r');
  return {
    id,
    job: f.get('j') ?? '',
    owner: f.get('u') ?? '',
    state: f.get('s') as JobState,
    attempt: Number(f.get('a') ?? 0),
    ...(reason ? { reason: reason as FailureReason } : {}),
  };
}
