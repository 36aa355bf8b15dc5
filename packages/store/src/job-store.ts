// Job records: one JSON document per job plus sorted-set indexes for listing by state, newest first.
import {
  JobRecord,
  jobStates,
  terminalStates,
  type AttemptRecord,
  type FailureReason,
  type JobState,
} from '@berth/contracts';
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
  /** Final figures the attempt reported (copied onto the record). */
  summary?: Record<string, number>;
  /** Starts a new entry in the record's attempts. */
  newAttempt?: { worker: string; gpus: string[] };
}

/** Conditions and side effects applied in the same atomic step as the state change. */
export interface TransitionGuard {
  /** Only if the job is still placed on this `worker|attempt` (a worker declared lost can no longer write). */
  owner?: string;
  /** Only if the job is still waiting in the queue; it is taken out of it in the same step. */
  fromQueue?: boolean;
  /** Frees the GPUs and the slot the attempt named by `owner` held on this worker. */
  release?: string;
  /** Puts the job back in the queue at its original place, not to be placed before this time (ms). */
  requeueAt?: number;
}

/** Why a guarded transition did not apply. */
export type TransitionRefusal = 'gone' | 'not-owner' | 'not-queued';

// Rewrites the job document only if nobody wrote it since it was read (ver), moves it between state indexes,
// and applies the guard's conditions and side effects in the same step. A terminal state also closes the
// job's log stream, so a follower never sees an ended job without its end entry.
// KEYS: job, jobsInState(old), jobsInState(new), logs, pending, ledger(release), active(release), deadlines,
//       metrics, stateChanges
// ARGV: json, newState, id, terminal, ver, owner, fromQueue, release, requeueAt, attempt, reason
const saveScript = `
local f = redis.call('HMGET', KEYS[1], 'seq', 'ver', 'owner')
if not f[1] then return -1 end
if (f[2] or '0') ~= ARGV[5] then return -2 end
if ARGV[6] ~= '' and f[3] ~= ARGV[6] then return -3 end
if ARGV[7] == '1' and redis.call('ZREM', KEYS[5], ARGV[3]) == 0 then return -4 end
if ARGV[7] == '1' then redis.call('ZREM', KEYS[8], ARGV[3]) end
redis.call('ZREM', KEYS[2], ARGV[3])
redis.call('HSET', KEYS[1], 'json', ARGV[1], 'state', ARGV[2], 'ver', tonumber(ARGV[5]) + 1)
redis.call('ZADD', KEYS[3], f[1], ARGV[3])
if ARGV[8] == '1' then
  local hold = ARGV[3] .. '#' .. string.match(ARGV[6], '|(%d+)$')
  local ledger = redis.call('HGETALL', KEYS[6])
  for i = 1, #ledger, 2 do
    if ledger[i + 1] == hold then redis.call('HSET', KEYS[6], ledger[i], '') end
  end
  redis.call('SREM', KEYS[7], hold)
  redis.call('HSET', KEYS[1], 'owner', '', 'devices', '')
end
if ARGV[9] ~= '' then
  redis.call('HSET', KEYS[1], 'notBefore', ARGV[9])
  redis.call('ZADD', KEYS[5], f[1], ARGV[3])
end
if ARGV[4] == '1' then
  redis.call('XADD', KEYS[4], '*', 'end', ARGV[2])
  redis.call('XADD', KEYS[9], '*', 'end', ARGV[2])
end
redis.call('XADD', KEYS[10], 'MAXLEN', '~', 100000, '*', 'j', ARGV[3], 's', ARGV[2], 'a', ARGV[10], 'r', ARGV[11])
return 1
`;

const refusals: Record<number, TransitionRefusal> = { [-1]: 'gone', [-3]: 'not-owner', [-4]: 'not-queued' };

export class JobStore {
  readonly keys: Keys;

  constructor(
    private readonly redis: Redis,
    prefix: string,
  ) {
    this.keys = keys(prefix);
  }

  /** Records a new job and puts it in the queue in one step. */
  async create(record: JobRecord, placement: { gpus: number; queueTtlMs?: number }): Promise<void> {
    const seq = await this.redis.incr(this.keys.jobSeq);
    const tx = this.redis
      .multi()
      .hset(this.keys.job(record.id), {
        json: JSON.stringify(record),
        state: record.state,
        seq,
        ver: 0,
        gpus: placement.gpus,
        attempt: record.attempt,
      })
      .zadd(this.keys.jobsAll, seq, record.id)
      .zadd(this.keys.jobsInState(record.state), seq, record.id)
      .zadd(this.keys.pending, seq, record.id);
    if (placement.queueTtlMs !== undefined) tx.zadd(this.keys.deadlines, Date.now() + placement.queueTtlMs, record.id);
    await tx.exec();
  }

  async get(id: string): Promise<JobRecord | null> {
    return (await this.read(id))?.record ?? null;
  }

  async list({ state, limit, cursor }: ListOptions): Promise<JobPage> {
    const index = state ? this.keys.jobsInState(state) : this.keys.jobsAll;
    const max = cursor ? `(${Number.parseInt(cursor, 36)}` : '+inf';
    const raw = await this.redis.zrevrangebyscore(index, max, '-inf', 'WITHSCORES', 'LIMIT', 0, limit + 1);
    const ids: { id: string; seq: number }[] = [];
    for (let i = 0; i + 1 < raw.length; i += 2) ids.push({ id: raw[i]!, seq: Number(raw[i + 1]) });
    const page = ids.slice(0, limit);
    const jobs = await this.getMany(page.map((p) => p.id));
    const last = page.at(-1);
    return { jobs, next: ids.length > limit && last ? last.seq.toString(36) : null };
  }

  /** How many jobs are in each state. */
  async counts(): Promise<Record<JobState, number>> {
    const pipeline = this.redis.pipeline();
    for (const state of jobStates) pipeline.zcard(this.keys.jobsInState(state));
    const rows = (await pipeline.exec()) ?? [];
    return Object.fromEntries(jobStates.map((s, i) => [s, Number(rows[i]?.[1] ?? 0)])) as Record<JobState, number>;
  }

  /** The records of these ids, in the same order; ids without a record are left out. */
  async getMany(ids: readonly string[]): Promise<JobRecord[]> {
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.hget(this.keys.job(id), 'json');
    const results = (await pipeline.exec()) ?? [];
    return results.flatMap(([, json]) => (typeof json === 'string' ? [JobRecord.parse(JSON.parse(json))] : []));
  }

  /** Asks the worker that holds a job to cancel it (the flag survives a missed broadcast). */
  async requestCancel(id: string): Promise<void> {
    await this.redis.multi().hset(this.keys.job(id), 'cancel', '1').publish(this.keys.cancelChannel, id).exec();
  }

  async cancelRequested(id: string): Promise<boolean> {
    return (await this.redis.hget(this.keys.job(id), 'cancel')) === '1';
  }

  /**
   * Applies a state change, appends it to the history and the current attempt, and returns the new record.
   * Returns why not when the guard refused it; a concurrent writer makes it read again and retry.
   */
  async transition(
    id: string,
    change: Transition,
    guard: TransitionGuard = {},
  ): Promise<JobRecord | TransitionRefusal> {
    for (;;) {
      const current = await this.read(id);
      if (!current) return 'gone';
      const next = applyChange(current.record, change);
      const release = guard.release ?? '';
      const result = (await this.redis.eval(
        saveScript,
        10,
        this.keys.job(id),
        this.keys.jobsInState(current.record.state),
        this.keys.jobsInState(next.state),
        this.keys.logs(id),
        this.keys.pending,
        this.keys.ledger(release),
        this.keys.active(release),
        this.keys.deadlines,
        this.keys.metrics(id),
        this.keys.stateChanges,
        JSON.stringify(next),
        next.state,
        id,
        terminalStates.has(next.state) ? '1' : '0',
        current.ver,
        guard.owner ?? '',
        guard.fromQueue ? '1' : '0',
        release ? '1' : '0',
        guard.requeueAt === undefined ? '' : String(guard.requeueAt),
        next.attempt,
        change.reason ?? '',
      )) as number;
      if (result === 1) return next;
      const refusal = refusals[result];
      if (refusal) return refusal;
      // -2: someone else wrote the record since we read it; apply our change to theirs.
    }
  }

  private async read(id: string): Promise<{ record: JobRecord; ver: string } | null> {
    const [json, ver] = await this.redis.hmget(this.keys.job(id), 'json', 'ver');
    return json ? { record: JobRecord.parse(JSON.parse(json)), ver: ver ?? '0' } : null;
  }
}

function applyChange(current: JobRecord, change: Transition): JobRecord {
  const now = new Date().toISOString();
  const attempt = change.attempt ?? current.attempt;
  let attempts: AttemptRecord[] = current.attempts;
  if (change.newAttempt) {
    attempts = [
      ...attempts,
      { attempt, worker: change.newAttempt.worker, gpus: change.newAttempt.gpus, startedAt: now },
    ];
  }
  const ended = change.reason !== undefined || terminalStates.has(change.state);
  if (ended && attempts.at(-1)?.attempt === attempt && attempts.at(-1)?.finishedAt === undefined) {
    const last = attempts.at(-1)!;
    attempts = [
      ...attempts.slice(0, -1),
      {
        ...last,
        finishedAt: now,
        state: change.state === 'queued' ? 'failed' : change.state,
        ...(change.reason ? { reason: change.reason } : {}),
        ...(change.message ? { message: change.message } : {}),
        ...(change.exitCode !== undefined ? { exitCode: change.exitCode } : {}),
      },
    ];
  }
  const requeued = change.state === 'queued';
  // The record's reason, message and exit code describe the latest outcome only.
  const { reason: _r, message: _m, exitCode: _e, ...rest } = current;
  return {
    ...rest,
    state: change.state,
    attempt,
    updatedAt: now,
    ...(change.reason ? { reason: change.reason } : {}),
    ...(change.message ? { message: change.message } : {}),
    ...(change.exitCode !== undefined ? { exitCode: change.exitCode } : {}),
    ...(change.worker ? { worker: change.worker } : {}),
    ...(change.container ? { container: change.container } : {}),
    ...(change.summary && Object.keys(change.summary).length > 0 ? { summary: change.summary } : {}),
    ...(change.state === 'running' ? { startedAt: now } : {}),
    ...(terminalStates.has(change.state) ? { finishedAt: now } : {}),
    attempts,
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
    ...(requeued ? { worker: undefined, container: undefined } : {}),
  };
}
