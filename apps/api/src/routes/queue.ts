// The queue and the workers, for people watching them: what waits, in which order, why, and where GPUs are free.
import { JobState, QueuePlace, WorkerInfo } from '@berth/contracts';
import type { JobStore } from '@berth/store';
import { z } from 'zod';
import { canSee, type Caller } from '../auth/auth.js';
import { queuePlaces } from '../jobs/job-reads.js';
import { routePlugin } from './route-plugin.js';
import { ErrorResponse } from './schemas.js';

const WaitingJob = QueuePlace.extend({ id: z.string(), gpus: z.number().int() });
const WorkerSummary = z.object({
  id: z.string(),
  host: z.string(),
  status: z.enum(['live', 'lost']),
  mode: z.enum(['whole-host', 'slots']),
  gpus: z.number().int(),
  free: z.number().int(),
  used: z.number().int(),
  running: z.array(z.string()),
});

export const queueRoutes = routePlugin(
  'berth-queue-routes',
  ['store', 'placement', 'workers'],
  async (app, { store, placement, workers }) => {
    app.get(
      '/v1/queue',
      {
        schema: {
          tags: ['queue'],
          operationId: 'getQueue',
          summary: 'Counts by state, the waiting jobs in the order they will start, and free/used GPUs per worker',
          querystring: z.strictObject({ limit: z.coerce.number().int().min(1).max(1000).default(100) }),
          response: {
            200: z.object({
              counts: z.record(JobState, z.number().int()),
              waiting: z.array(WaitingJob),
              workers: z.array(WorkerSummary),
            }),
            503: ErrorResponse,
          },
        },
      },
      async (request) => {
        const [counts, view] = await Promise.all([store.counts(), queuePlaces(placement, workers)]);
        const caller = request.caller;
        const mine = await visibleJobs(
          store,
          caller,
          view.workers.flatMap((w) => w.running),
        );
        // Counts and GPU use are everyone's; job ids only the caller's (their place still counts the others).
        const waiting = view.queued
          .filter((q) => canSee(caller, q.user))
          .slice(0, request.query.limit)
          .map((q) => ({ id: q.id, gpus: q.gpus, ...view.places.get(q.id)! }));
        const shown = view.workers.map((w) => ({ ...w, running: w.running.filter((id) => mine.has(id)) }));
        return { counts, waiting, workers: shown };
      },
    );

    app.get(
      '/v1/workers',
      {
        schema: {
          tags: ['queue'],
          operationId: 'listWorkers',
          summary: 'Every worker: host, mode, GPUs and who holds them, versions, last heartbeat, live or lost',
          response: { 200: z.object({ workers: z.array(WorkerInfo) }), 503: ErrorResponse },
        },
      },
      async (request) => {
        const all = await workers.list();
        const mine = await visibleJobs(
          store,
          request.caller,
          all.flatMap((w) => [...w.running, ...w.gpus.flatMap((g) => (g.job ? [g.job] : []))]),
        );
        // Which GPUs are busy is everyone's to see; which job holds one or runs there, only its owner's.
        return {
          workers: all.map((w) => ({
            ...w,
            gpus: w.gpus.map(({ job, ...g }) => (job && mine.has(job) ? { ...g, job } : g)),
            running: w.running.filter((id) => mine.has(id)),
          })),
        };
      },
    );
  },
);

/** The ids among these that the caller may see. */
async function visibleJobs(store: JobStore, caller: Caller, ids: string[]): Promise<Set<string>> {
  if (caller.user.role === 'admin') return new Set(ids);
  const owners = await store.ownersOf(ids);
  return new Set(ids.filter((_, i) => owners[i] !== null && canSee(caller, owners[i]!)));
}
