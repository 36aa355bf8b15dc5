// bull-board at /admin/queues: a read-only view of berth's own queue (no BullMQ behind it), for admins only.
//
// How a browser gets in: the board's HTML shell and its bundled scripts and styles are public — they are the same
// for everyone and hold no job data, like the dashboard's own files at /. Every JSON route under
// /admin/queues/api/ is admin-only through berth's usual bearer auth (no token 401, a member 403). bull-board's UI
// calls that API with XHR and no header, so the shell is served with one small inline script that adds
// `Authorization: Bearer <token>` to requests for the board's own API, taking the token the berth dashboard keeps
// in this origin's localStorage when someone signs in at /. So an admin signed in to the dashboard opens
// /admin/queues and sees the board; anyone else sees the board's empty frame, and a notice saying why. No cookie
// is introduced (nothing a cross-site request could ride on), and the token never appears in a URL.
import { BerthError, JobId, jobStates, terminalStates, linesOf, type JobRecord, type JobState } from '@berth/contracts';
import { createBullBoard } from '@bull-board/api';
import { BaseAdapter } from '@bull-board/api/dist/queueAdapters/base.js';
import type {
  AppJobScheduler,
  ControllerHandlerReturnType,
  HTTPStatus,
  JobCounts,
  JobState as BoardJobState,
  JobStatus,
  QueueJob,
  QueueJobJson,
  QueueMetrics,
  QueueWorker,
  Status,
} from '@bull-board/api/typings/app';
import { FastifyAdapter } from '@bull-board/fastify';
import type { FastifyError, FastifyInstance } from 'fastify';
import type { Access } from '../auth/auth.js';
import { toBerthError } from '../plugins/errors.js';
import type { Services } from '../services.js';

export const boardBasePath = '/admin/queues';

/** What the board calls berth's queue (its name in the board's URLs). */
export const boardQueueName = 'berth';

/** Log lines the board shows for a job: the newest ones. */
const logTailLines = 1000;

const readOnlyMessage =
  "berth's queue is read-only on this board: submit, cancel and inspect jobs through /v1 (POST /v1/jobs, POST /v1/jobs/:id/cancel)";

const readOnly = (): BerthError => new BerthError('FORBIDDEN', readOnlyMessage);

/** The board's status for each berth state. */
const boardStatusOf: Record<JobState, JobStatus> = {
  queued: 'waiting',
  pulling: 'active',
  starting: 'active',
  running: 'active',
  uploading: 'active',
  succeeded: 'completed',
  failed: 'failed',
  cancelled: 'failed',
};

/** The board statuses berth has, in the order its tabs show them. */
const jobStatuses: JobStatus[] = ['active', 'waiting', 'completed', 'failed'];

const berthStatesOf = (status: JobStatus): JobState[] => jobStates.filter((s) => boardStatusOf[s] === status);

const time = (iso: string | undefined): number | null => (iso ? Date.parse(iso) : null);

/** One berth job as the board shows it. Read-only: the board's actions on it are refused. */
export class BerthBoardJob implements QueueJob {
  readonly opts: QueueJob['opts'] & Record<string, unknown>;

  constructor(readonly record: JobRecord) {
    // What the board shows under Options: the exact berth state (the board's statuses merge several) and the
    // job's attempts, each with where it ran and how it ended.
    this.opts = {
      state: record.state,
      owner: record.owner,
      attempt: record.attempt,
      attempts: record.attempts,
      ...(record.worker ? { worker: record.worker } : {}),
      ...(record.exitCode !== undefined ? { exitCode: record.exitCode } : {}),
    };
  }

  async promote(): Promise<void> {
    throw readOnly();
  }

  async remove(): Promise<void> {
    throw readOnly();
  }

  async retry(): Promise<void> {
    throw readOnly();
  }

  async getState(): Promise<BoardJobState> {
    return boardStatusOf[this.record.state];
  }

  toJSON(): QueueJobJson {
    const r = this.record;
    const last = r.attempts.at(-1);
    return {
      id: r.id,
      name: r.spec.manifest,
      timestamp: Date.parse(r.createdAt),
      processedOn: time(last?.startedAt),
      processedBy: last?.worker ?? r.worker ?? null,
      finishedOn: terminalStates.has(r.state) ? time(r.finishedAt) : null,
      // The berth state as progress: the board's `active` covers pulling, starting, running and uploading.
      progress: r.state,
      attemptsMade: r.attempts.filter((a) => a.finishedAt !== undefined).length,
      attemptsStarted: r.attempts.length,
      // The latest outcome's reason: on a failed or cancelled job why it ended, on a queued one why it is retried.
      failedReason: r.reason ? (r.message ? `${r.reason}: ${r.message}` : r.reason) : '',
      stacktrace: [],
      data: r.spec,
      returnvalue: r.summary ?? null,
      opts: this.opts,
    };
  }
}

/**
 * berth's job store as one bull-board queue. Placement is berth's own (a Redis script over its own indexes), so
 * this reads the store and never writes: every action the board offers is refused with a pointer to /v1.
 */
export class BerthQueueAdapter extends BaseAdapter {
  constructor(private readonly services: Services) {
    super('bull', {
      readOnlyMode: true,
      displayName: 'berth jobs',
      description: 'Every berth job, read-only; submit and cancel through /v1',
    });
  }

  getName(): string {
    return boardQueueName;
  }

  getStatuses(): Status[] {
    return ['latest', ...jobStatuses];
  }

  getJobStatuses(): JobStatus[] {
    return [...jobStatuses];
  }

  async getJobCounts(): Promise<JobCounts> {
    const byState = await this.services.call(() => this.services.store.counts());
    const counts: Record<JobStatus, number> = {
      active: 0,
      waiting: 0,
      'waiting-children': 0,
      prioritized: 0,
      completed: 0,
      failed: 0,
      delayed: 0,
      paused: 0,
    };
    for (const state of jobStates) counts[boardStatusOf[state]] += byState[state];
    return counts;
  }

  /**
   * Newest first. For one status, jobs `start`..`end` of all its berth states together; for several (the board's
   * "latest"), that range of each, as BullMQ answers, merged newest first.
   */
  async getJobs(statuses: JobStatus[], start = 0, end = start + 9): Promise<QueueJob[]> {
    const wanted = statuses.filter((s) => jobStatuses.includes(s));
    const pages = await this.services.call(() =>
      Promise.all(wanted.map((s) => this.services.store.newestInStates(berthStatesOf(s), start, end))),
    );
    const records = pages.flat();
    if (pages.length > 1) records.sort((a, b) => b.createdAt.localeCompare(a.createdAt));
    return records.map((r) => new BerthBoardJob(r));
  }

  async getJob(id: string): Promise<QueueJob | null> {
    if (!JobId.safeParse(id).success) return null;
    const record = await this.services.call(() => this.services.store.get(id));
    return record ? new BerthBoardJob(record) : null;
  }

  async getJobLogs(id: string): Promise<string[]> {
    if (!JobId.safeParse(id).success) return [];
    const entries = await this.services.call(() => this.services.logs.tail(id, logTailLines));
    return linesOf(entries).map((l) => `[attempt ${l.attempt}${l.stream === 'stderr' ? ', stderr' : ''}] ${l.text}`);
  }

  async getRedisInfo(): Promise<string> {
    return this.services.call(() => this.services.redis.info());
  }

  /** berth's workers, as the board lists a queue's consumers. */
  override async getWorkers(): Promise<QueueWorker[]> {
    const workers = await this.services.call(() => this.services.workers.list(this.services.lostAfterMs));
    const now = Date.now();
    return workers
      .filter((w) => w.status === 'live')
      .map((w) => ({
        id: w.id,
        name: w.id,
        addr: w.host,
        age: Math.max(0, Math.round((now - Date.parse(w.startedAt)) / 1000)),
      }));
  }

  async getMetrics(): Promise<QueueMetrics> {
    throw new BerthError('NOT_FOUND', 'berth keeps no per-minute queue metrics; GET /metrics has its Prometheus ones');
  }

  // berth has no pause, no schedulers and no queue-wide concurrency: these read as such.
  async isPaused(): Promise<boolean> {
    return false;
  }

  async getJobSchedulers(): Promise<Omit<AppJobScheduler, 'queueName'>[]> {
    return [];
  }

  async getJobSchedulersCount(): Promise<number> {
    return 0;
  }

  async getGlobalConcurrency(): Promise<number | null> {
    return null;
  }

  // Every change is refused: the queue is managed through /v1.
  async clean(): Promise<void> {
    throw readOnly();
  }

  async addJob(): Promise<QueueJob> {
    throw readOnly();
  }

  async pause(): Promise<void> {
    throw readOnly();
  }

  async resume(): Promise<void> {
    throw readOnly();
  }

  async empty(): Promise<void> {
    throw readOnly();
  }

  async obliterate(): Promise<void> {
    throw readOnly();
  }

  async promoteAll(): Promise<void> {
    throw readOnly();
  }

  async removeJobScheduler(): Promise<boolean> {
    throw readOnly();
  }

  async updateJobScheduler(): Promise<never> {
    throw readOnly();
  }

  async runJobSchedulerNow(): Promise<never> {
    throw readOnly();
  }

  async setGlobalConcurrency(): Promise<void> {
    throw readOnly();
  }
}

/** The board's page routes (the UI routes itself from these), relative to the base path: the same HTML for all. */
const shellRoutes = new Set([
  '',
  '/',
  '/metrics-history',
  '/job-schedulers',
  '/queue/:queueName',
  '/queue/:queueName/:jobId',
]);

/** Who may call a board route: its page shell and bundled assets anyone, everything else (its API) admins. */
export function boardAccess(url: string): Access {
  if (!url.startsWith(boardBasePath)) return 'admin';
  const rest = url.slice(boardBasePath.length);
  return shellRoutes.has(rest) || rest.startsWith('/static/') ? 'public' : 'admin';
}

/** localStorage key the berth dashboard (apps/web) keeps its token under. */
const dashboardTokenKey = 'berth.token';

// Runs before the board's own (deferred) scripts: its API requests, and only those, carry the dashboard's token.
const authScript = `<script>
(() => {
  const token = localStorage.getItem(${JSON.stringify(dashboardTokenKey)});
  const api = new URL('api/', document.baseURI);
  const ours = (u) => {
    const url = new URL(String(u), document.baseURI);
    return url.origin === api.origin && url.pathname.startsWith(api.pathname);
  };
  const notice = (text) => {
    const show = () => {
      let el = document.getElementById('berth-auth');
      if (!el) {
        el = document.createElement('div');
        el.id = 'berth-auth';
        el.setAttribute('role', 'alert');
        el.style.cssText = 'position:fixed;top:0;left:0;right:0;z-index:2147483647;padding:.6rem 1rem;' +
          'background:#7f1d1d;color:#fff;font:14px/1.4 sans-serif';
        document.body.append(el);
      }
      const link = document.createElement('a');
      link.href = '/';
      link.textContent = 'Sign in to berth';
      link.style.color = '#fff';
      el.replaceChildren(text + ' ', link);
    };
    if (document.body) show();
    else addEventListener('DOMContentLoaded', show);
  };
  if (!token) notice('The queue board needs an admin signed in to the berth dashboard in this browser.');
  const refused = (status, body) => {
    if (status !== 401 && status !== 403) return;
    let message = '';
    try { message = JSON.parse(body).error.message; } catch {}
    notice((status === 401 ? 'Not signed in: ' : 'Admins only: ') + message);
  };
  const open = XMLHttpRequest.prototype.open;
  XMLHttpRequest.prototype.open = function (method, url, ...rest) {
    open.call(this, method, url, ...rest);
    if (token && ours(url)) {
      this.setRequestHeader('Authorization', 'Bearer ' + token);
      this.addEventListener('load', () => refused(this.status, this.responseText));
    }
  };
  const fetch0 = window.fetch.bind(window);
  window.fetch = async (input, init = {}) => {
    const url = input instanceof Request ? input.url : input;
    if (!token || !ours(url)) return fetch0(input, init);
    const headers = new Headers(init.headers ?? (input instanceof Request ? input.headers : undefined));
    headers.set('Authorization', 'Bearer ' + token);
    const res = await fetch0(input, { ...init, headers });
    if (res.status === 401 || res.status === 403) refused(res.status, await res.clone().text());
    return res;
  };
})();
</script>`;

/** Where the script goes in the board's page: before its config and bundles. */
const scriptAnchor = '<script id="__UI_CONFIG__"';

/** Mounts the board at /admin/queues: its API for admins only, its page shell public (see the top of this file). */
export async function mountBullBoard(app: FastifyInstance, services: Services): Promise<void> {
  const serverAdapter = new FastifyAdapter();
  serverAdapter.setBasePath(boardBasePath);
  createBullBoard({
    queues: [new BerthQueueAdapter(services)],
    serverAdapter,
    options: {
      uiConfig: {
        boardTitle: 'berth queue',
        miscLinks: [{ text: 'berth dashboard', url: '/' }],
        showMetrics: false,
      },
    },
  });
  // berth's error bodies and statuses (401 from the auth hook, 503 when Redis is away), not bull-board's; a 5xx
  // says no more than berth's own handler would.
  serverAdapter.setErrorHandler((err): ControllerHandlerReturnType => {
    const e = toBerthError(err as FastifyError);
    if (e.code === 'INTERNAL') app.log.error({ err }, 'queue board request failed');
    return { status: e.status as HTTPStatus, body: e.toBody() };
  });

  await app.register(async (board) => {
    // The auth hook (installed on the root, so it runs first) filed each route with the default rule; the board's
    // routes get theirs here, in the route and in the rule table the isolation tests read.
    board.addHook('onRoute', (route) => {
      const url = route.url ?? '';
      const access = boardAccess(url);
      route.config = { ...route.config, access };
      const methods: string[] = [route.method].flat();
      for (const rule of app.routeRules) if (rule.url === url && methods.includes(rule.method)) rule.access = access;
    });
    // The auth hook's 401 goes through the board's error handler, which cannot set headers.
    board.addHook('onSend', async (request, reply, payload) => {
      if (reply.statusCode === 401) reply.header('www-authenticate', 'Bearer realm="berth"');
      const shell = shellRoutes.has((request.routeOptions.url ?? '').slice(boardBasePath.length));
      if (!shell || typeof payload !== 'string' || !payload.includes(scriptAnchor)) return payload;
      return payload.replace(scriptAnchor, `${authScript}\n${scriptAnchor}`);
    });
    await board.register(serverAdapter.registerPlugin(), { prefix: boardBasePath });
  });
}
