// bull-board at /admin/queues: BullMQ's own adapter on every berth queue (gpus-<n>), read-only, for admins only.
//
// How a browser gets in: the board's HTML shell and its bundled scripts and styles are public — they are the same
// for everyone and hold no job data, like the dashboard's own files at /. Every JSON route under
// /admin/queues/api/ is admin-only through berth's usual bearer auth (no token 401, a member 403). bull-board's UI
// calls that API with XHR and no header, so the shell is served with one small inline script that adds
// `Authorization: Bearer <token>` to requests for the board's own API, taking the token the berth dashboard keeps
// in this origin's localStorage when someone signs in at /. So an admin signed in to the dashboard opens
// /admin/queues and sees the board; anyone else sees the board's empty frame, and a notice saying why. No cookie
// is introduced (nothing a cross-site request could ride on), and the token never appears in a URL.
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { JobQueues, Redis } from '@berth/store';
import type { FastifyError } from 'fastify';
import type { Access } from '../auth/auth.js';
import { toBerthError } from '../plugins/errors.js';
import { routePlugin } from '../routes/route-plugin.js';

export const boardBasePath = '/admin/queues';

/**
 * What the board's error handler answers, read off the adapter's public setErrorHandler: the packages' entry points
 * do not export the type, and the path that does (`@bull-board/api/typings/app`) re-exports bull-board's dist/.
 */
type BoardErrorReply = ReturnType<Parameters<FastifyAdapter['setErrorHandler']>[0]>;

/** The GPU demands whose queues the board always shows: CPU jobs and one to eight GPUs. */
const shownDemands = 9;

/**
 * Every berth queue: gpus-0 … gpus-8, and any larger demand that has had a job (its BullMQ event stream exists). A
 * queue first used after start-up shows from the next start.
 */
async function berthQueueDemands(queues: JobQueues, redis: Redis): Promise<number[]> {
  const demands = new Set(Array.from({ length: shownDemands }, (_, n) => n));
  const prefix = queues.prefix;
  let cursor = '0';
  do {
    const [next, found] = await redis.scan(cursor, 'MATCH', `${prefix}:gpus-*:events`, 'COUNT', 1000);
    cursor = next;
    for (const key of found) {
      const n = Number(/:gpus-(\d+):events$/.exec(key)?.[1]);
      if (Number.isInteger(n)) demands.add(n);
    }
  } while (cursor !== '0');
  return [...demands].sort((a, b) => a - b);
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

/** `<link … rel="stylesheet">` tags of the shell that load from another host (its Google Fonts). */
const thirdPartyStylesheets = /<link\s[^>]*href="https?:\/\/[^"]*"[^>]*>\s*/g;

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

/** The board at /admin/queues: its API for admins only, its page shell public (see the top of this file). */
export const bullBoardRoutes = routePlugin(
  'berth-bull-board',
  ['queues', 'redis', 'routeRules'],
  async (app, { queues, redis, routeRules }) => {
    const serverAdapter = new FastifyAdapter();
    serverAdapter.setBasePath(boardBasePath);
    // BullMQ's own adapter on each queue, read-only: jobs are submitted and cancelled through /v1, where berth keeps
    // its record and the queue in step.
    const demands = await berthQueueDemands(queues, redis);
    createBullBoard({
      queues: demands.map(
        (n) =>
          new BullMQAdapter(queues.queue(n), {
            readOnlyMode: true,
            displayName: n === 0 ? 'CPU jobs (gpus-0)' : `jobs needing ${n} GPU${n === 1 ? '' : 's'} (gpus-${n})`,
            description: 'read-only; submit and cancel through /v1',
          }),
      ),
      serverAdapter,
      options: {
        uiConfig: {
          boardTitle: 'berth queues',
          miscLinks: [{ text: 'berth dashboard', url: '/' }],
          showMetrics: false,
        },
      },
    });
    // berth's error bodies and statuses (401 from the auth hook, 503 when Redis is away), not bull-board's; a 5xx
    // says no more than berth's own handler would.
    serverAdapter.setErrorHandler((err): BoardErrorReply => {
      const e = toBerthError(err as FastifyError);
      if (e.code === 'INTERNAL') app.log.error({ err }, 'queue board request failed');
      return { status: e.status as NonNullable<BoardErrorReply['status']>, body: e.toBody() };
    });

    // The auth hook (installed on the root, so it runs first) filed each route with the default rule; the board's
    // routes get theirs here, in the route and in the rule table the isolation tests read.
    app.addHook('onRoute', (route) => {
      const url = route.url ?? '';
      const access = boardAccess(url);
      route.config = { ...route.config, access };
      const methods: string[] = [route.method].flat();
      for (const rule of routeRules) if (rule.url === url && methods.includes(rule.method)) rule.access = access;
    });
    // The auth hook's 401 goes through the board's error handler, which cannot set headers.
    app.addHook('onSend', async (request, reply, payload) => {
      if (reply.statusCode === 401) reply.header('www-authenticate', 'Bearer realm="berth"');
      const shell = shellRoutes.has((request.routeOptions.url ?? '').slice(boardBasePath.length));
      if (!shell || typeof payload !== 'string' || !payload.includes(scriptAnchor)) return payload;
      // The shell asks Google for its fonts: a browser on berth's page would tell a third party who opened it, and
      // an offline install waits on it. The system's fonts stand in.
      return payload.replace(thirdPartyStylesheets, '').replace(scriptAnchor, `${authScript}\n${scriptAnchor}`);
    });
    await app.register(serverAdapter.registerPlugin(), { prefix: boardBasePath });
  },
);
