// A job's log and metrics, and every job's state changes: read so far, or followed as Server-Sent Events that
// resume exactly from Last-Event-ID. Followers of one stream share one Redis reader in this process.
import { BerthError, linesOf, LogLine, maxNodes, MetricSeries, type LogEntry } from '@berth/contracts';
import { memberLogId, type MetricEntry, type StateChangeEntry } from '@berth/store';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { sseEvent } from '../streams/sse.js';
import type { TailHub } from '../streams/tail-hub.js';
import { canSee } from '../auth/auth.js';
import { loadJob } from '../jobs/job-reads.js';
import { routePlugin } from './route-plugin.js';
import { ErrorResponse } from './schemas.js';

const streamId = z.string().regex(/^\d{1,20}-\d{1,20}$/, 'a stream id looks like 1700000000000-0');
const JobParams = z.strictObject({ id: z.string().max(64) });
/**
 * A page of log lines stops at about this many bytes (line text and each line's JSON fields), however large its
 * `limit`: 100,000 lines of 64 KiB would be 6 GiB held in the API and sent at once.
 */
const pageBytes = 8 * 1024 ** 2;
const resumeHeaders = z.object({ 'last-event-id': streamId.optional() }).passthrough();
/**
 * Where a follow of every member of a multi-node job stands: one stream id per member's log, head first, joined by
 * commas (each event's id). A single stream id stands for every member: Redis stamps them all on one clock.
 */
const logPosition = z
  .string()
  .regex(
    new RegExp(`^\\d{1,20}-\\d{1,20}(,\\d{1,20}-\\d{1,20}){0,${maxNodes - 1}}$`),
    'a log position is a stream id (1700000000000-0), or one per node joined by commas',
  );
/** How long a follow of every member waits, after the head's end, for the others to say they have ended. */
const membersEndWaitMs = 5000;

/**
 * Renders each entry once, however many followers it goes to: followers of one stream share the entry objects the
 * shared reader read, so 50 followers of a job cost one JSON.stringify a line, not 50.
 */
function once<T extends object>(render: (e: T) => string): (e: T) => string {
  const rendered = new WeakMap<T, string>();
  return (e) => {
    let text = rendered.get(e);
    if (text === undefined) {
      text = render(e);
      rendered.set(e, text);
    }
    return text;
  };
}

const logEvent = once((e: LogEntry): string => {
  if (e.kind === 'end') return sseEvent('end', { state: e.state }, e.id);
  if (e.kind === 'truncated') {
    return sseEvent('truncated', { dropped: e.dropped, message: truncatedText(e.dropped) });
  }
  const { kind: _kind, ...batch } = e;
  return sseEvent('log', batch, e.id);
});

/** A member's batch in a follow of every member: its node, and the id that resumes every member's log past it. */
function memberLogEvent(e: LogEntry, node: number, position: string): string {
  if (e.kind === 'truncated') return logEvent(e);
  const { kind: _kind, id: _id, ...batch } = e as Extract<LogEntry, { kind: 'lines' }>;
  return sseEvent('log', { ...batch, id: position, node }, position);
}

/** The place in member `node`'s log that a log position gives. */
function positionOf(position: string, node: number): string {
  const each = position.split(',');
  return each.length === 1 ? each[0]! : (each[node] ?? '0');
}

function truncatedText(dropped: number): string {
  return `[berth] ${dropped} older lines are not in the live log; they are in the attempt's log artifact`;
}

const metricEvent = once((e: MetricEntry): string => {
  if (e.entry === 'end') return sseEvent('end', { state: e.state }, e.id);
  const { entry: _entry, ...point } = e;
  return sseEvent('metric', point, e.id);
});

const stateEvent = once((e: StateChangeEntry): string => {
  const { id, ...change } = e;
  return sseEvent('state', change, id);
});

export const logRoutes = routePlugin(
  'berth-log-routes',
  ['store', 'logs', 'metrics', 'stateChanges', 'hub', 'sse'],
  async (app, { store, logs, metrics, stateChanges, hub, sse: clients }) => {
    /** Hands a request over to SSE and follows `source` from the client's place until the end or it leaves. */
    async function follow<T extends object>(
      request: FastifyRequest,
      reply: FastifyReply,
      key: string,
      source: Parameters<TailHub['follow']>[1],
      from: string,
      render: (e: T) => string,
      keep: (e: T) => boolean = () => true,
    ): Promise<void> {
      const sse = clients.start(reply);
      try {
        await hub.follow(key, source as never, {
          from,
          isClosed: () => sse.closed,
          send: (entries) => sse.send((entries as T[]).filter(keep).map(render).join('')),
        });
      } catch (err) {
        if (!sse.closed) request.log.warn({ err, key }, 'follow stopped');
      } finally {
        sse.end();
      }
    }

    /**
     * Follows every member's log of a multi-node job as one SSE stream, each batch with its `node`. The head's log
     * ends with the job; the others' then get a moment to say they ended (every line of theirs is stored by then),
     * what they logged since is sent, and the head's end closes the stream.
     */
    async function followMembers(
      request: FastifyRequest,
      reply: FastifyReply,
      job: { id: string; nodes: number },
      from: string,
      attempt: number | undefined,
    ): Promise<void> {
      const sse = clients.start(reply);
      const place = Array.from({ length: job.nodes }, (_, node) => positionOf(from, node));
      const stop = new AbortController();
      let end: LogEntry | undefined;
      const render = (node: number, entries: LogEntry[]): string => {
        let out = '';
        for (const e of entries) {
          if (e.kind === 'end') {
            end ??= e;
            continue;
          }
          if (e.kind === 'lines') place[node] = e.id;
          if (e.kind === 'lines' && attempt !== undefined && e.attempt !== attempt) continue;
          out += memberLogEvent(e, node, place.join(','));
        }
        return out;
      };
      const followNode = async (node: number): Promise<void> => {
        const id = memberLogId(job.id, node);
        await hub.follow(`logs:${id}`, logs.source(id), {
          from: place[node]!,
          isClosed: () => sse.closed,
          signal: stop.signal,
          send: (entries) => (stop.signal.aborted ? Promise.resolve() : sse.send(render(node, entries))),
        });
      };
      const members = Array.from({ length: job.nodes - 1 }, (_, i) =>
        followNode(i + 1).catch((err: unknown) => {
          if (!sse.closed) request.log.warn({ err, job: job.id, node: i + 1 }, 'follow of a member stopped');
        }),
      );
      try {
        await followNode(0);
        if (end && !sse.closed) {
          await membersEnded(job.id);
          stop.abort();
          for (let node = 1; node < job.nodes && !sse.closed; node++) {
            for (;;) {
              const read = await logs.page(memberLogId(job.id, node), place[node]!, {
                lines: 10_000,
                maxBytes: pageBytes,
              });
              if (read.entries.length > 0) await sse.send(render(node, read.entries));
              if (!read.more || !read.cursor) break;
              place[node] = read.cursor;
            }
          }
          if (!sse.closed)
            await sse.send(sseEvent('end', { state: (end as { state: string }).state }, place.join(',')));
        }
      } catch (err) {
        if (!sse.closed) request.log.warn({ err, job: job.id }, 'follow stopped');
      } finally {
        stop.abort();
        await Promise.all(members);
        sse.end();
      }
    }

    /** Waits until every member of the job's last attempt noted how it ended, or `membersEndWaitMs`. */
    async function membersEnded(id: string): Promise<void> {
      for (const deadline = Date.now() + membersEndWaitMs; Date.now() < deadline;) {
        const job = await store.get(id);
        const last = job && (await store.withMembers(job)).attempts.at(-1);
        if (!last?.members || last.members.every((m) => m.state && m.state !== 'running')) return;
        await new Promise((r) => setTimeout(r, 100));
      }
    }

    app.get(
      '/v1/jobs/:id/logs',
      {
        schema: {
          tags: ['logs'],
          operationId: 'getJobLogs',
          summary: 'Log lines so far, or follow them as Server-Sent Events',
          description:
            "Text by default (JSON with Accept: application/json; a line's `id` is its batch's, `after=` resumes " +
            'past it). A page holds whole batches: at most `limit` lines and about 8 MiB, then `next` (the ' +
            'x-berth-next header in text) says where the next page starts; a first batch larger than either still ' +
            'comes whole. `tail=N` gives the last N lines (at most about 8 MiB of them), `attempt` one ' +
            "attempt's, `node` one member's of a multi-node job (a read gives the head's, node 0, by default). " +
            'With follow=true the answer is text/event-stream: `log` events, each a batch ' +
            '`{attempt, stream, time, lines}` of lines read together, whose ids are stream ids (send ' +
            'Last-Event-ID to resume), a `truncated` event where the live log was capped (the whole log is in the ' +
            "attempt's log artifact), a heartbeat comment every 15 s, and one final `end` event. A follow of a " +
            'multi-node job without `node` interleaves every member: each batch has its `node`, and its id is a ' +
            "position in every member's log (one stream id per node, joined by commas) that Last-Event-ID resumes.",
          params: JobParams,
          querystring: z.strictObject({
            follow: z.stringbool().default(false),
            after: logPosition.optional(),
            limit: z.coerce.number().int().min(1).max(100_000).default(10_000),
            tail: z.coerce.number().int().min(1).max(100_000).optional(),
            attempt: z.coerce.number().int().min(1).optional(),
            /** A multi-node job's member (its node rank); 0, the head, is the job's own log. */
            node: z.coerce
              .number()
              .int()
              .min(0)
              .max(maxNodes - 1)
              .optional(),
          }),
          headers: z.object({ 'last-event-id': logPosition.optional() }).passthrough(),
          response: {
            200: z.union([
              z.string(),
              z.object({
                lines: z.array(LogLine),
                next: z.string().nullable(),
                ended: z.boolean(),
                truncated: z.number().int().optional(),
              }),
            ]),
            404: ErrorResponse,
            /** TOO_MANY_STREAMS: a follow past the caller's open-stream cap. */
            429: ErrorResponse,
            503: ErrorResponse,
          },
        },
      },
      async (request, reply) => {
        const job = await loadJob(store, request.params.id);
        const nodes = job.spec.resources.nodes ?? 1;
        const { attempt, tail, node } = request.query;
        if (node !== undefined && node >= nodes) {
          throw new BerthError(
            'VALIDATION_FAILED',
            `job ${job.id} runs on ${nodes} node(s): node is 0 to ${nodes - 1}`,
            {
              field: 'node',
            },
          );
        }
        const from = request.headers['last-event-id'] ?? request.query.after ?? '0';
        if (request.query.follow && node === undefined && nodes > 1) {
          await followMembers(request, reply, { id: job.id, nodes }, from, attempt);
          return;
        }
        // A member's log is a stream of its own; access was checked on the job above.
        const id = memberLogId(job.id, node ?? 0);
        const after = positionOf(from, node ?? 0);

        if (request.query.follow) {
          await follow<LogEntry>(request, reply, `logs:${id}`, logs.source(id), after, (e) =>
            attempt !== undefined && e.kind === 'lines' && e.attempt !== attempt ? '' : logEvent(e),
          );
          return;
        }
        const { entries, cursor } =
          tail !== undefined
            ? { entries: await logs.tail(id, tail, attempt, pageBytes), cursor: null }
            : await logs.page(id, after, {
                lines: request.query.limit,
                maxBytes: pageBytes,
                attempt,
              });
        const lines = linesOf(entries, attempt);
        const ended = entries.some((e) => e.kind === 'end');
        const truncated = entries.find((e) => e.kind === 'truncated')?.dropped;
        const next = !ended && tail === undefined ? cursor : null;
        if (request.headers.accept?.includes('application/json')) {
          return { lines, next, ended, ...(truncated ? { truncated } : {}) };
        }
        if (next) void reply.header('x-berth-next', next);
        const head = truncated ? `${truncatedText(truncated)}\n` : '';
        return reply.type('text/plain; charset=utf-8').send(head + lines.map((l) => `${l.text}\n`).join(''));
      },
    );

    app.get(
      '/v1/jobs/:id/metrics',
      {
        schema: {
          tags: ['logs'],
          operationId: 'getJobMetrics',
          summary: 'Training metrics as series (downsampled), with latest values; or follow new points as SSE',
          description:
            'Series of one attempt (the latest by default), each at most `points` points. GPU telemetry is in ' +
            '`gpu.*` series. With follow=true: `metric` events (ids are stream ids; Last-Event-ID resumes) and a final `end`.',
          params: JobParams,
          querystring: z.strictObject({
            follow: z.stringbool().default(false),
            after: streamId.optional(),
            names: z
              .string()
              .regex(/^[A-Za-z0-9_.,-]{1,2000}$/)
              .optional(),
            points: z.coerce.number().int().min(2).max(10_000).default(500),
            attempt: z.coerce.number().int().min(1).optional(),
          }),
          headers: resumeHeaders,
          response: {
            200: z.object({
              attempt: z.number().int().nullable(),
              series: z.array(MetricSeries),
              latest: z.record(z.string(), z.number()),
              summary: z.record(z.string(), z.number()).optional(),
            }),
            404: ErrorResponse,
            /** TOO_MANY_STREAMS: a follow past the caller's open-stream cap. */
            429: ErrorResponse,
            503: ErrorResponse,
          },
        },
      },
      async (request, reply) => {
        const job = await loadJob(store, request.params.id);
        const { names, points, attempt } = request.query;
        if (request.query.follow) {
          const after = request.headers['last-event-id'] ?? request.query.after ?? '0';
          const wanted = names ? new Set(names.split(',')) : null;
          await follow<MetricEntry>(request, reply, `metrics:${job.id}`, metrics.source(job.id), after, (e) =>
            e.entry === 'point' && wanted && !wanted.has(e.name) ? '' : metricEvent(e),
          );
          return;
        }
        const found = await metrics.series(job.id, {
          points,
          names: names ? names.split(',') : undefined,
          attempt,
        });
        return {
          ...found,
          latest: Object.fromEntries(found.series.map((s) => [s.name, s.latest])),
          summary: job.summary,
        };
      },
    );

    app.get(
      '/v1/events',
      {
        schema: {
          tags: ['logs'],
          operationId: 'followEvents',
          summary: "State changes of the caller's jobs (an admin's: every job's) as Server-Sent Events",
          description:
            '`state` events `{job, state, attempt, reason?}` whose ids are stream ids; Last-Event-ID resumes, ' +
            'otherwise the stream starts with the next change.',
          headers: resumeHeaders,
          response: { 200: z.string(), 429: ErrorResponse, 503: ErrorResponse },
        },
      },
      async (request, reply) => {
        const source = stateChanges.source();
        const from = request.headers['last-event-id'] ?? (await source.latest());
        const caller = request.caller;
        await follow<StateChangeEntry>(request, reply, 'state-changes', source, from, stateEvent, (e) =>
          canSee(caller, e.owner),
        );
      },
    );
  },
);
