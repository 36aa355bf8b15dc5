// Server-Sent Events on a hijacked reply: headers, a heartbeat comment every 15 s, writes with backpressure. Each
// heartbeat also asks whether the credentials that opened the stream still hold: a follow lives for hours, and a
// revoked token or an expired signed URL must not keep it open. A member may hold only so many streams at once.
import { BerthError } from '@berth/contracts';
import type { FastifyReply } from 'fastify';
import type { ServerResponse } from 'node:http';
import type { Caller, Session } from '../auth/auth.js';

export const heartbeatMs = 15_000;

export interface SseOptions {
  /** How often a comment keeps proxies from closing an idle stream, and the credentials are checked again. */
  heartbeatMs: number;
  /** Streams one member may have open at once in this process (admins and workers are not counted). */
  maxStreamsPerUser: number;
}

export interface SseStream {
  /** Resolves once the client took the text (or left). */
  send(text: string): Promise<void>;
  readonly closed: boolean;
  end(): void;
}

/** Every open SSE response of this process, ended together on shutdown. */
export class SseClients {
  readonly open = new Set<ServerResponse>();
  private readonly perUser = new Map<string, number>();
  private readonly options: SseOptions;

  constructor(options: Partial<SseOptions> = {}) {
    this.options = { heartbeatMs, maxStreamsPerUser: Infinity, ...options };
  }

  /**
   * Hands the reply over to SSE. The request's caller and session (set by the auth hook) come with the reply, so
   * the cap and the re-checks need nothing from the route. Throws TOO_MANY_STREAMS before anything is sent.
   */
  start(reply: FastifyReply): SseStream {
    const request = reply.request;
    const caller = request.caller as Caller | null;
    const session = request.session as Session | null;
    const counted = caller?.user.role === 'member' ? caller.user.id : undefined;
    if (counted !== undefined) {
      const n = this.perUser.get(counted) ?? 0;
      const max = this.options.maxStreamsPerUser;
      if (n >= max) {
        throw new BerthError('TOO_MANY_STREAMS', `at most ${max} streams may be open at once: close one first`, {
          limit: max,
        });
      }
      this.perUser.set(counted, n + 1);
    }
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.write(': following\n\n');
    this.open.add(res);
    let closed = false;
    let checking = false;
    const heartbeat = setInterval(() => {
      if (res.writableEnded) return;
      res.write(': heartbeat\n\n');
      if (!session || checking) return;
      checking = true;
      // A Redis blip is not a revocation: the stream goes on, and the next heartbeat asks again.
      void session
        .check()
        .catch(() => null)
        .then((reason) => {
          checking = false;
          if (reason && !res.writableEnded) res.end(sseEvent('end', { reason }));
        });
    }, this.options.heartbeatMs);
    res.on('close', () => {
      closed = true;
      clearInterval(heartbeat);
      this.open.delete(res);
      if (counted !== undefined) {
        const n = (this.perUser.get(counted) ?? 1) - 1;
        if (n > 0) this.perUser.set(counted, n);
        else this.perUser.delete(counted);
      }
    });
    return {
      send: (text) => send(res, text),
      get closed() {
        return closed;
      },
      end: () => {
        if (!closed && !res.writableEnded) res.end();
      },
    };
  }

  endAll(): void {
    for (const res of this.open) if (!res.writableEnded) res.end();
  }
}

/** One SSE event; without an id the client's Last-Event-ID stays where it was. */
export function sseEvent(event: string, data: unknown, id?: string): string {
  return `${id ? `id: ${id}\n` : ''}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

function send(res: ServerResponse, text: string): Promise<void> {
  // Ended (e.g. by a revoked token) but not yet closed: the text has nowhere to go.
  if (res.destroyed || res.writableEnded || res.write(text)) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}
