// Job records: one JSON document per job plus sorted-set indexes for listing by state, newest first.
import { JobRecord, terminalStates, type FailureReason, type JobState } from '@berth/contracts';
import type { Redis } from 'ioredis';
import { keys, type Keys } from './keys.js';

export interface ListOptions {
  state?: JobState;
  limit: number;
  /** Opaque cursor from the previous page's `next`. */
  cursor?: string;
}

export interface JobPage {
  jobs: JobRecord[];
  next: string | null;
}

export interface Transition {
  state: JobState;
  attempt?: number;
  reason?: FailureReason;
  message?: string;
  exitCode?: number;
  worker?: string;
  container?: string;
}

// Moves a job between state indexes and rewrites its document in one step; a terminal state also
// closes the job's log stream in the same step, so a follower never sees an ended job without its end entry.
// KEYS: job, jobsInState(old), jobsInState(new), logs; ARGV: json, newState, id, terminal
const saveScript = `
local seq = redis.call('HGET', KEYS[1], 'seq')
if not seq then return 0 end
redis.call('ZREM', KEYS[2], ARGV[3])
redis.call('HSET', KEYS[1], 'json', ARGV[1], 'state', ARGV[2])
redis.call('ZADD', KEYS[3], seq, ARGV[3])
if ARGV[4] == '1' then redis.call('XADD', KEYS[4], '*', 'end', ARGV[2]) end
return 1
`;

export class JobStore {
  readonly keys: Keys;

  constructor(
    private readonly redis: Redis,
    prefix: string,
  ) {
    this.keys = keys(prefix);
  }

  async create(record: JobRecord): Promise<void> {
    const seq = await this.redis.incr(this.keys.jobSeq);
    await this.redis
      .multi()
      .hset(this.keys.job(record.id), { json: JSON.stringify(record), state: record.state, seq })
      .zadd(this.keys.jobsAll, seq, record.id)
      .zadd(this.keys.jobsInState(record.state), seq, record.id)
      .exec();
  }

  /** Removes a job that could not be enqueued, so a failed submit leaves nothing behind. */
  async discard(id: string, state: JobState): Promise<void> {
    await this.redis
      .multi()
      .del(this.keys.job(id), this.keys.logs(id), this.keys.logCount(id))
      .zrem(this.keys.jobsAll, id)
      .zrem(this.keys.jobsInState(state), id)
      .exec();
  }

  async get(id: string): Promise<JobRecord | null> {
    const json = await this.redis.hget(this.keys.job(id), 'json');
    return json === null ? null : JobRecord.parse(JSON.parse(json));
  }

  async list({ state, limit, cursor }: ListOptions): Promise<JobPage> {
    const index = state ? this.keys.jobsInState(state) : this.keys.jobsAll;
    const max = cursor ? `(${Number.parseInt(cursor, 36)}` : '+inf';
    const raw = await this.redis.zrevrangebyscore(index, max, '-inf', 'WITHSCORES', 'LIMIT', 0, limit + 1);
    const ids: { id: string; seq: number }[] = [];
    for (let i = 0; i + 1 < raw.length; i += 2) ids.push({ id: raw[i]!, seq: Number(raw[i + 1]) });
    const page = ids.slice(0, limit);
    const pipeline = this.redis.pipeline();
    for (const { id } of page) pipeline.hget(this.keys.job(id), 'json');
    const results = (await pipeline.exec()) ?? [];
    const jobs = results.flatMap(([, json]) => (typeof json === 'string' ? [JobRecord.parse(JSON.parse(json))] : []));
    const last = page.at(-1);
    return { jobs, next: ids.length > limit && last ? last.seq.toString(36) : null };
  }

  /** Applies a state change, appends it to the history and returns the new record (null if the job is gone). */
  async transition(id: string, change: Transition): Promise<JobRecord | null> {
    const current = await this.get(id);
    if (!current) return null;
    const now = new Date().toISOString();
    const attempt = change.attempt ?? current.attempt;
    const next: JobRecord = {
      ...current,
      state: change.state,
      attempt,
      updatedAt: now,
      ...(change.reason ? { reason: change.reason } : {}),
      ...(change.message ? { message: change.message } : {}),
      ...(change.exitCode !== undefined ? { exitCode: change.exitCode } : {}),
      ...(change.worker ? { worker: change.worker } : {}),
      ...(change.container ? { container: change.container } : {}),
      ...(change.state === 'running' ? { startedAt: now } : {}),
      ...(terminalStates.has(change.state) ? { finishedAt: now } : {}),
      history: [
        ...current.history,
        {
          state: change.state,
          at: now,
          attempt,
          ...(change.reason ? { reason: change.reason } : {}),
          ...(change.message ? { message: change.message } : {}),
        },
      ],
    };
    await this.redis.eval(
      saveScript,
      4,
      this.keys.job(id),
      this.keys.jobsInState(current.state),
      this.keys.jobsInState(next.state),
      this.keys.logs(id),
      JSON.stringify(next),
      next.state,
      id,
      terminalStates.has(next.state) ? '1' : '0',
    );
    return next;
  }
}
