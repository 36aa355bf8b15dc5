// GPU placement: a worker takes, from BullMQ, the waiting jobs that fit its free GPUs, in submit order.
//
// Jobs wait in one BullMQ queue per GPU demand (job-queues.ts). A worker looks at the head of every queue it could
// ever serve, picks the oldest head that fits its free GPUs now, and takes that queue's head with BullMQ's atomic
// fetch: two workers never get the same job, and a small job can start while a larger one waits. Then one script
// checks that the record still waits for that attempt and gives it GPUs from this worker's own ledger: only a
// worker assigns its GPUs and only its own finish (or a write-off) frees them, so no GPU is given twice. Every time
// a job starts ahead of an older one that did not fit, the older one's skip count grows; once it reaches maxBypass
// it reserves the worker: nothing younger starts there until it fits.
import { JobRecord, type GpuMode } from '@berth/contracts';
import type { Redis } from 'ioredis';
import { readyAt, spares, type HostState } from './backfill.js';
import { bullJobId, gangQueueName, laneOf, type AttemptJob, type AttemptTaker, type JobQueues } from './job-queues.js';
import { faultPoint } from './fault.js';
import { keys, type Keys } from './keys.js';
import { holdOf, ownerToken, parseHold } from './owner.js';
import { runScript, scripts } from './scripts.js';

export interface PlacementWorker {
  id: string;
  mode: GpuMode;
  concurrency: number;
  /** GPU UUIDs in device-index order; the ledger's keys. */
  gpus: readonly string[];
  /** Where members of a multi-node job on other hosts reach this one ('' where they reach containers by name). */
  address?: string;
}

export interface Claim {
  jobId: string;
  attempt: number;
  /** GPU UUIDs given to the attempt; every GPU of the worker in whole-host mode. */
  devices: string[];
  /** A multi-node attempt's member this worker runs (rank 0, the head, owns the record). */
  gang?: { rank: number; members: GangSeat[] };
}

export interface PlacementOptions {
  /**
   * How many later jobs may start ahead of a waiting job before it reserves the worker: once reached, nothing
   * queued behind it starts there until it fits. Small jobs fill gaps, but a large job is never starved.
   */
  maxBypass: number;
  /**
   * How long a multi-node job's members may hold their GPUs while it forms (BERTH_GANG_RESERVATION_MS): past it they
   * give them back, and for as long again other jobs may use them, unless the gang has been passed maxBypass times.
   */
  gangReservationMs?: number;
  /**
   * How long past its maxRuntime a job placed here may keep its GPUs at most: the time to start its container and
   * the stop grace. A job with a maxRuntime is sure to end by then, which is what backfill ahead of a gang relies on.
   */
  overrunMs?: number;
}

/** A member's view of a multi-node attempt it reserved GPUs for. */
export type GangHold =
  /** Still forming (or formed and about to be placed): keep the GPUs. */
  | { status: 'forming' }
  /** Placed: run member `rank` of `members` (rank 0, the head, owns the record). */
  | { status: 'placed'; rank: number; members: GangSeat[] }
  /** Lapsed, broken up or moved on: the GPUs went back (leave-gang). */
  | { status: 'left' };

/** One member's seat in a gang: its owner token, its devices and the address it gave. */
export interface GangSeat {
  rank: number;
  token: string;
  devices: string[];
  address: string;
}

/** What placement needs to know of a queued job. */
export interface QueuedJob {
  id: string;
  /** GPUs asked for (on each host, for a job spanning several). */
  gpus: number;
  /** Hosts it spans. */
  nodes: number;
  /** Not to be placed before (ms), after a retry's backoff. */
  notBefore: number;
  /** Ends as EXPIRED when still queued at this time (ms). */
  deadline: number | undefined;
  /** How often a later job started ahead of it. */
  skips: number;
  /** The user who owns it. */
  user: string;
}

/** The head of one GPU-demand queue as BullMQ lists it. */
interface Due {
  gpus: number;
  /** Hosts it spans (1 for a job on one host); a gang's queue is its own. */
  nodes: number;
  bullId: string;
  /** Its BullMQ priority, where the look read it. */
  priority?: number;
}

/** The head of one GPU-demand queue, as placement weighs it. */
interface Head {
  gpus: number;
  nodes: number;
  jobId: string;
  /** BullMQ priority: lower starts first. */
  priority: number;
  seq: number;
  skips: number;
  /** The attempt it waits to start (the record's last attempt + 1). */
  attempt: number;
  /** Its spec's maxRuntime (s), where it has one. */
  maxRuntime: number | undefined;
  /** Its record no longer waits for it: fetching it only finishes it. */
  stale: boolean;
}

/** How long a multi-node job's members hold their GPUs while it forms, by default. */
export const defaultGangReservationMs = 60_000;

/** The members of a gang, from its hash (`<prefix>:gang:<hold>`), in rank order. */
function seatsOf(gang: Readonly<Record<string, string>>): GangSeat[] {
  const seats: GangSeat[] = [];
  for (let r = 0; r < Number(gang.n ?? 0); r++) {
    const d = gang[`d${r}`] ?? '';
    seats.push({ rank: r, token: gang[`m${r}`] ?? '', devices: d ? d.split(',') : [], address: gang[`a${r}`] ?? '' });
  }
  return seats;
}

/** Whether head `a` should start before head `b`: higher priority (a lower number) first, then the older. */
const before = (a: Head, b: Head): boolean => a.priority < b.priority || (a.priority === b.priority && a.seq < b.seq);

export class Placement {
  private readonly keys: Keys;
  /** The wake-up on its way to Redis, and the one that follows it (wake). */
  private waking: Promise<void> | undefined;
  private nextWake: Promise<void> | undefined;
  /** Gangs whose reservation lapsed on this worker, and until when it lets other jobs use the GPUs first. */
  private readonly cooling = new Map<string, number>();
  /** Whether each job seen spans several hosts (isGang). */
  private readonly gangJobs = new Map<string, boolean>();

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    /** The gang reservation this worker's placement uses (its cooling-off after a lapse lasts as long). */
    private readonly reservationMs?: number,
  ) {
    this.keys = keys(prefix);
  }

  /**
   * Places as many waiting jobs on this worker as fit now, taking each from BullMQ and reserving its GPUs.
   * `onIdle` is told when jobs that fit were waiting but BullMQ handed none over (the watchdog's signal).
   */
  async claim(
    worker: PlacementWorker,
    options: PlacementOptions,
    queues: JobQueues,
    taker: AttemptTaker,
    now = Date.now(),
  ): Promise<Claim[]> {
    const claims: Claim[] = [];
    const total = worker.gpus.length;
    const gangs = await queues.gangQueues();
    // Gangs this worker joined (or may not join now) in this call: the next round weighs the heads behind them.
    const joined = new Set<string>();
    // Each round takes at most one job; the bound only guards against a queue that keeps handing over stale heads.
    for (let round = 0; round < 4 * (worker.concurrency + 1); round++) {
      const look = this.redis.pipeline();
      look.hgetall(this.keys.ledger(worker.id));
      look.smembers(this.keys.active(worker.id));
      for (let n = 0; n <= total; n++) {
        const q = queues.queue(n);
        look.lindex(q.keys.wait!, -1);
        look.zrange(q.keys.prioritized!, '0', '0', 'WITHSCORES');
        look.zrange(q.keys.delayed!, '0', '0', 'WITHSCORES');
      }
      for (const name of gangs) {
        const q = queues.queue(name);
        look.lindex(q.keys.wait!, -1);
        look.zrange(q.keys.prioritized!, '0', '0', 'WITHSCORES');
        look.zrange(q.keys.delayed!, '0', '0', 'WITHSCORES');
      }
      const rows = ((await look.exec()) ?? []).map(([err, value]) => {
        if (err) throw err;
        return value;
      });
      const ledger = rows[0] as Record<string, string>;
      const holds = new Set(rows[1] as string[]);
      if (holds.size >= worker.concurrency) {
        taker.nothingToTake();
        break;
      }
      const free = worker.gpus.filter((u) => !ledger[u]).length;
      // A queue's head is what BullMQ's fetch would hand over: the wait list first (priority 0, which berth does not
      // use), then the lowest prioritized score (priority × 2³² + order), then a delayed job that came due (its
      // score is its due time × 4096, and the fetch promotes it first). These are BullMQ's key layouts.
      const due: Due[] = [];
      const lanes = total + 1 + gangs.length;
      for (let i = 0; i < lanes; i++) {
        const waiting = rows[2 + 3 * i] as string | null;
        const prioritized = rows[3 + 3 * i] as string[];
        const delayed = rows[4 + 3 * i] as string[];
        const lane = { gpus: i <= total ? i : -1, nodes: i <= total ? 1 : 0 };
        if (waiting) due.push({ ...lane, bullId: waiting, priority: 0 });
        else if (prioritized.length === 2) {
          due.push({ ...lane, bullId: prioritized[0]!, priority: Math.floor(Number(prioritized[1]) / 2 ** 32) });
        } else if (delayed.length === 2 && Math.floor(Number(delayed[1]) / 0x1000) <= now) {
          due.push({ ...lane, bullId: delayed[0]! });
        }
      }
      const weighed = await this.weigh(due);
      // The first gang waiting may be this worker's to complete once its GPUs free: its BullMQ worker is made now.
      const gang = weighed.find((h) => h.nodes > 1 && !h.stale);
      taker.warm(gang && gangQueueName(gang.jobId));
      // A gang this worker already holds GPUs for is weighed no more: joining again would only say it is a member.
      // A gang whose members need more GPUs than this worker has is not this worker's to wait for.
      const heads = weighed.filter(
        (h) => !joined.has(h.jobId) && !(h.nodes > 1 && (h.gpus > total || holds.has(holdOf(h.jobId, h.attempt)))),
      );
      const fits = (n: number) => n === 0 || (worker.mode === 'whole-host' ? free === total : n <= free);
      const choice = await this.choose(worker, heads, fits, options);
      if (!choice) {
        taker.nothingToTake();
        break;
      }
      const { chosen, passed } = choice;
      if (chosen.nodes > 1) {
        joined.add(chosen.jobId);
        const member = await this.takePartIn(worker, chosen, options, taker, now);
        if (!member) continue;
        // This worker placed the gang: its own member starts now, not a round later. The wake the placing sent
        // brings this worker (and every member's) back for the rest.
        claims.push(member);
        break;
      }
      const job = await taker.next(chosen.gpus);
      if (!job) continue;
      faultPoint('after-fetch');
      const claim = await this.assign(worker, job, taker.token, options);
      if (!claim) continue;
      if (passed.length > 0) {
        const bump = this.redis.pipeline();
        for (const h of passed) bump.hincrby(this.keys.job(h.jobId), 'skips', 1);
        await bump.exec();
      }
      claims.push(claim);
    }
    return claims;
  }

  /**
   * Which head starts next here, and the older ones it passes (their skip counts grow); undefined when an older job
   * passed often enough reserves this worker. The first head that fits starts, but where that is a gang this worker
   * would join (and hold idle until the others are free), the single behind it that fits starts instead when it is
   * sure to end before the gang could start anyway. A passed gang that a single cannot delay is not counted as passed.
   */
  private async choose(
    worker: PlacementWorker,
    heads: readonly Head[],
    fits: (gpus: number) => boolean,
    options: PlacementOptions,
  ): Promise<{ chosen: Head; passed: Head[] } | undefined> {
    const first = heads.find((h) => h.stale || fits(h.gpus));
    if (!first) return undefined;
    if (first.stale) return { chosen: first, passed: [] };
    const passedBy = (c: Head) => heads.filter((h) => !h.stale && before(h, c) && !fits(h.gpus));
    const next = first.nodes > 1 ? heads.find((h) => !h.stale && before(first, h) && fits(h.gpus)) : undefined;
    const single = first.nodes === 1 ? first : next?.nodes === 1 && next.maxRuntime !== undefined ? next : undefined;
    if (single) {
      const passed = single === first ? passedBy(single) : [first, ...passedBy(single)];
      const gangs = passed.filter((h) => h.nodes > 1);
      const spared =
        single.maxRuntime !== undefined && gangs.length > 0
          ? await this.spared(worker, single.maxRuntime, gangs, options)
          : new Set<string>();
      if (single === first || spared.has(first.jobId)) {
        const counted = passed.filter((h) => !spared.has(h.jobId));
        // An older job passed often enough reserves this worker until it fits.
        return counted.some((h) => h.skips >= options.maxBypass) ? undefined : { chosen: single, passed: counted };
      }
    }
    return passedBy(first).some((h) => h.skips >= options.maxBypass) ? undefined : { chosen: first, passed: [] };
  }

  /** The gangs in `gangs` that a job of `maxRuntime` seconds started on this worker now cannot delay (backfill.ts). */
  private async spared(
    worker: PlacementWorker,
    maxRuntime: number,
    gangs: readonly Head[],
    options: PlacementOptions,
  ): Promise<Set<string>> {
    const { now, hosts, seated } = await this.backfillView(gangs);
    const until = now + maxRuntime * 1000 + (options.overrunMs ?? 0);
    const self = hosts.find((h) => h.id === worker.id);
    const spared = new Set<string>();
    if (!self) return spared;
    for (const g of gangs) {
      // Once a member holds GPUs idle for the gang, every moment it waits costs them: nothing backfills then.
      if (seated.has(g.jobId)) continue;
      const others = hosts.filter((h) => h !== self).map((h) => readyAt(h, g.gpus, now));
      if (spares({ nodes: g.nodes, holding: 0 }, others, readyAt(self, g.gpus, now), until)) spared.add(g.jobId);
    }
    return spared;
  }

  /**
   * What backfill weighs, read on Redis's clock: every worker not written off, with its holds and by when each is
   * sure to have ended (a placed attempt's `endsBy`), and which of `gangs` a member already holds GPUs for.
   */
  private async backfillView(
    gangs: readonly Head[],
  ): Promise<{ now: number; hosts: HostState[]; seated: Set<string> }> {
    const ids = await this.redis.smembers(this.keys.workers);
    const read = this.redis.pipeline().time();
    for (const id of ids) {
      read.hmget(this.keys.worker(id), 'json', 'status');
      read.hgetall(this.keys.ledger(id));
      read.smembers(this.keys.active(id));
    }
    for (const g of gangs) read.hget(this.keys.gang(holdOf(g.jobId, g.attempt)), 'n');
    const rows = ((await read.exec()) ?? []).map(([err, value]) => {
      if (err) throw err;
      return value;
    });
    const [seconds, micros] = rows[0] as string[];
    const now = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
    const found: Omit<HostState, 'endsBy'>[] = [];
    ids.forEach((id, i) => {
      const [json, status] = rows[1 + 3 * i] as (string | null)[];
      if (!json || status === 'lost') return;
      const profile = JSON.parse(json) as { mode: GpuMode; concurrency: number; gpus: { uuid: string }[] };
      found.push({
        id,
        mode: profile.mode,
        concurrency: profile.concurrency,
        gpus: profile.gpus.map((g) => g.uuid),
        ledger: rows[2 + 3 * i] as Record<string, string>,
        holds: rows[3 + 3 * i] as string[],
      });
    });
    const seated = new Set(gangs.filter((_, i) => Number(rows[1 + 3 * ids.length + i] ?? 0) > 0).map((g) => g.jobId));
    const holds = [...new Set(found.flatMap((h) => h.holds))];
    const bounds = this.redis.pipeline();
    for (const hold of holds) bounds.hmget(this.keys.job(parseHold(hold).jobId), 'endsBy', 'attempt');
    const endsBy = new Map<string, number>();
    ((await bounds.exec()) ?? []).forEach(([, value], i) => {
      const [at, attempt] = (value ?? []) as (string | null)[];
      const hold = holds[i]!;
      // A bound is the placed attempt's; one left from an earlier attempt bounds nothing.
      if (at && Number(attempt) === parseHold(hold).attempt) endsBy.set(hold, Number(at));
    });
    return { now, hosts: found.map((h) => ({ ...h, endsBy })), seated };
  }

  /**
   * This worker's part in placing a gang whose head it chose: it joins (reserving its member's GPUs), and the member
   * that makes the gang whole takes the gang's BullMQ job and places it. A gang whose reservation lapsed on this
   * worker is let be for as long again, so other jobs may use the GPUs, unless it was passed maxBypass times.
   * Answers this worker's member when it placed the gang.
   */
  private async takePartIn(
    worker: PlacementWorker,
    head: Head,
    options: PlacementOptions,
    taker: AttemptTaker,
    now: number,
  ): Promise<Claim | undefined> {
    const lane = gangQueueName(head.jobId);
    if (head.stale) {
      // Its record moved on: fetched, the attempt is finished; an ended gang's queue is forgotten.
      const job = await taker.next(lane);
      if (job) await job.moveToCompleted({ discarded: 'the job no longer waits for this attempt' }, taker.token, false);
      await taker.done(lane);
      const state = await this.redis.hget(this.keys.job(head.jobId), 'state');
      if (state !== 'queued') await this.redis.srem(this.keys.gangQueues, lane);
      return undefined;
    }
    const until = this.cooling.get(head.jobId);
    if (until !== undefined && until > now && head.skips < options.maxBypass) return undefined;
    this.cooling.delete(head.jobId);
    const attempt = head.attempt;
    const hold = holdOf(head.jobId, attempt);
    const reply = (await runScript(
      this.redis,
      scripts.joinGang,
      [this.keys.job(head.jobId), this.keys.ledger(worker.id), this.keys.active(worker.id), this.keys.gang(hold)],
      [
        attempt,
        worker.mode,
        hold,
        worker.gpus.join(','),
        ownerToken(worker.id, attempt),
        head.nodes,
        options.gangReservationMs ?? defaultGangReservationMs,
        worker.address ?? '',
      ],
    )) as string[];
    if (reply[0] !== 'complete') return undefined;
    try {
      const job = await taker.next(lane);
      if (!job) return undefined;
      if (job.data.attempt !== attempt) {
        await job.moveToWait(taker.token);
        return undefined;
      }
      const placed = (await runScript(
        this.redis,
        scripts.assignGang,
        [this.keys.job(head.jobId), this.keys.gang(hold), this.keys.deadlines],
        [head.jobId, attempt, this.keys.wakeChannel, options.overrunMs ?? 0],
      )) as string[];
      // Placed, the script itself woke every member: the wake leaves Redis before its reply does.
      if (placed[0] === 'nofit') await job.moveToWait(taker.token);
      else if (placed[0] === 'stale') {
        await job.moveToCompleted({ discarded: 'the job no longer waits for this attempt' }, taker.token, false);
      } else {
        const gang: Record<string, string> = {};
        for (let i = 1; i + 1 < placed.length; i += 2) gang[placed[i]!] = placed[i + 1]!;
        const members = seatsOf(gang);
        const seat = members.find((m) => m.token === ownerToken(worker.id, attempt));
        if (seat) return { jobId: head.jobId, attempt, devices: seat.devices, gang: { rank: seat.rank, members } };
      }
      return undefined;
    } finally {
      // The gang's queue holds this job only: its BullMQ worker (two connections) is not needed again. Closing it
      // is not on the way to the member's start.
      void taker.done(lane);
    }
  }

  /** Whether `token` holds seat `rank` of a gang attempt that the record runs (placed, not ended or moved on). */
  async isSeated(jobId: string, attempt: number, rank: number, token: string): Promise<boolean> {
    const [owner, recordAttempt] = await this.redis.hmget(this.keys.job(jobId), 'owner', 'attempt');
    if (!owner || Number(recordAttempt) !== attempt) return false;
    const [seat, head] = await this.redis.hmget(this.keys.gang(holdOf(jobId, attempt)), `m${rank}`, 'm0');
    return seat === token && head === owner;
  }

  /** Forgets a gang attempt that ended (its head recorded the end): its members find no seat, and go. */
  async dropGang(jobId: string, attempt: number): Promise<void> {
    await this.redis.del(this.keys.gang(holdOf(jobId, attempt)));
  }

  /** Whether a job spans several hosts (its holds are gang members'). */
  async isGang(jobId: string): Promise<boolean> {
    // A job's node count never changes, so each worker asks once per job (the cache is bounded by dropping it all).
    let gang = this.gangJobs.get(jobId);
    if (gang === undefined) {
      gang = Number((await this.redis.hget(this.keys.job(jobId), 'nodes')) ?? 1) > 1;
      if (this.gangJobs.size >= 10_000) this.gangJobs.clear();
      this.gangJobs.set(jobId, gang);
    }
    return gang;
  }

  /**
   * Where a gang attempt this worker holds GPUs for stands: still forming (keep them), placed (run its member), or
   * over (lapsed, broken up, moved on: the GPUs are given back here and now).
   */
  async gangHold(workerId: string, jobId: string, attempt: number, now = Date.now()): Promise<GangHold> {
    const hold = holdOf(jobId, attempt);
    const token = ownerToken(workerId, attempt);
    // One round trip: this runs on every member's worker at each wake while a gang forms and starts.
    const replies = (await this.redis
      .pipeline()
      .hmget(this.keys.job(jobId), 'owner', 'attempt')
      .hgetall(this.keys.gang(hold))
      .exec())!.map(([err, value]) => {
      if (err) throw err;
      return value;
    });
    const [owner, recordAttempt] = replies[0] as (string | null)[];
    const seats = seatsOf(replies[1] as Record<string, string>);
    const seat = seats.find((m) => m.token === token);
    if (seat && owner && owner === seats[0]?.token && Number(recordAttempt) === attempt) {
      return { status: 'placed', rank: seat.rank, members: seats };
    }
    const reply = (await runScript(
      this.redis,
      scripts.leaveGang,
      [this.keys.job(jobId), this.keys.ledger(workerId), this.keys.active(workerId), this.keys.gang(hold)],
      [attempt, hold, token],
    )) as string[];
    if (reply[0] === 'waiting') return { status: 'forming' };
    if (reply[0] === 'placed') return { status: 'left' };
    // Lapsed on this worker: others may use its GPUs for a while before it joins this gang again.
    this.cooling.set(jobId, now + (this.reservationMs ?? defaultGangReservationMs));
    await this.wake();
    return { status: 'left' };
  }

  /**
   * Settles, at start-up and before anything is placed, the BullMQ jobs this worker holds locks on but does not run:
   * one fetched and never given GPUs (it died in between) goes back to the head of its queue; one whose record moved
   * on (it died after recording the end, before finishing the BullMQ job) is finished as its record says. Attempts
   * it did place are its own holds and are re-attached as usual.
   */
  async reconcileFetched(worker: PlacementWorker, queues: JobQueues, token: string): Promise<string[]> {
    const settled: string[] = [];
    const lanes: (number | string)[] = [...(await queues.gangQueues())];
    for (let n = 0; n <= worker.gpus.length; n++) lanes.push(n);
    for (const lane of lanes) {
      for (const bullId of await queues.lockedBy(lane, token)) {
        const at = bullId.lastIndexOf('-a');
        const ticket = await queues.ticket(bullId.slice(0, at), Number(bullId.slice(at + 2)));
        if (!ticket) continue;
        const [state, owner, attempt] = await this.redis.hmget(this.keys.job(ticket.id), 'state', 'owner', 'attempt');
        // Placed: here, or (a gang this worker completed) on its head's worker, which runs and ends it.
        if (owner && Number(attempt) === ticket.attempt) continue;
        if (state === 'queued' && !owner && Number(attempt ?? 0) + 1 === ticket.attempt) {
          await queues.putBack(ticket, token);
        } else {
          const json = await this.redis.hget(this.keys.job(ticket.id), 'json');
          if (json) await queues.settle(ticket, JobRecord.parse(JSON.parse(json)), token);
        }
        settled.push(ticket.id);
      }
    }
    return settled;
  }

  /**
   * The queue heads in the order they should start: priority (as BullMQ holds it, aged), then submit order; with
   * each head's skip count. Heads whose record moved on come first, to be fetched and finished.
   */
  private async weigh(due: readonly Due[]): Promise<Head[]> {
    const read = this.redis.pipeline();
    const ids = due.map((d) => d.bullId.slice(0, d.bullId.lastIndexOf('-a')));
    for (const id of ids) {
      read.hmget(this.keys.job(id), 'seq', 'skips', 'state', 'priority', 'gpus', 'nodes', 'attempt', 'maxRuntime');
    }
    const rows = (await read.exec()) ?? [];
    const heads: Head[] = [];
    due.forEach((d, i) => {
      const [seq, skips, state, priority, gpus, nodes, attempt, maxRuntime] = (rows[i]?.[1] ?? []) as (string | null)[];
      // A stale head goes first, wherever it is: fetched, it is finished at once and its queue moves on.
      const stale = state !== 'queued';
      // A gang's queue is its own: its demand is read from its record.
      const gang = d.nodes === 0;
      heads.push({
        gpus: gang ? Number(gpus ?? 0) : d.gpus,
        nodes: gang ? Math.max(2, Number(nodes ?? 2)) : 1,
        jobId: ids[i]!,
        // A due delayed head has no BullMQ priority to read cheaply: the job's own (un-aged) one stands in.
        priority: stale ? -1 : (d.priority ?? Number(priority ?? 0)),
        seq: Number(seq ?? 0),
        skips: Number(skips ?? 0),
        attempt: Number(attempt ?? 0) + 1,
        maxRuntime: maxRuntime ? Number(maxRuntime) : undefined,
        stale,
      });
    });
    return heads.sort((a, b) => (before(a, b) ? -1 : before(b, a) ? 1 : 0));
  }

  /** Gives a fetched attempt its GPUs; finishes the BullMQ job of one whose record moved on. */
  private async assign(
    worker: PlacementWorker,
    job: AttemptJob,
    token: string,
    options: PlacementOptions,
  ): Promise<Claim | undefined> {
    const { id, attempt } = job.data;
    const reply = (await runScript(
      this.redis,
      scripts.assignGpus,
      [this.keys.job(id), this.keys.ledger(worker.id), this.keys.active(worker.id), this.keys.deadlines],
      [
        id,
        attempt,
        worker.mode,
        ownerToken(worker.id, attempt),
        holdOf(id, attempt),
        worker.gpus.join(','),
        options.overrunMs ?? 0,
      ],
    )) as string[];
    if (reply[0] === 'ok') return { jobId: id, attempt, devices: reply[1] ? reply[1].split(',') : [] };
    if (reply[0] === 'nofit') {
      // Another placement on this worker took the GPUs between the look and the fetch: back to the queue.
      await job.moveToWait(token);
      return undefined;
    }
    await job.moveToCompleted({ discarded: 'the job no longer waits for this attempt' }, token, false);
    return undefined;
  }

  /**
   * The jobs waiting to be placed, in the order they will start where they fit: BullMQ priority (aged), then submit
   * order. A job placed a moment ago is still `queued` until its worker starts it, and is left out.
   */
  async queued(limit = 10_000): Promise<QueuedJob[]> {
    const ids = await this.redis.zrange(this.keys.jobsInState('queued'), '0', String(limit - 1));
    const pipeline = this.redis.pipeline();
    for (const id of ids)
      pipeline.hmget(this.keys.job(id), 'gpus', 'notBefore', 'skips', 'user', 'owner', 'attempt', 'priority', 'nodes');
    pipeline.zmscore(this.keys.deadlines, ...(ids.length > 0 ? ids : ['-']));
    const rows = (await pipeline.exec()) ?? [];
    const deadlines = (rows.at(-1)?.[1] ?? []) as (string | null)[];
    const jobs = ids.flatMap((id, i) => {
      const [gpus, notBefore, skips, user, owner, attempt, priority, nodes] = (rows[i]?.[1] ?? []) as (string | null)[];
      if (owner) return [];
      const deadline = deadlines[i];
      return [
        {
          id,
          gpus: Number(gpus ?? 0),
          nodes: Number(nodes ?? 1),
          notBefore: Number(notBefore ?? 0),
          deadline: deadline ? Number(deadline) : undefined,
          skips: Number(skips ?? 0),
          user: user ?? '',
          attempt: Number(attempt ?? 0) + 1,
          priority: Number(priority ?? 0),
          seq: i,
        },
      ];
    });
    // The priority BullMQ holds now, which aging may have raised.
    const current = this.redis.pipeline();
    for (const j of jobs) current.hget(`${this.prefix}:${laneOf(j)}:${bullJobId(j.id, j.attempt)}`, 'priority');
    const held = (await current.exec()) ?? [];
    jobs.forEach((j, i) => {
      const p = held[i]?.[1];
      if (typeof p === 'string') j.priority = Number(p);
    });
    jobs.sort((a, b) => a.priority - b.priority || a.seq - b.seq);
    return jobs.map(({ attempt: _a, priority: _p, seq: _s, ...job }) => job);
  }

  /** Queued jobs whose queueTtl ran out by `now`. */
  async expired(now: number): Promise<string[]> {
    return this.redis.zrangebyscore(this.keys.deadlines, '-inf', now);
  }

  /** Drops a job's queue deadline (it is no longer waiting). */
  async dropDeadline(jobId: string): Promise<void> {
    await this.redis.zrem(this.keys.deadlines, jobId);
  }

  /** Frees what a worker holds for a job that ended or moved on; clears the job's owner if it was this attempt. */
  async forget(workerId: string, jobId: string, attempt: number): Promise<void> {
    await runScript(
      this.redis,
      scripts.forgetHold,
      [this.keys.ledger(workerId), this.keys.active(workerId), this.keys.job(jobId)],
      [holdOf(jobId, attempt), ownerToken(workerId, attempt)],
    );
  }

  /** The devices a placed job holds (from its claim), for a worker re-attaching after a restart. */
  async devices(jobId: string): Promise<string[]> {
    const devices = await this.redis.hget(this.keys.job(jobId), 'devices');
    return devices ? devices.split(',') : [];
  }

  /** The worker and attempt a placed job belongs to (`worker|attempt`), or null when it is not placed. */
  async owner(jobId: string): Promise<string | null> {
    return (await this.redis.hget(this.keys.job(jobId), 'owner')) || null;
  }

  /**
   * Wakes every worker to try placing jobs (a job was queued or GPUs were freed); settles once a wake-up sent after
   * this call has reached Redis. Calls made while one is on its way share the one sent right after it: a worker
   * reads the queues afresh on each, so a burst of submits costs two messages, not one each.
   */
  wake(): Promise<void> {
    if (!this.waking) {
      this.waking = this.redis.publish(this.keys.wakeChannel, '1').then(() => undefined);
      const done = () => {
        this.waking = undefined;
      };
      this.waking.then(done, done);
      return this.waking;
    }
    this.nextWake ??= this.waking
      .catch(() => {})
      .then(() => {
        this.nextWake = undefined;
        return this.wake();
      });
    return this.nextWake;
  }
}
