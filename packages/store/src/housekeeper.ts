// Cluster chores any process may run, idempotently: write off silent workers and retry their jobs elsewhere,
// end jobs that waited past their queueTtl, give a waiting job whose BullMQ job is missing (a process died between
// recording it and adding it) its BullMQ job, and delete ended jobs' streams once their retention time is over.
// The write-off is the one chore a single process does at a time, under a lease, and it judges silence by Redis's
// clock alone.
import { randomUUID } from 'node:crypto';
import { terminalStates, type JobState } from '@berth/contracts';
import type { Redis } from 'ioredis';
import { keys, type Keys } from './keys.js';
import { memberLogId } from './log-stream.js';
import { parseFields, type RawEntry } from './tail.js';
import { endAttempt, type RetryPolicy } from './attempt-outcome.js';
import { bullPriority, type AttemptTicket, type JobQueues } from './job-queues.js';
import type { JobStore } from './job-store.js';
import { ownerToken, parseHold } from './owner.js';
import { Placement } from './placement.js';
import { WorkerRegistry, type SweepLease } from './worker-registry.js';

type Hold = ReturnType<typeof parseHold>;

export interface SweepResult {
  /** Workers written off in this sweep. */
  lost: string[];
  /** Jobs whose attempt ended as WORKER_LOST. */
  orphaned: string[];
  /** Jobs that ended as EXPIRED. */
  expired: string[];
  /** Waiting jobs whose missing BullMQ job was added, or whose stranded one was put back. */
  healed: string[];
  /** Ended jobs whose streams (log, metrics, events) were deleted. */
  streamsDeleted: string[];
}

export interface HousekeeperOptions {
  lostAfterMs: number;
  retry: RetryPolicy;
  /** Whether this process heals the queue writes (the API does; one process is enough, more are harmless). */
  healQueue?: boolean;
  /** A waiting job moves up a priority level for each period of this length it waits (with healQueue). */
  priorityAgingMs?: number;
  /** How long an ended job's log, metrics and events stay (BERTH_STREAM_RETENTION_DAYS); absent: for ever. */
  streamRetentionMs?: number;
  /**
   * How long the write-off lease lasts after its holder last used it (ms): another process takes over the write-off
   * that long after the holder stops. Default: lostAfterMs, capped at `defaultSweepLeaseMs`.
   */
  sweepLeaseMs?: number;
}

/** How long a new waiting job's BullMQ add may take before the housekeeper checks it (ms). */
const outboxGraceMs = 2000;
/** Outbox entries, and oldest waiting jobs for aging, looked at per sweep. */
const healBatch = 1000;
/** The largest GPU demand a job may have (JobSpec's resources.gpus): the last queue with an active list to read. */
const maxQueueGpus = 64;

/** State changes looked at per sweep for stream retention, so one sweep stays short after a long pause. */
const retentionBatch = 1000;

/**
 * The longest default write-off lease: long enough for a holder to keep it from one sweep to its next, short enough
 * that the death of a holder delays a write-off little next to the lost-after period.
 */
const defaultSweepLeaseMs = 15_000;

export class Housekeeper {
  private readonly registry: WorkerRegistry;
  private readonly placement: Placement;
  private readonly keys: Keys;
  private readonly lease: SweepLease;
  /**
   * The last state change whose retention this process has handled. Every job's end is an entry of the
   * state-changes stream, in time order, so a sweep reads only the changes that came due since the last one. It
   * starts at the beginning in each process: going over old changes again deletes nothing twice.
   */
  private retentionCursor = '0';

  constructor(
    private readonly redis: Redis,
    prefix: string,
    private readonly store: JobStore,
    private readonly queues: JobQueues,
    private readonly options: HousekeeperOptions,
  ) {
    this.registry = new WorkerRegistry(redis, prefix);
    this.placement = new Placement(redis, prefix);
    this.keys = keys(prefix);
    this.lease = {
      token: randomUUID(),
      ttlMs: options.sweepLeaseMs ?? Math.min(options.lostAfterMs, defaultSweepLeaseMs),
    };
  }

  /**
   * One round of every chore. `now` is this host's clock, which the queue deadlines, the outbox, retry backoffs and
   * stream retention go by; whether a worker is silent is for Redis's clock alone to say.
   */
  async sweep(now = Date.now()): Promise<SweepResult> {
    const result: SweepResult = { lost: [], orphaned: [], expired: [], healed: [], streamsDeleted: [] };
    await this.writeOff(result, now);
    for (const id of await this.placement.expired(now)) {
      const done = await this.store.transition(
        id,
        { state: 'failed', reason: 'EXPIRED', message: 'the job waited in the queue longer than its queueTtl' },
        { fromQueue: true },
      );
      if (!done.ok) {
        await this.placement.dropDeadline(id);
      } else {
        result.expired.push(id);
        const ticket = await this.queues.ticket(id, done.record.attempt + 1);
        if (ticket) await this.queues.withdraw(ticket);
      }
    }
    if (this.options.healQueue) result.healed = await this.heal(now);
    if (result.orphaned.length > 0 || result.healed.length > 0) await this.placement.wake();
    if (this.options.streamRetentionMs !== undefined) {
      result.streamsDeleted = await this.dropOldStreams(now - this.options.streamRetentionMs);
    }
    return result;
  }

  /**
   * Writes off silent workers and ends their attempts as WORKER_LOST, in the holder of the sweep lease only. Every
   * process checks the lease first and skips the chore while another holds it; each write-off checks and renews the
   * lease in the same step that decides, so a holder that lost its lease meanwhile writes nothing, and a holder that
   * stops sweeping lets the lease lapse to the next process. The other chores stay in every process: each of their
   * writes is guarded, so doing them twice changes nothing.
   */
  private async writeOff(result: SweepResult, now: number): Promise<void> {
    if (!(await this.holdsLease())) return;
    for (const worker of await this.registry.list(this.options.lostAfterMs)) {
      if (worker.status !== 'lost') continue;
      const found = await this.registry.markLost(worker.id, this.lease, this.options.lostAfterMs);
      if (found === 'busy') return;
      // A beat may have come in since the list was read: a worker found live keeps its jobs.
      if (found === 'live') continue;
      if (found === 'lost') result.lost.push(worker.id);
      // Every sweep finishes what an interrupted one left: the active set only shrinks as jobs are handled.
      for (const hold of await this.registry.active(worker.id)) {
        if (await this.orphan(worker.id, parseHold(hold), now)) result.orphaned.push(parseHold(hold).jobId);
      }
    }
  }

  /**
   * Takes the sweep lease when it is free, or finds this process still holds it. Renewing is left to the write-offs,
   * which check the holder in the same step, so a lease that changes hands right after this answer is still safe.
   */
  private async holdsLease(): Promise<boolean> {
    const key = this.keys.sweepLease;
    if ((await this.redis.set(key, this.lease.token, 'PX', this.lease.ttlMs, 'NX')) === 'OK') return true;
    return (await this.redis.get(key)) === this.lease.token;
  }

  /**
   * Deletes the streams of jobs that ended before `cutoff` (ms) and are still ended: a job retried since then ends
   * again later, and its own later change comes due in its time. The record and the artifact index stay.
   */
  private async dropOldStreams(cutoff: number): Promise<string[]> {
    if (cutoff <= 0) return [];
    const raw = (await this.redis.xrange(
      this.keys.stateChanges,
      `(${this.retentionCursor}`,
      String(cutoff),
      'COUNT',
      retentionBatch,
    )) as RawEntry[];
    const ended = new Set<string>();
    for (const [, fields] of raw) {
      const f = parseFields(fields);
      const job = f.get('j');
      if (job && terminalStates.has(f.get('s') as JobState)) ended.add(job);
    }
    const deleted: string[] = [];
    for (const id of ended) {
      const job = await this.store.get(id);
      if (!job || !terminalStates.has(job.state)) continue;
      const finished = Date.parse(job.finishedAt ?? job.updatedAt);
      if (!(finished <= cutoff)) continue;
      const k = this.keys;
      // A multi-node job's members each logged under their own id, and noted how they ended.
      const members = Array.from({ length: (job.spec.resources.nodes ?? 1) - 1 }, (_, i) => memberLogId(id, i + 1));
      const streams = [id, ...members].flatMap((log) => [k.logs(log), k.logCount(log)]);
      if ((await this.redis.del(...streams, k.metrics(id), k.events(id), k.memberEnds(id))) > 0) deleted.push(id);
    }
    if (raw.length > 0) this.retentionCursor = raw.at(-1)![0];
    return deleted;
  }

  /**
   * Adds the missing BullMQ job of each job in the outbox (recorded as waiting over a moment ago), puts back attempts
   * stranded in BullMQ's active lists with a lapsed lock, and ages the oldest waiting jobs. Adding is idempotent (the
   * BullMQ id names the attempt), so a submit still between its two steps is not disturbed.
   */
  private async heal(now: number): Promise<string[]> {
    const healed: string[] = [];
    // A burst of submits may leave more than one batch due: up to ten batches a sweep.
    for (let batch = 0; batch < 10; batch++) {
      const due = await this.redis.zrangebyscore(
        this.keys.unqueued,
        '-inf',
        now - outboxGraceMs,
        'LIMIT',
        0,
        healBatch,
      );
      if (due.length === 0) break;
      const waiting = await this.waiting(due);
      const present = await this.queues.present(waiting.map((w) => w.ticket));
      for (const [i, { ticket, notBefore }] of waiting.entries()) {
        if (present[i]) continue;
        await this.queues.enqueue(ticket, notBefore - Date.now());
        healed.push(ticket.id);
      }
      await this.redis.zrem(this.keys.unqueued, ...due);
    }
    // '0' passes the lapsed lock; only an attempt its record still waits for goes back.
    const unlocked = await this.queues.unlocked(maxQueueGpus);
    const records = await this.waiting(unlocked.map((u) => u.id));
    for (const ref of unlocked) {
      if (!records.some((w) => w.ticket.id === ref.id && w.ticket.attempt === ref.attempt)) continue;
      await this.queues.putBack(ref, '0');
      healed.push(ref.id);
    }
    if (this.options.priorityAgingMs) {
      const oldest = await this.redis.zrange(this.keys.jobsInState('queued'), '0', String(healBatch - 1));
      const tickets = (await this.waiting(oldest)).map((w) => w.ticket);
      await this.queues.age(tickets, this.options.priorityAgingMs, now);
    }
    return healed;
  }

  /** Of these jobs, those waiting to be placed, each with the ticket of the attempt it waits to run. */
  private async waiting(ids: readonly string[]): Promise<{ ticket: AttemptTicket; notBefore: number }[]> {
    const read = this.redis.pipeline();
    for (const id of ids) read.hmget(this.keys.job(id), 'state', 'owner', 'attempt', 'gpus', 'notBefore', 'priority');
    const rows = (await read.exec()) ?? [];
    return ids.flatMap((id, i) => {
      const [state, owner, attempt, gpus, notBefore, priority] = (rows[i]?.[1] ?? []) as (string | null)[];
      if (state !== 'queued' || owner) return [];
      const ticket = {
        id,
        attempt: Number(attempt ?? 0) + 1,
        gpus: Number(gpus ?? 0),
        priority: Number(priority ?? bullPriority.normal),
      };
      return [{ ticket, notBefore: Number(notBefore ?? 0) }];
    });
  }

  private async orphan(workerId: string, { jobId, attempt }: Hold, now: number): Promise<boolean> {
    const job = await this.store.get(jobId);
    const owner = await this.placement.owner(jobId);
    if (!job || owner !== ownerToken(workerId, attempt)) {
      await this.placement.forget(workerId, jobId, attempt);
      return false;
    }
    const end = await endAttempt(
      { store: this.store, queues: this.queues, token: '0' },
      job,
      owner,
      { state: 'failed', reason: 'WORKER_LOST', message: `worker ${workerId} stopped sending heartbeats` },
      this.options.retry,
      undefined,
      now,
    );
    return end.ok;
  }
}
