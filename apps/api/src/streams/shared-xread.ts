// One blocking Redis connection for the shared readers of every followed stream in this API process. A blocked XREAD
// serves nothing else, so a connection per followed stream would put one Redis client per job being watched (issue
// 19: 50 followed jobs held 50 connections). Here each reader's single-stream XREAD joins one XREAD over all of them;
// a reader that asks while that XREAD is blocked on other streams interrupts it (CLIENT UNBLOCK) to be included.
import type { Redis } from '@berth/store';

/** An XREAD reply: per stream, its entries as [id, fields]. */
type Reply = [string, [string, string[]][]][];

interface Wait {
  key: string;
  after: string;
  count: number;
  /** When the caller's BLOCK time is up (ms): it gets null then, like a timed-out XREAD. */
  deadline: number;
  resolve(reply: Reply | null): void;
  reject(err: unknown): void;
}

export class SharedXread {
  private readonly waits = new Set<Wait>();
  private reader: Redis | undefined;
  private control: Redis | undefined;
  private readonly sharedControl: Redis | undefined;
  private running = false;
  private closed = false;
  /** The XREAD now blocked: its streams, and its connection's client id (for CLIENT UNBLOCK). */
  private blocked: { keys: Set<string>; id: Promise<unknown> } | undefined;
  private unblocking = false;

  /**
   * `connect` opens the reader's connection (this object owns it). `control` sends CLIENT UNBLOCK: a connection that
   * never blocks, shared with other work; without one, a second connection is opened the first time it is needed.
   */
  constructor(
    private readonly connect: () => Redis,
    control?: Redis,
  ) {
    this.sharedControl = control;
  }

  /**
   * `XREAD COUNT n BLOCK ms STREAMS key id` for one stream, as TailSource.waitFor sends it on "its own" connection:
   * this object stands in for that connection.
   */
  xread(...args: (string | number)[]): Promise<Reply | null> {
    const a = args.map(String);
    if (a.length !== 7 || a[0] !== 'COUNT' || a[2] !== 'BLOCK' || a[4] !== 'STREAMS') {
      return Promise.reject(new Error(`a shared reader reads one stream (XREAD COUNT n BLOCK ms STREAMS key id)`));
    }
    if (this.closed) return Promise.resolve(null);
    const key = a[5]!;
    return new Promise((resolve, reject) => {
      this.waits.add({ key, after: a[6]!, count: Number(a[1]), deadline: Date.now() + Number(a[3]), resolve, reject });
      if (this.blocked && !this.blocked.keys.has(key)) this.unblock();
      if (!this.running) void this.run();
    });
  }

  /** Answers every wait with null (no entries) and closes the connections. */
  close(): void {
    this.closed = true;
    for (const w of this.waits) w.resolve(null);
    this.waits.clear();
    this.reader?.disconnect();
    this.control?.disconnect();
  }

  private async run(): Promise<void> {
    this.running = true;
    try {
      while (this.waits.size > 0 && !this.closed) {
        // Readers that were just handed entries ask again within this turn: one XREAD then carries them all.
        await new Promise((r) => setImmediate(r));
        const round = new Map<string, Wait>();
        const now = Date.now();
        let block = Infinity;
        for (const w of this.waits) {
          if (w.deadline <= now) {
            this.waits.delete(w);
            w.resolve(null);
          } else if (!round.has(w.key)) {
            // Two waits on one stream (a stopped reader and its successor) take turns, so neither re-reads the
            // other's entries in a loop.
            round.set(w.key, w);
            block = Math.min(block, w.deadline - now);
          }
        }
        if (round.size === 0) continue;
        const keys = [...round.keys()];
        const count = Math.max(...[...round.values()].map((w) => w.count));
        this.reader ??= this.connect();
        const id = this.reader.client('ID');
        id.catch(() => {});
        this.blocked = { keys: new Set(keys), id };
        let reply: Reply | null;
        try {
          reply = (await this.reader.xread(
            'COUNT',
            count,
            'BLOCK',
            Math.max(1, Math.ceil(block)),
            'STREAMS',
            ...keys,
            ...keys.map((k) => round.get(k)!.after),
          )) as Reply | null;
        } catch (err) {
          for (const w of round.values()) {
            this.waits.delete(w);
            w.reject(err);
          }
          continue;
        } finally {
          this.blocked = undefined;
        }
        const got = new Map(reply ?? []);
        const after = Date.now();
        for (const w of round.values()) {
          const entries = got.get(w.key);
          if (entries && entries.length > 0) {
            this.waits.delete(w);
            w.resolve([[w.key, entries.slice(0, w.count)]]);
          } else if (w.deadline <= after) {
            this.waits.delete(w);
            w.resolve(null);
          }
        }
      }
    } finally {
      this.running = false;
    }
  }

  /** Interrupts the blocked XREAD so that a stream it does not read is added; once per turn, however many ask. */
  private unblock(): void {
    if (this.unblocking || !this.blocked) return;
    this.unblocking = true;
    const blocked = this.blocked;
    setImmediate(() => {
      void (async () => {
        try {
          const id = await blocked.id;
          if (this.blocked !== blocked || this.closed) return;
          const control = this.sharedControl ?? (this.control ??= this.connect());
          await control.client('UNBLOCK', id as number);
        } catch {
          // The XREAD still ends at its BLOCK time; the new stream is read then.
        } finally {
          this.unblocking = false;
        }
      })();
    });
  }
}
