// bull-board at /admin/queues over berth's own job store, on real Redis: counts and jobs map from berth's states
// (queued → waiting, cancelled → failed…), pages come newest first, logs come from the log stream, every action is
// refused, the JSON API answers admins only (no token 401, a member 403), and in a real browser (Debian's Chromium)
// an admin signed in to the dashboard sees the board while a member sees why not.
import type { JobRecord } from '@berth/contracts';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { BerthQueueAdapter, boardBasePath } from '../apps/api/src/admin/bull-board.js';
import { buildServices, type Services } from '../apps/api/src/services.js';
import { fixtureJob, startTestStack, submit, testApiConfig, type TestClient, type TestStack } from './support/stack.js';

let stack: TestStack;
let services: Services;
/** Alice's jobs, oldest first: two left queued, the middle one cancelled. */
let jobs: JobRecord[];
let queuedIds: string[];
let cancelledId: string;

const api = `${boardBasePath}/api`;

interface BoardJob {
  id: string;
  name: string;
  timestamp: number;
  finishedOn?: number | null;
  progress: unknown;
  attempts: number;
  failedReason?: string;
  isFailed: boolean;
  data: { manifest: string; params: { command: string[] } };
  returnValue: unknown;
  opts: { state: string; owner: string };
}
interface BoardQueue {
  name: string;
  counts: Record<string, number>;
  jobs: BoardJob[];
  statuses: string[];
  pagination: { pageCount: number; range: { start: number; end: number } };
  readOnlyMode: boolean;
  allowRetries: boolean;
  isPaused: boolean;
}

async function queues(query: string, client: TestClient = stack.admin): Promise<BoardQueue> {
  const res = await client.fetch(`${api}/queues?activeQueue=berth&${query}`);
  expect(res.status).toBe(200);
  const body = (await res.json()) as { queues: BoardQueue[] };
  expect(body.queues.map((q) => q.name)).toEqual(['berth']);
  return body.queues[0]!;
}

beforeAll(async () => {
  stack = await startTestStack('bull-board', { worker: false });
  // The API's own services on the same Redis and prefix: to write log lines as a worker would.
  services = buildServices(testApiConfig(stack.prefix));
  jobs = [];
  for (const command of [
    ['echo', 'one'],
    ['echo', 'two'],
    ['echo', 'three'],
  ]) {
    const { status, body } = await submit(stack.alice, fixtureJob(command));
    expect(status).toBe(201);
    jobs.push(body);
  }
  cancelledId = jobs[1]!.id;
  expect((await stack.alice.fetch(`/v1/jobs/${cancelledId}/cancel`, { method: 'POST' })).status).toBe(200);
  queuedIds = [jobs[2]!.id, jobs[0]!.id];
  const time = new Date().toISOString();
  await services.logs.append(jobs[0]!.id, 1, [
    { stream: 'stdout', time, lines: ['epoch 1 loss 0.5'] },
    { stream: 'stderr', time, lines: ['a warning'] },
  ]);
}, 60_000);

afterAll(async () => {
  await services?.close();
  await stack?.close();
});

test('counts: queued jobs are waiting, a cancelled one failed, the rest zero; read-only, never paused', async () => {
  const q = await queues('status=latest');
  expect(q.counts).toMatchObject({ waiting: 2, failed: 1, active: 0, completed: 0, delayed: 0, paused: 0 });
  expect(q.statuses).toEqual(['latest', 'active', 'waiting', 'completed', 'failed']);
  expect(q).toMatchObject({ readOnlyMode: true, allowRetries: false, isPaused: false });
  // "latest": every status's newest, all together newest first.
  expect(q.jobs.map((j) => j.id)).toEqual([jobs[2]!.id, cancelledId, jobs[0]!.id]);
});

test('waiting jobs: newest first, as berth recorded them, one page at a time', async () => {
  const q = await queues('status=waiting&page=1&jobsPerPage=10');
  expect(q.jobs.map((j) => j.id)).toEqual(queuedIds);
  const newest = q.jobs[0]!;
  expect(newest).toMatchObject({
    name: 'custom',
    timestamp: Date.parse(jobs[2]!.createdAt),
    progress: 'queued',
    attempts: 0,
    isFailed: false,
    returnValue: null,
    data: { manifest: 'custom', params: { command: ['echo', 'three'] } },
    opts: { state: 'queued', owner: stack.alice.user.id },
  });
  expect(newest.finishedOn ?? null).toBeNull();

  const page1 = await queues('status=waiting&page=1&jobsPerPage=1');
  const page2 = await queues('status=waiting&page=2&jobsPerPage=1');
  expect(page1.pagination.pageCount).toBe(2);
  expect([page1.jobs.map((j) => j.id), page2.jobs.map((j) => j.id)]).toEqual([[queuedIds[0]], [queuedIds[1]]]);
  expect((await queues('status=waiting&page=3&jobsPerPage=1')).jobs).toEqual([]);
});

test('a cancelled job is failed, with berth’s reason and message', async () => {
  const q = await queues('status=failed');
  expect(q.jobs.map((j) => j.id)).toEqual([cancelledId]);
  const job = q.jobs[0]!;
  expect(job).toMatchObject({
    isFailed: true,
    failedReason: 'CANCELLED: cancelled by request while queued',
    progress: 'cancelled',
    opts: { state: 'cancelled' },
  });
  expect(job.finishedOn).toBeGreaterThanOrEqual(job.timestamp);
  expect((await queues('status=active')).jobs).toEqual([]);
  expect((await queues('status=completed')).jobs).toEqual([]);
});

test('one job, and its log from the log stream', async () => {
  const res = await stack.admin.fetch(`${api}/queues/berth/${cancelledId}`);
  expect(res.status).toBe(200);
  expect(await res.json()).toMatchObject({ status: 'failed', job: { id: cancelledId, name: 'custom' } });
  for (const missing of ['job_aaaaaaaaaaaaaaaaaaaa', 'nope']) {
    expect((await stack.admin.fetch(`${api}/queues/berth/${missing}`)).status).toBe(404);
  }
  const logs = await stack.admin.fetch(`${api}/queues/berth/${jobs[0]!.id}/logs`);
  expect(logs.status).toBe(200);
  expect(await logs.json()).toEqual(['[attempt 1] epoch 1 loss 0.5', '[attempt 1, stderr] a warning']);
  expect(await (await stack.admin.fetch(`${api}/queues/berth/${cancelledId}/logs`)).json()).toEqual([]);
});

test('every action is refused and changes nothing: the queue is managed through /v1', async () => {
  const queued = queuedIds[0]!;
  for (const [method, path] of [
    ['PUT', `/queues/berth/${queued}/retry`],
    ['PUT', `/queues/berth/${queued}/promote`],
    ['PUT', `/queues/berth/${queued}/clean`],
    ['PUT', `/queues/berth/retry/failed`],
    ['PUT', `/queues/berth/clean/waiting`],
    ['PUT', `/queues/berth/pause`],
    ['PUT', `/queues/berth/empty`],
    ['PUT', `/queues/berth/obliterate`],
    ['POST', `/queues/berth/add`],
  ] as const) {
    const res = await stack.admin.fetch(`${api}${path}`, {
      method,
      headers: { 'content-type': 'application/json' },
      body: method === 'POST' ? JSON.stringify({ name: 'x', data: {}, options: {} }) : '{}',
    });
    expect({ path, status: res.status }).toEqual({ path, status: 405 });
  }
  // Pausing everything skips read-only queues.
  expect((await stack.admin.fetch(`${api}/queues/pause`, { method: 'PUT' })).status).toBe(200);
  const q = await queues('status=latest');
  expect(q.counts).toMatchObject({ waiting: 2, failed: 1 });
  expect(q.isPaused).toBe(false);

  // Behind the board's own read-only check, the adapter refuses too.
  const adapter = new BerthQueueAdapter(services);
  const job = await adapter.getJob(queued);
  for (const action of [() => job!.retry(), () => job!.remove(), () => job!.promote(), () => adapter.pause()]) {
    await expect(action()).rejects.toThrow(/read-only on this board.*\/v1/);
  }
  expect((await stack.admin.fetch(`/v1/jobs/${queued}`)).status).toBe(200);
  expect(((await (await stack.admin.fetch(`/v1/jobs/${queued}`)).json()) as JobRecord).state).toBe('queued');
});

test('the JSON API: admins only — no token 401, a member or the worker account 403', async () => {
  const worker = { authorization: `Bearer ${stack.workerApi.token}` };
  for (const path of [
    `${api}/queues?activeQueue=berth`,
    `${api}/queues/berth/${cancelledId}`,
    `${api}/queues/berth/${jobs[0]!.id}/logs`,
    `${api}/redis/stats`,
    `${api}/queues/berth/workers`,
  ]) {
    const none = await fetch(`${stack.url}${path}`);
    expect({ path, status: none.status }).toEqual({ path, status: 401 });
    expect(((await none.json()) as { error: { code: string } }).error.code).toBe('UNAUTHENTICATED');
    expect(none.headers.get('www-authenticate')).toContain('Bearer');
    for (const [who, headers] of [
      ['alice', { authorization: `Bearer ${stack.alice.token}` }],
      ['worker', worker],
    ] as const) {
      const res = await fetch(`${stack.url}${path}`, { headers });
      const body = await res.text();
      expect({ path, who, status: res.status }).toEqual({ path, who, status: 403 });
      expect(JSON.parse(body)).toMatchObject({ error: { code: 'FORBIDDEN' } });
      expect(body).not.toContain(cancelledId);
    }
    const admin = await stack.admin.fetch(path);
    expect({ path, status: admin.status }).toEqual({ path, status: 200 });
    expect(admin.headers.get('cache-control')).toBe('private, no-store');
  }
  // The route table says so too (the isolation matrix reads it).
  const rules = stack.app.routeRules.filter((r) => r.url.startsWith(`${api}/`));
  expect(rules.length).toBeGreaterThan(20);
  expect(rules.filter((r) => r.access !== 'admin')).toEqual([]);
});

test('the page shell and its assets are public and hold no job data; the shell carries the token script', async () => {
  for (const path of [
    boardBasePath,
    `${boardBasePath}/`,
    `${boardBasePath}/queue/berth`,
    `${boardBasePath}/queue/berth/${cancelledId}`,
  ]) {
    const res = await fetch(`${stack.url}${path}`);
    expect({ path, status: res.status }).toEqual({ path, status: 200 });
    expect(res.headers.get('content-type')).toContain('text/html');
    const html = await res.text();
    expect(html).toContain('localStorage.getItem("berth.token")');
    expect(html.indexOf('berth.token')).toBeLessThan(html.indexOf('__UI_CONFIG__'));
    for (const j of jobs) if (!path.includes(j.id)) expect(html).not.toContain(j.id);
    expect(html).not.toContain('echo');
  }
  const html = await (await fetch(`${stack.url}${boardBasePath}`)).text();
  const script = /src="(static\/js\/main\.[^"]+\.js)"/.exec(html)?.[1];
  expect(script).toBeDefined();
  const asset = await fetch(`${stack.url}${boardBasePath}/${script}`);
  expect(asset.status).toBe(200);
  expect(asset.headers.get('content-type')).toContain('javascript');
  // Nothing else under the base path is public.
  const publicRules = stack.app.routeRules.filter((r) => r.url.startsWith(boardBasePath) && r.access === 'public');
  expect([...new Set(publicRules.map((r) => r.url))].sort()).toEqual(
    [
      boardBasePath,
      `${boardBasePath}/`,
      `${boardBasePath}/job-schedulers`,
      `${boardBasePath}/metrics-history`,
      `${boardBasePath}/queue/:queueName`,
      `${boardBasePath}/queue/:queueName/:jobId`,
      `${boardBasePath}/static/*`,
    ].sort(),
  );
});

describe('in a browser', () => {
  let browser: Browser;
  beforeAll(async () => {
    mkdirSync(join(__dirname, 'output'), { recursive: true });
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu'] });
  }, 60_000);
  afterAll(async () => browser?.close());

  /** Opens the board's failed tab with this token in the dashboard's localStorage (none: signed out). */
  async function open(token: string | undefined) {
    const context = await browser.newContext();
    if (token) await context.addInitScript((t) => localStorage.setItem('berth.token', t), token);
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(err.message));
    const statuses: number[] = [];
    page.on('response', (res) => {
      if (res.url().includes(`${api}/`)) statuses.push(res.status());
    });
    await page.goto(`${stack.url}${boardBasePath}/queue/berth?status=failed`);
    return { context, page, errors, statuses };
  }

  test("an admin signed in to the dashboard sees berth's jobs", async () => {
    const { context, page, errors, statuses } = await open(stack.admin.token);
    await page.getByText(cancelledId.slice(0, 12), { exact: false }).first().waitFor({ timeout: 20_000 });
    await expect(page.getByText('CANCELLED: cancelled by request while queued').first().isVisible()).resolves.toBe(
      true,
    );
    expect(await page.locator('#berth-auth').count()).toBe(0);
    await page.screenshot({ path: join(__dirname, 'output', 'bull-board-admin.png'), fullPage: true });
    expect(statuses.length).toBeGreaterThan(0);
    expect(statuses.filter((s) => s === 401 || s === 403)).toEqual([]);
    expect(errors).toEqual([]);
    await context.close();
  }, 60_000);

  test('a member sees why not, and no job', async () => {
    const { context, page } = await open(stack.alice.token);
    await page.locator('#berth-auth', { hasText: 'Admins only' }).waitFor({ timeout: 20_000 });
    await page.screenshot({ path: join(__dirname, 'output', 'bull-board-member.png'), fullPage: true });
    expect(await page.content()).not.toContain(cancelledId);
    await context.close();
  }, 60_000);

  test('signed out: a notice pointing to the dashboard sign-in', async () => {
    const { context, page } = await open(undefined);
    const notice = page.locator('#berth-auth');
    await notice.waitFor({ timeout: 20_000 });
    expect(await notice.textContent()).toContain('needs an admin signed in');
    expect(await notice.locator('a').getAttribute('href')).toBe('/');
    expect(await page.content()).not.toContain(cancelledId);
    await context.close();
  }, 60_000);
});
