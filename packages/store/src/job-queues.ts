// berth's jobs wait in BullMQ: one queue per GPU demand (`gpus-0`, `gpus-1`, …), so that every job in a queue fits
// wherever its head fits and a worker takes a queue's head with BullMQ's own atomic fetch. One BullMQ job stands for
// one attempt of a berth job; its id names both (`<job id>-a<attempt>`), so adding it again is a no-op and a
// restarted process can find it without any state of its own. berth's job record stays the truth about the job's
// state: a BullMQ job whose record moved on is finished by whoever meets it.
import type { JobRecord } from '@berth/contracts';
import { Job, Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { keys, type Keys } from './keys.js';
import { redisUnavailable } from './redis.js';

export const queueName = (gpus: number): string => `gpus-${gpus}`;

/**
 * A job spanning several hosts (a gang) waits in a queue of its own, `gang-<job id>`: its members form on several
 * workers before one of them takes it, and the queue's head must then be that very job, whatever else waits.
 */
export const gangQueueName = (jobId: string): string => `gang-${jobId}`;

/** The queue an attempt waits in. */
export const laneOf = (ref: AttemptRef): string => ((ref.nodes ?? 1) > 1 ? gangQueueName(ref.id) : queueName(ref.gpus));

export const bullJobId = (jobId: string, attempt: number): string => `${jobId}-a${attempt}`;

/** Names one attempt's BullMQ job: the berth job, the attempt it will run as, and the GPUs it asks for. */
export interface AttemptRef {
  id: string;
  attempt: number;
  gpus: number;
  /** Hosts the job spans (a gang when above 1); 1 when left out. */
  nodes?: number;
}

/** What a BullMQ job carries: its attempt, and the job's BullMQ priority (1 is the highest). */
export interface AttemptTicket extends AttemptRef {
  priority: number;
}

/** The BullMQ priority of each berth priority. 0 (no priority) is never used: BullMQ takes such jobs first. */
export const bullPriority = { high: 1, normal: 2, low: 3 } as const;

/** The priority of a spec's `priority` (normal when left out). */
export const bullPriorityOf = (level: keyof typeof bullPriority | undefined): number => bullPriority[level ?? 'normal'];

export type AttemptJob = Job<AttemptTicket>;

/** How many finished BullMQ jobs each queue keeps for bull-board and QueueEvents listeners to look at. */
const keepFinished = { removeOnComplete: { count: 1000 }, removeOnFail: { count: 5000 } } as const;

export interface JobQueuesOptions {
  /**
   * Refuse a queue's commands at once (REDIS_UNAVAILABLE) while the connection is not ready, as a fail-fast
   * connection (connectRedis's failFast) refuses every other command: BullMQ itself waits for 'ready' before a
   * queue's first command, however long Redis is away. Default false: the queues wait, as BullMQ's do.
   */
  failFast?: boolean;
}

export class JobQueues {
  private readonly queues = new Map<string, Queue<AttemptTicket>>();
  private readonly keys: Keys;
  private readonly failFast: boolean;

  constructor(
    private readonly redis: Redis,
    readonly prefix: string,
    options: JobQueuesOptions = {},
  ) {
    this.keys = keys(prefix);
    this.failFast = options.failFast ?? false;
  }

  /** The ticket of a job's attempt, its GPU demand read from the record; null when there is no such job. */
  async ticket(jobId: string, attempt: number): Promise<AttemptTicket | null> {
    const [gpus, priority, nodes] = await this.redis.hmget(this.keys.job(jobId), 'gpus', 'priority', 'nodes');
    if (gpus === null) return null;
    return {
      id: jobId,
      attempt,
      gpus: Number(gpus),
      priority: Number(priority ?? bullPriority.normal),
      ...(Number(nodes ?? 1) > 1 ? { nodes: Number(nodes) } : {}),
    };
  }

  /** The queue of jobs asking for this many GPUs, or one named; made on first use, sharing the caller's connection. */
  queue(lane: number | string): Queue<AttemptTicket> {
    if (this.failFast && this.redis.status !== 'ready') throw redisUnavailable();
    const name = typeof lane === 'number' ? queueName(lane) : lane;
    let queue = this.queues.get(name);
    if (!queue) {
      queue = new Queue<AttemptTicket>(name, { connection: this.redis, prefix: this.prefix });
      // Errors reach the callers of each operation; without a listener an 'error' event would throw.
      queue.on('error', () => {});
      this.queues.set(name, queue);
    }
    return queue;
  }

  /** The queue an attempt waits in. */
  queueOf(ref: AttemptRef): Queue<AttemptTicket> {
    return this.queue(laneOf(ref));
  }

  /** The queues of gangs that may still have an attempt to place: where placement and the housekeeper look. */
  async gangQueues(): Promise<string[]> {
    return this.redis.smembers(this.keys.gangQueues);
  }

  /** Forgets the queue of a gang that ended: nothing will wait in it again. */
  async dropGangQueue(jobId: string): Promise<void> {
    await this.redis.srem(this.keys.gangQueues, gangQueueName(jobId));
  }

  /** Adds the BullMQ job of an attempt; adding one that exists (a retried or healed submit) changes nothing. */
  async enqueue(ticket: AttemptTicket, delayMs = 0): Promise<void> {
    if ((ticket.nodes ?? 1) > 1) await this.redis.sadd(this.keys.gangQueues, gangQueueName(ticket.id));
    await this.queueOf(ticket).add('attempt', ticket, {
      jobId: bullJobId(ticket.id, ticket.attempt),
      priority: ticket.priority,
      attempts: 1,
      ...(delayMs > 0 ? { delay: Math.ceil(delayMs) } : {}),
      ...keepFinished,
    });
  }

  /**
   * Takes a waiting attempt out of BullMQ (cancelled or expired while queued). One a worker is taking at this very
   * moment is locked and stays: that worker finds the record moved on and finishes it.
   */
  async withdraw(ticket: AttemptRef): Promise<void> {
    await this.queueOf(ticket).remove(bullJobId(ticket.id, ticket.attempt));
    if ((ticket.nodes ?? 1) > 1) await this.dropGangQueue(ticket.id);
  }

  /** Whether the BullMQ job of each attempt exists, in any state; one round trip. */
  async present(tickets: readonly AttemptRef[]): Promise<boolean[]> {
    const read = this.redis.pipeline();
    for (const t of tickets) read.exists(`${this.queueOf(t).qualifiedName}:${bullJobId(t.id, t.attempt)}`);
    return ((await read.exec()) ?? []).map(([, n]) => n === 1);
  }

  /**
   * The attempts active in BullMQ with no lock, in the queues for 0 … maxGpus GPUs: fetched by a worker that then
   * fell silent for longer than its lock lasts (BERTH_LOST_AFTER_MS). Active lists hold running attempts only, so
   * this reads little. Two round trips.
   */
  async unlocked(maxGpus: number): Promise<AttemptRef[]> {
    const lanes: string[] = await this.gangQueues();
    for (let n = 0; n <= maxGpus; n++) lanes.push(queueName(n));
    const lists = this.redis.pipeline();
    for (const lane of lanes) lists.lrange(this.queue(lane).keys.active!, 0, -1);
    const active = ((await lists.exec()) ?? []).flatMap(([, ids], i) =>
      ((ids ?? []) as string[]).map((bullId) => ({ lane: lanes[i]!, bullId })),
    );
    if (active.length === 0) return [];
    const locks = this.redis.pipeline();
    for (const a of active) locks.exists(`${this.queue(a.lane).qualifiedName}:${a.bullId}:lock`);
    const held = ((await locks.exec()) ?? []).map(([, v]) => v);
    const refs = await Promise.all(
      active.map(async (a, i) => {
        if (held[i] !== 0) return undefined;
        const at = a.bullId.lastIndexOf('-a');
        return this.ticket(a.bullId.slice(0, at), Number(a.bullId.slice(at + 2)));
      }),
    );
    return refs.flatMap((r) =>
      r ? [{ id: r.id, attempt: r.attempt, gpus: r.gpus, ...(r.nodes ? { nodes: r.nodes } : {}) }] : [],
    );
  }

  /** Puts an attempt that was fetched but never given GPUs back at the head of its queue. */
  async putBack(ticket: AttemptRef, token: string): Promise<void> {
    const job = await Job.fromId(this.queueOf(ticket), bullJobId(ticket.id, ticket.attempt));
    if (job) await job.moveToWait(token);
  }

  /** The BullMQ ids of the attempts active in a queue (by GPUs asked, or by name) under this lock token. */
  async lockedBy(lane: number | string, token: string): Promise<string[]> {
    const q = this.queue(lane);
    const ids = await this.redis.lrange(q.keys.active!, 0, -1);
    if (ids.length === 0) return [];
    const locks = await this.redis.mget(...ids.map((id) => `${q.qualifiedName}:${id}:lock`));
    return ids.filter((_, i) => locks[i] === token);
  }

  /**
   * Moves waiting attempts up a level for every `agingMs` they have waited, so a low priority is never starved:
   * BullMQ's own priority changes, so the order inside a queue and across queues both follow. One read round trip.
   */
  async age(tickets: readonly AttemptTicket[], agingMs: number, now = Date.now()): Promise<number> {
    const read = this.redis.pipeline();
    for (const t of tickets)
      read.hmget(`${this.queueOf(t).qualifiedName}:${bullJobId(t.id, t.attempt)}`, 'priority', 'timestamp');
    const rows = (await read.exec()) ?? [];
    let moved = 0;
    for (const [i, t] of tickets.entries()) {
      const [priority, timestamp] = (rows[i]?.[1] ?? []) as (string | null)[];
      if (priority === null || timestamp === null) continue;
      const target = Math.max(1, t.priority - Math.floor((now - Number(timestamp)) / agingMs));
      if (target >= Number(priority)) continue;
      const job = await Job.fromId(this.queueOf(t), bullJobId(t.id, t.attempt));
      // Only a waiting job changes priority; one taken meanwhile is left as it is.
      if (job && ['prioritized', 'waiting', 'delayed'].includes(await job.getState())) {
        await job.changePriority({ priority: target });
        moved++;
      }
    }
    return moved;
  }

  /**
   * Finishes the BullMQ job of an attempt that ended, as its record says: succeeded and cancelled complete it (a
   * cancelled job is not a failure), every other end fails it, a retry among them. `token` is the taker's lock
   * token; a process writing off a lost worker's attempt passes '0', which BullMQ takes as "no lock to check". The
   * record was already written under berth's own owner check, so a lock that lapsed meanwhile is not a reason to
   * leave the BullMQ job active.
   */
  async settle(ticket: AttemptTicket, record: JobRecord, token: string): Promise<void> {
    if (record.state === 'queued') {
      // A retry: this attempt failed, and the next one waits for its backoff as a delayed BullMQ job.
      const notBefore = Number((await this.redis.hget(this.keys.job(ticket.id), 'notBefore')) ?? 0);
      await this.enqueue({ ...ticket, attempt: ticket.attempt + 1 }, notBefore - Date.now());
    }
    // A gang that ended has nothing more to wait for: placement stops reading its queue.
    if ((ticket.nodes ?? 1) > 1 && record.state !== 'queued') await this.dropGangQueue(ticket.id);
    const job = (await Job.fromId(this.queueOf(ticket), bullJobId(ticket.id, ticket.attempt))) as
      AttemptJob | undefined;
    if (!job || job.finishedOn) return;
    const finish = (t: string) =>
      record.state === 'succeeded' || record.state === 'cancelled'
        ? job.moveToCompleted({ state: record.state, ...(record.reason ? { reason: record.reason } : {}) }, t, false)
        : job.moveToFailed(new Error(record.message ?? record.reason ?? record.state), t, false);
    try {
      await finish(token);
    } catch (err) {
      if (token === '0') throw err;
      await finish('0');
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.queues.values()].map((q) => q.close()));
  }
}

/**
 * A GPU worker's BullMQ workers, one per queue it can ever take from. They never run BullMQ's own loop: the
 * placement decides which queue's head to take and asks for it with `getNextJob`, not blocking, under the worker's
 * own id as the lock token (each attempt has its own BullMQ job, so the lock is per attempt and a restarted worker,
 * which keeps its id, holds the locks it held). BullMQ's stalled-job check is off: an attempt whose worker fell
 * silent is berth's to write off (after BERTH_LOST_AFTER_MS, with its container's fate known), never redelivered
 * by a lapsed lock while its container may still be training.
 */
export class AttemptTaker {
  private workers = new Map<string, Worker<AttemptTicket>>();
  /** The gang queue whose BullMQ worker was made ahead of need (warm). */
  private warmed: string | undefined;
  /** Since when fetches of a head the placement saw have all come back empty; the watchdog's clock. */
  private emptySince: number | undefined;

  constructor(
    private readonly redisUrl: string,
    private readonly prefix: string,
    readonly token: string,
    private readonly lockMs: number,
  ) {}

  private worker(lane: number | string): Worker<AttemptTicket> {
    const name = typeof lane === 'number' ? queueName(lane) : lane;
    let worker = this.workers.get(name);
    if (!worker) {
      worker = new Worker<AttemptTicket>(name, null, {
        connection: { url: this.redisUrl, maxRetriesPerRequest: null },
        prefix: this.prefix,
        autorun: false,
        skipStalledCheck: true,
        skipLockRenewal: true,
        lockDuration: this.lockMs,
      });
      worker.on('error', () => {});
      this.workers.set(name, worker);
    }
    return worker;
  }

  /** The queues this taker has a BullMQ worker open for (two Redis connections each). */
  get lanes(): string[] {
    return [...this.workers.keys()];
  }

  /** Takes the head of a queue (by GPUs asked, or by name), if any is due. */
  async next(lane: number | string): Promise<AttemptJob | undefined> {
    const job = (await this.worker(lane).getNextJob(this.token, { block: false })) as AttemptJob | undefined;
    if (job) this.emptySince = undefined;
    else this.emptySince ??= Date.now();
    return job;
  }

  /** The placement saw nothing this worker may take now: empty fetches before this were races, not a hang. */
  nothingToTake(): void {
    this.emptySince = undefined;
  }

  /** Whether every fetch for at least `ms` came back empty although the placement saw a job to take. */
  stuck(ms: number, now = Date.now()): boolean {
    return this.emptySince !== undefined && now - this.emptySince >= ms;
  }

  /**
   * Makes, and connects in the background, the BullMQ worker of the one gang queue this worker may soon complete, so
   * that making it (new Redis connections) is not on the path from the last GPU freeing to the gang starting. The one
   * warmed before is closed, as it is when no gang waits (`undefined`): at most one waits, holding two connections.
   */
  warm(lane: string | undefined): void {
    if (this.warmed === lane) return;
    if (this.warmed !== undefined) void this.done(this.warmed);
    this.warmed = lane;
    if (lane !== undefined) {
      this.worker(lane)
        .waitUntilReady()
        .catch(() => {});
    }
  }

  /**
   * Closes the BullMQ worker of a queue this worker will not fetch from again (a gang's own, once its job is
   * taken): each holds two Redis connections.
   */
  async done(lane: string): Promise<void> {
    if (this.warmed === lane) this.warmed = undefined;
    const worker = this.workers.get(lane);
    this.workers.delete(lane);
    await worker?.close(true).catch(() => {});
  }

  /** Keeps the lock of an attempt this worker runs; false when it had lapsed (the attempt still runs). */
  async keep(queues: JobQueues, ticket: AttemptTicket): Promise<boolean> {
    const job = await Job.fromId(queues.queueOf(ticket), bullJobId(ticket.id, ticket.attempt));
    if (!job || job.finishedOn) return false;
    return (await job.extendLock(this.token, this.lockMs)) === 1;
  }

  /**
   * Drops and remakes every BullMQ worker. BullMQ workers have stopped fetching after a Redis reconnect in several
   * releases; the placement calls this when jobs that fit have waited a while and nothing was fetched.
   */
  async renew(): Promise<void> {
    const old = [...this.workers.values()];
    this.workers = new Map();
    this.warmed = undefined;
    this.emptySince = undefined;
    await Promise.all(old.map((w) => w.close(true).catch(() => {})));
  }

  async close(): Promise<void> {
    await Promise.all([...this.workers.values()].map((w) => w.close(true).catch(() => {})));
  }
}
