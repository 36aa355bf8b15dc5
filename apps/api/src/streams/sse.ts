// Server-Sent Events on a hijacked reply: headers, a heartbeat comment every 15 s, writes with backpressure.
import type { FastifyReply } from 'fastify';
import type { ServerResponse } from 'node:http';

export const heartbeatMs = 15_000;

export interface SseStream {
  /** Resolves once the client took the text (or left). */
  send(text: string): Promise<void>;
  readonly closed: boolean;
  end(): void;
}

/** Every open SSE response of this process, ended together on shutdown. */
export class SseClients {
  readonly open = new Set<ServerResponse>();

  start(reply: FastifyReply): SseStream {
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
    const heartbeat = setInterval(() => res.write(': heartbeat\n\n'), heartbeatMs);
    res.on('close', () => {
      closed = true;
      clearInterval(heartbeat);
      this.open.delete(res);
    });
    return {
      send: (text) => send(res, text),
      get closed() {
        return closed;
      },
      end: () => {
        if (!closed) res.end();
      },
    };
  }

  endAll(): void {
    for (const res of this.open) res.end();
  }
}

/** One SSE event; without an id the client's Last-Event-ID stays where it was. */
export function sseEvent(event: string, data: unknown, id?: string): string {
  return `${id ? `id: ${id}\n` : ''}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

function send(res: ServerResponse, text: string): Promise<void> {
  if (res.destroyed || res.write(text)) return Promise.resolve();
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
