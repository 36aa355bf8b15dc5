// A job's log: the lines so far (text or JSON), or a Server-Sent Events follow that resumes from Last-Event-ID.
import type { LogEntry } from '@berth/contracts';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { ServerResponse } from 'node:http';
import { z } from 'zod';
import type { Services } from '../services.js';
import { loadJob } from './jobs.js';
import { ErrorResponse } from './schemas.js';

const streamId = z.string().regex(/^\d{1,20}-\d{1,20}$/, 'a stream id looks like 1700000000000-0');
const batch = 1000;
const heartbeatMs = 15_000;

export const logRoutes =
  (services: Services): FastifyPluginAsyncZod =>
  async (app) => {
    const open = new Set<ServerResponse>();
    app.addHook('preClose', async () => {
      for (const res of open) res.end();
    });

    app.get(
      '/v1/jobs/:id/logs',
      {
        schema: {
          tags: ['logs'],
          operationId: 'getJobLogs',
          summary: 'Log lines so far, or follow them as Server-Sent Events',
          description:
            'With follow=true the answer is text/event-stream: `log` events whose ids are stream ids (send Last-Event-ID to resume) and one final `end` event.',
          params: z.strictObject({ id: z.string().max(64) }),
          querystring: z.strictObject({
            follow: z.stringbool().default(false),
            after: streamId.optional(),
            limit: z.coerce.number().int().min(1).max(100_000).default(100_000),
          }),
          headers: z.object({ 'last-event-id': streamId.optional() }).passthrough(),
          response: {
            200: z.union([
              z.string(),
              z.object({
                lines: z.array(
                  z.object({
                    id: z.string(),
                    attempt: z.number(),
                    stream: z.enum(['stdout', 'stderr']),
                    time: z.string(),
                    text: z.string(),
                  }),
                ),
                next: z.string().nullable(),
                ended: z.boolean(),
              }),
            ]),
            404: ErrorResponse,
            503: ErrorResponse,
          },
        },
      },
      async (request, reply) => {
        const { id } = request.params;
        await loadJob(services, id);
        const after = request.headers['last-event-id'] ?? request.query.after ?? '0';

        if (!request.query.follow) {
          const entries = await services.call(() => services.logs.read(id, after, request.query.limit));
          const lines = entries.flatMap((e) => (e.kind === 'line' ? [stripKind(e)] : []));
          const ended = entries.some((e) => e.kind === 'end');
          if (request.headers.accept?.includes('application/json')) {
            const last = entries.at(-1);
            return { lines, next: !ended && last ? last.id : null, ended };
          }
          return reply.type('text/plain; charset=utf-8').send(lines.map((l) => `${l.text}\n`).join(''));
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
        open.add(res);
        const conn = services.openBlockingConnection();
        let closed = false;
        res.on('close', () => {
          closed = true;
          conn.disconnect();
          open.delete(res);
        });
        try {
          await follow(services, conn, id, after, res, () => closed);
        } catch (err) {
          if (!closed) request.log.warn({ err, jobId: id }, 'log follow stopped');
        } finally {
          if (!closed) res.end();
        }
      },
    );
  };

function stripKind(e: Extract<LogEntry, { kind: 'line' }>) {
  const { kind: _kind, ...line } = e;
  return line;
}

async function follow(
  services: Services,
  conn: ReturnType<Services['openBlockingConnection']>,
  jobId: string,
  from: string,
  res: ServerResponse,
  isClosed: () => boolean,
): Promise<void> {
  let cursor = from;
  let catchingUp = true;
  while (!isClosed()) {
    const entries: LogEntry[] = catchingUp
      ? await services.logs.read(jobId, cursor, batch)
      : await services.logs.waitFor(conn, jobId, cursor, batch, heartbeatMs);
    if (entries.length === 0) {
      if (!catchingUp) await send(res, ': heartbeat\n\n');
      catchingUp = false;
      continue;
    }
    let chunk = '';
    for (const e of entries) {
      if (e.kind === 'end') {
        chunk += `id: ${e.id}\nevent: end\ndata: ${JSON.stringify({ state: e.state })}\n\n`;
        await send(res, chunk);
        return;
      }
      chunk += `id: ${e.id}\nevent: log\ndata: ${JSON.stringify(stripKind(e))}\n\n`;
    }
    await send(res, chunk);
    cursor = entries.at(-1)!.id;
    catchingUp = entries.length === batch;
  }
}

/** Writes with backpressure: a slow client slows the reader instead of growing the buffer. */
function send(res: ServerResponse, text: string): Promise<void> {
  if (res.write(text)) return Promise.resolve();
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
