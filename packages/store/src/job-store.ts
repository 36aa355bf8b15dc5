// Job records: one JSON document per job plus sorted-set indexes for listing by state, newest first.
import {
  isoNow,
  JobRecord,
  type Quotas,
  jobStates,
  terminalStates,
  type AttemptRecord,
  GangMember,
  type FailureReason,
  type JobState,
} from '@berth/contracts';
import type { Redis } from 'ioredis';
import { bullPriority } from './job-queues.js';
import { keys, type Keys } from './keys.js';
import { holdOf, parseOwner } from './owner.js';
import { runScript, scripts } from './scripts.js';

export interface ListOptions {
  state?: JobState | undefined;
  /** Only this user's jobs. */
  owner?: string | undefined;
  limit: number;
  /** Opaque cursor from the previous page's `next`. */
  cursor?: string | undefined;
}

export interface JobPage {
  jobs: JobRecord[];
  next: string | null;
}

export interface Transition {
  state: JobState;
  attempt?: number;
  reason?: FailureReason | undefined;
  message?: string;
  exitCode?: number | undefined;
  worker?: string;
  container?: string;
  /** Final figures the attempt reported (copied onto the record). */
  summary?: Record<string, number> | undefined;
  /** Starts a new entry in the record's attempts. */
  newAttempt?: { worker: string; gpus: string[]; members?: GangMember[] };
}

/** Conditions and side effects applied in the same atomic step as the state change. */
export interface TransitionGuard {
  /** Only if the job is still placed on this `worker|attempt` (a worker declared lost can no longer write). */
  owner?: string;
  /** Only if the job still waits (queued and placed nowhere); its queue deadline goes in the same step. */
  fromQueue?: boolean;
  /** Frees the GPUs and the slot the attempt named by `owner` held on this worker. */
  release?: string;
  /** Records when the job, back to `queued` for a retry, may be placed again (ms); its BullMQ job is delayed to it. */
  requeueAt?: number;
}

/** Why a guarded transition did not apply. */
export type TransitionRefusal = 'gone' | 'not-owner' | 'not-queued';

/** What a guarded write did: the record as written, or why the guard refused it. */
export type Transitioned = { ok: true; record: JobRecord } | { ok: false; refusal: TransitionRefusal };

export interface CreateOptions {
  gpus: number;
  /** Hosts the job spans (default 1); its GPUs count once per host towards the user's quota. */
  nodes?: number;
  /** The job's BullMQ priority (bullPriorityOf; normal when left out), kept for its later attempts. */
  priority?: number;
  queueTtlMs?: number;
  idempotency?: { key: string; bodyHash: string };
}

export type CreateOutcome =
  /** `json`: the record as stored, for an answer that sends it as it is. */
  | { created: true; json: string }
  /** The Idempotency-Key named an earlier job; sameBody false means it came with a different request. */
  | { existing: string; sameBody: boolean }
  | { quota: { limit: keyof Quotas; max: number; current: number } };

const idempotencyTtlSeconds = 86_400;

const refusals: Record<number, TransitionRefusal> = { [-1]: 'gone', [-3]: 'not-owner', [-4]: 'not-queued' };

/** How one member of a multi-node attempt ended, as it noted it. */
const MemberEnd = GangMember.pick({ state: true, exitCode: true, reason: true, message: true });
export type MemberEnd = Pick<GangMember, 'state' | 'exitCode' | 'reason' | 'message'>;

/** A noted end, or nothing where there is none or it cannot be read (written by another version, say). */
function memberEnd(json: string | undefined): MemberEnd | undefined {
  if (json === undefined) return undefined;
  try {
    return MemberEnd.parse(JSON.parse(json));
  } catch {
    return undefined;
  }
}

export class JobStore {
  readonly keys: Keys;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {
    this.keys = keys(prefix);
  }

  /**
   * Records a new job, unless the owner's Idempotency-Key names an earlier job
   * or a quota would be passed: checked and applied atomically, so concurrent submits cannot slip past either.
   */
  async create(record: JobRecord, o: CreateOptions): Promise<CreateOutcome> {
    if (record.state !== 'queued' || record.attempt !== 0) throw new Error('a new job starts queued, at attempt 0');
    const idem = o.idempotency;
    const json = JSON.stringify(record);
    const k = this.keys;
    const user = record.owner;
    const reply = (await runScript(
      this.redis,
      scripts.createJob,
      [
        k.job(record.id),
        k.users,
        k.jobsAll,
        k.jobsInState('queued'),
        k.jobSeq,
        k.deadlines,
        k.unqueued,
        k.jobsOfUser(user),
        k.jobsOfUserInState(user, 'queued'),
        k.userUsage(user),
        k.idempotency(user, idem ? idem.key : ''),
      ],
      [
        json,
        record.id,
        o.gpus,
        o.queueTtlMs === undefined ? '' : Date.now() + o.queueTtlMs,
        user,
        idem ? idem.key : '',
        idem ? idem.bodyHash : '',
        o.priority ?? bullPriority.normal,
        idempotencyTtlSeconds,
        o.nodes ?? 1,
        record.spec.maxRuntime ?? '',
      ],
    )) as string[];
    if (reply[0] === 'no-user') throw new Error(`no user ${record.owner}: jobs are submitted by users`);
    if (reply[0] === 'idem') return { existing: reply[1]!, sameBody: reply[2] === reply[3] };
    if (reply[0] === 'quota') {
      return { quota: { limit: reply[1] as keyof Quotas, max: Number(reply[2]), current: Number(reply[3]) } };
    }
    return { created: true, json };
  }

  async get(id: string): Promise<JobRecord | null> {
    return (await this.read(id))?.record ?? null;
  }

  async list({ state, owner, limit, cursor }: ListOptions): Promise<JobPage> {
    const index = owner
      ? state
        ? this.keys.jobsOfUserInState(owner, state)
        : this.keys.jobsOfUser(owner)
      : state
        ? this.keys.jobsInState(state)
        : this.keys.jobsAll;
    const max = cursor ? `(${Number.parseInt(cursor, 36)}` : '+inf';
    const raw = await this.redis.zrevrangebyscore(index, max, '-inf', 'WITHSCORES', 'LIMIT', 0, limit + 1);
    const ids: { id: string; seq: number }[] = [];
    for (let i = 0; i + 1 < raw.length; i += 2) ids.push({ id: raw[i]!, seq: Number(raw[i + 1]) });
    const page = ids.slice(0, limit);
    const jobs = await this.getMany(page.map((p) => p.id));
    const last = page.at(-1);
    return { jobs, next: ids.length > limit && last ? last.seq.toString(36) : null };
  }

  /**
   * Jobs in any of these states, newest first, from offset `start` to `end` (inclusive, as ZRANGE counts): a page
   * by number across several state indexes, for views that page that way rather than by cursor.
   */
  async newestInStates(states: readonly JobState[], start: number, end: number): Promise<JobRecord[]> {
    if (states.length === 0 || end < start) return [];
    const pipeline = this.redis.pipeline();
    for (const state of states) pipeline.zrevrange(this.keys.jobsInState(state), 0, end, 'WITHSCORES');
    const ids: { id: string; seq: number }[] = [];
    for (const [err, raw] of (await pipeline.exec()) ?? []) {
      if (err) throw err;
      const flat = (raw ?? []) as string[];
      for (let i = 0; i + 1 < flat.length; i += 2) ids.push({ id: flat[i]!, seq: Number(flat[i + 1]) });
    }
    ids.sort((a, b) => b.seq - a.seq);
    return this.getMany(ids.slice(start, end + 1).map((p) => p.id));
  }

  /** How many jobs are in each state. */
  async counts(): Promise<Record<JobState, number>> {
    const pipeline = this.redis.pipeline();
    for (const state of jobStates) pipeline.zcard(this.keys.jobsInState(state));
    const rows = (await pipeline.exec()) ?? [];
    return Object.fromEntries(jobStates.map((s, i) => [s, Number(rows[i]?.[1] ?? 0)])) as Record<JobState, number>;
  }

  /** The user who owns a job, or null when there is no such job. */
  async ownerOf(id: string): Promise<string | null> {
    return this.redis.hget(this.keys.job(id), 'user');
  }

  /** The owners of these jobs, in the same order (null where there is no such job), in one round trip. */
  async ownersOf(ids: readonly string[]): Promise<(string | null)[]> {
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.hget(this.keys.job(id), 'user');
    return ((await pipeline.exec()) ?? []).map(([, user]) => (typeof user === 'string' ? user : null));
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
   * Applies a state change, appends it to the history and the current attempt, and returns the new record, or why
   * not when the guard refused it; a concurrent writer makes it read again and retry.
   */
  async transition(id: string, change: Transition, guard: TransitionGuard = {}): Promise<Transitioned> {
    for (;;) {
      const current = await this.read(id);
      if (!current) return { ok: false, refusal: 'gone' };
      const next = applyChange(current.record, change);
      const release = guard.release ?? '';
      // The user's indexes are named from the record read; a job's owner never changes.
      const user = current.record.owner;
      const k = this.keys;
      const result = (await runScript(
        this.redis,
        scripts.saveJob,
        [
          k.job(id),
          k.jobsInState(current.record.state),
          k.jobsInState(next.state),
          k.logs(id),
          k.deadlines,
          k.ledger(release),
          k.active(release),
          k.metrics(id),
          k.stateChanges,
          k.unqueued,
          k.jobsOfUserInState(user, current.record.state),
          k.jobsOfUserInState(user, next.state),
          k.userUsage(user),
        ],
        [
          JSON.stringify(next),
          next.state,
          id,
          terminalStates.has(next.state) ? '1' : '0',
          current.ver,
          guard.owner ?? '',
          guard.fromQueue ? '1' : '0',
          release && guard.owner ? holdOf(id, parseOwner(guard.owner).attempt) : '',
          guard.requeueAt === undefined ? '' : String(guard.requeueAt),
          next.attempt,
          change.reason ?? '',
          terminalStates.has(current.record.state) ? '1' : '0',
        ],
      )) as number;
      if (result === 1) return { ok: true, record: next };
      const refusal = refusals[result];
      if (refusal) return { ok: false, refusal };
      // -2: someone else wrote the record since we read it; apply our change to theirs.
    }
  }

  /**
   * Notes how one member of a multi-node attempt ended. Members other than the head do not write the job's record
   * (the head owns it); their ends live beside it, and reads of the job show them on its attempts (withMembers).
   * The first end noted stands: a worker that restarts and re-attaches to a member it had already seen end would
   * otherwise write over how it really ended with "stopped when node 0 ended".
   */
  async recordMemberEnd(jobId: string, attempt: number, rank: number, end: MemberEnd): Promise<void> {
    await this.redis.hsetnx(this.keys.memberEnds(jobId), `${attempt}.${rank}`, JSON.stringify(end));
  }

  /**
   * The job with each multi-node attempt's members' states: the end a member noted, or `running` for a member of
   * the running attempt that has not ended. Costs one read, and only for a job that has had a multi-node attempt.
   */
  async withMembers(job: JobRecord): Promise<JobRecord> {
    if (!job.attempts.some((a) => a.members)) return job;
    const ends = await this.redis.hgetall(this.keys.memberEnds(job.id));
    const current = job.state === 'running' ? job.attempt : undefined;
    return {
      ...job,
      attempts: job.attempts.map((a) =>
        a.members
          ? {
              ...a,
              members: a.members.map((m) => {
                const end = memberEnd(ends[`${a.attempt}.${m.rank}`]);
                if (end) return { ...m, ...end };
                return a.attempt === current ? { ...m, state: 'running' as const } : m;
              }),
            }
          : a,
      ),
    };
  }

  private async read(id: string): Promise<{ record: JobRecord; ver: string } | null> {
    const [json, ver] = await this.redis.hmget(this.keys.job(id), 'json', 'ver');
    return json ? { record: JobRecord.parse(JSON.parse(json)), ver: ver ?? '0' } : null;
  }
}

function applyChange(current: JobRecord, change: Transition): JobRecord {
  const now = isoNow();
  const attempt = change.attempt ?? current.attempt;
  let attempts: AttemptRecord[] = current.attempts;
  if (change.newAttempt) {
    attempts = [
      ...attempts,
      {
        attempt,
        worker: change.newAttempt.worker,
        gpus: change.newAttempt.gpus,
        startedAt: now,
        members: change.newAttempt.members,
      },
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
    reason: change.reason,
    ...(change.message ? { message: change.message } : {}),
    exitCode: change.exitCode,
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
        reason: change.reason,
        ...(change.message ? { message: change.message } : {}),
      },
    ],
    ...(requeued ? { worker: undefined, container: undefined } : {}),
  };
}
