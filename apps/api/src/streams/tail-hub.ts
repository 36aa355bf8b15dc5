// One Redis reader per followed stream in this API process, shared by all of its followers. A follower first
// catches up on its own (XRANGE, at the pace its client reads), then takes the entries the shared reader hands out.
// The reader reads only while some live follower has less than a batch waiting: what the clients have not taken
// stays in Redis, not in this process's heap, and nothing is read only to be dropped. The readers of all streams
// share one blocking connection (SharedXread), however many streams are followed.
import type { Redis, TailSource } from '@berth/store';
import { SharedXread } from './shared-xread.js';

/** Stream entries carry their stream id; a marker without one (e.g. `truncated`) never moves a cursor. */
type Entry = object;

const idOf = (e: Entry): string | undefined => (e as { id?: string }).id;

interface Follower<T> {
  pending: T[];
  /** The id of the last entry sent to this follower's client. */
  cursor: string;
  /** Set when the follower fell too far behind: it drops its buffer and catches up from Redis again. */
  overflow: boolean;
  wake: (() => void) | undefined;
}

class Tail<T extends Entry> {
  readonly followers = new Set<Follower<T>>();
  /** Resolves with the id the reader started after, once it has. */
  readonly ready: Promise<string>;
  private stopped = false;
  /** Set while the reader waits for a follower to want more. */
  private resume: (() => void) | undefined;

  constructor(
    private readonly source: TailSource<T>,
    private readonly conn: Redis,
    private readonly options: { blockMs: number; batch: number; maxPending: number },
    private readonly onStop: () => void,
  ) {
    this.ready = source.latest();
    void this.run();
  }

  stop(): void {
    this.stopped = true;
    this.poke();
  }

  /** A follower took its backlog, joined, left or went live: the reader may have someone to read for again. */
  poke(): void {
    this.resume?.();
  }

  /** Whether a live follower has room for another batch. */
  private wanted(): boolean {
    for (const f of this.followers) if (!f.overflow && f.pending.length < this.options.batch) return true;
    return false;
  }

  private async run(): Promise<void> {
    const conn = this.conn;
    try {
      let cursor = await this.ready;
      while (!this.stopped && this.followers.size > 0) {
        if (!this.wanted()) {
          await new Promise<void>((resolve) => {
            this.resume = resolve;
          });
          this.resume = undefined;
          // Followers that caught up on their own may be past the reader: what every one of them has sent already
          // is wanted by none, so the reader skips to the earliest of their places.
          let earliest: string | undefined;
          for (const f of this.followers) {
            if (earliest === undefined || compareIds(f.cursor, earliest) < 0) earliest = f.cursor;
          }
          if (earliest !== undefined && compareIds(earliest, cursor) > 0) cursor = earliest;
          continue;
        }
        let entries: T[];
        try {
          entries = await this.source.waitFor(conn, cursor, this.options.batch, this.options.blockMs);
        } catch {
          // Redis unreachable: try again shortly; followers keep their place.
          await new Promise((r) => setTimeout(r, 500));
          continue;
        }
        if (entries.length === 0) continue;
        cursor = lastId(entries) ?? cursor;
        for (const f of this.followers) {
          if (f.overflow) continue;
          f.pending.push(...entries);
          if (f.pending.length > this.options.maxPending) {
            f.pending = [];
            f.overflow = true;
          }
          f.wake?.();
        }
        if (entries.some((e) => this.source.isEnd(e))) break;
      }
    } finally {
      this.stopped = true;
      this.onStop();
      for (const f of this.followers) f.wake?.();
    }
  }

  get running(): boolean {
    return !this.stopped;
  }
}

export interface FollowOptions<T> {
  /** Entries strictly after this id are sent ('0' for all). */
  from: string;
  /** Sends a batch in order; resolves when the client took it (backpressure). */
  send(entries: T[]): Promise<void>;
  isClosed(): boolean;
  /** Ends the follow at once when aborted, even while it waits for entries that may never come. */
  signal?: AbortSignal;
}

export class TailHub {
  private readonly tails = new Map<string, Tail<Entry>>();
  private readonly shared: SharedXread;
  /** The shared reader, in the place of the connection of its own a TailSource waits on. */
  private readonly conn: Redis;

  constructor(
    connect: () => Redis,
    // Entries are batches of lines (up to ~16 KiB of text each in a log): a read is at most ~1.6 MB, and the
    // slowest live follower holds up to ~16 MB before it is sent back to catch up from Redis.
    private readonly options = { blockMs: 5000, batch: 100, maxPending: 1000 },
    /** A connection that never blocks, to interrupt the shared reader when a stream joins (else one is opened). */
    control?: Redis,
  ) {
    this.shared = new SharedXread(connect, control);
    this.conn = this.shared as unknown as Redis;
  }

  /** Streams currently read by a shared reader. */
  get readers(): number {
    return this.tails.size;
  }

  /** Sends every entry after `from`, in order and once, until the stream's end entry or the client leaves. */
  async follow<T extends Entry>(key: string, source: TailSource<T>, o: FollowOptions<T>): Promise<void> {
    const me: Follower<T> = { pending: [], cursor: o.from, overflow: false, wake: undefined };
    const closed = o.signal ? () => o.signal!.aborted || o.isClosed() : () => o.isClosed();
    const abort = () => me.wake?.();
    o.signal?.addEventListener('abort', abort);
    let tail = this.join(key, source, me);
    try {
      await tail.ready;
      for (;;) {
        // Catch up from Redis at the client's pace; the shared reader buffers what arrives meanwhile.
        me.overflow = false;
        for (;;) {
          if (closed()) return;
          const batch = await readPatiently(source, me.cursor, this.options.batch);
          if (batch.length > 0) {
            await o.send(batch);
            me.cursor = lastId(batch) ?? me.cursor;
            if (batch.some((e) => source.isEnd(e))) return;
          }
          // A short batch reached the stream's end, which is at or past where the shared reader started.
          if (batch.length < this.options.batch) break;
        }
        // Live: what the shared reader hands out, skipping anything the catch-up already sent.
        tail.poke();
        while (!me.overflow) {
          if (closed()) return;
          // Entries come in stream order: once one is past our place, so is every one after it (one comparison
          // per batch in the steady state, not one per entry).
          const batch = me.pending.splice(0);
          if (batch.length > 0) tail.poke();
          let start = 0;
          for (; start < batch.length; start++) {
            const id = idOf(batch[start]!);
            if (id === undefined || compareIds(id, me.cursor) > 0) break;
          }
          const fresh = start === 0 ? batch : batch.slice(start);
          if (fresh.length > 0) {
            await o.send(fresh);
            me.cursor = lastId(fresh) ?? me.cursor;
            if (fresh.some((e) => source.isEnd(e))) return;
            continue;
          }
          if (!tail.running) {
            // The reader stopped (stream ended, or it was the last one): rejoin, and catch up from our place.
            tail = this.join(key, source, me);
            await tail.ready;
            break;
          }
          await new Promise<void>((resolve) => {
            me.wake = resolve;
          });
          me.wake = undefined;
        }
      }
    } finally {
      o.signal?.removeEventListener('abort', abort);
      this.leave(key, tail as Tail<Entry>, me as Follower<Entry>);
    }
  }

  /** Wakes every follower (e.g. on shutdown, after the responses were ended). */
  close(): void {
    for (const tail of this.tails.values()) {
      tail.stop();
      for (const f of tail.followers) f.wake?.();
    }
    this.shared.close();
  }

  private join<T extends Entry>(key: string, source: TailSource<T>, me: Follower<T>): Tail<T> {
    let tail = this.tails.get(key) as Tail<T> | undefined;
    if (!tail || !tail.running) {
      const created: Tail<T> = new Tail(source, this.conn, this.options, () => {
        if (this.tails.get(key) === (created as Tail<Entry>)) this.tails.delete(key);
      });
      tail = created;
      this.tails.set(key, tail as Tail<Entry>);
    }
    tail.followers.add(me);
    tail.poke();
    return tail;
  }

  private leave(key: string, tail: Tail<Entry>, me: Follower<Entry>): void {
    tail.followers.delete(me);
    tail.poke();
    if (tail.followers.size === 0) {
      tail.stop();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }
}

/** A read that survives a short Redis blip (a few seconds) before the follow gives up; the client then resumes. */
async function readPatiently<T>(source: TailSource<T>, after: string, count: number): Promise<T[]> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await source.read(after, count);
    } catch (err) {
      if (attempt >= 8) throw err;
      await new Promise((r) => setTimeout(r, 250 * attempt));
    }
  }
}

function lastId(entries: readonly Entry[]): string | undefined {
  for (let i = entries.length - 1; i >= 0; i--) {
    const id = idOf(entries[i]!);
    if (id) return id;
  }
  return undefined;
}

export function compareIds(a: string, b: string): number {
  const [am = 0, as = 0] = a.split('-').map(Number);
  const [bm = 0, bs = 0] = b.split('-').map(Number);
  return am === bm ? as - bs : am - bm;
}
