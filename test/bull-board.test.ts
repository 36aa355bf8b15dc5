// bull-board at /admin/queues with BullMQ's own adapter on berth's queues, on real Redis: every gpus-<n> queue is
// listed read-only, a waiting job shows as BullMQ holds it, a cancelled one is gone from BullMQ (not failed), every
// action is refused, the JSON API answers admins only (no token 401, a member 403), and in a real browser
// (Debian's Chromium) an admin signed in to the dashboard sees the board while a member sees why not.
import type { JobRecord } from '@berth/contracts';
import { bullJobId } from '@berth/store';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { boardBasePath } from '../apps/api/src/admin/bull-board.js';
import { launchChromium } from './support/browser.js';
import { fixtureJob, startTestStack, submit, type TestClient, type TestStack } from './support/stack.js';

let stack: TestStack;
/** Alice's jobs, oldest first: two left waiting, the middle one cancelled. */
let jobs: JobRecord[];
/** The BullMQ ids of the waiting ones. */
let waitingIds: string[];
let cancelledId: string;

const api = `${boardBasePath}/api`;

interface BoardJob {
  id: string;
  name: string;
  data: unknown;
  opts: { priority?: number };
}
interface BoardQueue {
  name: string;
  displayName?: string;
  counts: Record<string, number>;
  jobs: BoardJob[];
  readOnlyMode: boolean;
  isPaused: boolean;
}

async function queues(query: string, client: TestClient = stack.admin): Promise<BoardQueue[]> {
  const res = await client.fetch(`${api}/queues?activeQueue=gpus-0&${query}`);
  expect(res.status).toBe(200);
  return ((await res.json()) as { queues: BoardQueue[] }).queues;
}

const cpuQueue = async (query: string) => (await queues(query)).find((q) => q.name === 'gpus-0')!;

beforeAll(async () => {
  stack = await startTestStack('bull-board', { worker: false });
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
  waitingIds = [jobs[0]!.id, jobs[2]!.id].map((id) => bullJobId(id, 1));
}, 60_000);

afterAll(async () => {
  await stack?.close();
});

test('every berth queue is on the board, read-only; a cancelled waiting job is gone from BullMQ, not failed', async () => {
  const all = await queues('status=latest');
  expect(all.map((q) => q.name)).toEqual(Array.from({ length: 9 }, (_, n) => `gpus-${n}`));
  expect(all.every((q) => q.readOnlyMode && !q.isPaused)).toBe(true);
  const cpu = all.find((q) => q.name === 'gpus-0')!;
  expect(cpu.displayName).toBe('CPU jobs (gpus-0)');
  expect(cpu.counts).toMatchObject({ prioritized: 2, failed: 0, completed: 0, active: 0, waiting: 0 });
  expect(cpu.jobs.map((j) => j.id).sort()).toEqual([...waitingIds].sort());
});

test('a waiting job as BullMQ holds it: its attempt, GPUs and priority', async () => {
  const cpu = await cpuQueue('status=prioritized&page=1&jobsPerPage=10');
  const first = cpu.jobs.find((j) => j.id === waitingIds[0])!;
  expect(first).toMatchObject({ name: 'attempt', data: { id: jobs[0]!.id, attempt: 1, gpus: 0, priority: 2 } });
  expect(first.opts.priority).toBe(2);
  const one = await stack.admin.fetch(`${api}/queues/gpus-0/${waitingIds[0]}`);
  expect(one.status).toBe(200);
  expect(await one.json()).toMatchObject({ job: { id: waitingIds[0] } });
  expect((await stack.admin.fetch(`${api}/queues/gpus-0/${bullJobId(cancelledId, 1)}`)).status).toBe(404);
});

test('every action is refused and changes nothing: the queues are managed through /v1', async () => {
  const waiting = waitingIds[0]!;
  for (const [method, path] of [
    ['PUT', `/queues/gpus-0/${waiting}/retry`],
    ['PUT', `/queues/gpus-0/${waiting}/promote`],
    ['PUT', `/queues/gpus-0/${waiting}/clean`],
    ['PUT', `/queues/gpus-0/retry/failed`],
    ['PUT', `/queues/gpus-0/clean/waiting`],
    ['PUT', `/queues/gpus-0/pause`],
    ['PUT', `/queues/gpus-0/empty`],
    ['PUT', `/queues/gpus-0/obliterate`],
    ['POST', `/queues/gpus-0/add`],
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
  const cpu = await cpuQueue('status=latest');
  expect(cpu.counts).toMatchObject({ prioritized: 2 });
  expect(cpu.isPaused).toBe(false);
  expect(((await (await stack.admin.fetch(`/v1/jobs/${jobs[0]!.id}`)).json()) as JobRecord).state).toBe('queued');
});

test('the JSON API: admins only — no token 401, a member or the worker account 403', async () => {
  const worker = { authorization: `Bearer ${stack.workerApi.token}` };
  for (const path of [
    `${api}/queues?activeQueue=gpus-0`,
    `${api}/queues/gpus-0/${waitingIds[0]}`,
    `${api}/queues/gpus-0/${waitingIds[0]}/logs`,
    `${api}/redis/stats`,
    `${api}/queues/gpus-0/workers`,
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
      expect(body).not.toContain(jobs[0]!.id);
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
    `${boardBasePath}/queue/gpus-0`,
    `${boardBasePath}/queue/gpus-0/${waitingIds[0]}`,
  ]) {
    const res = await fetch(`${stack.url}${path}`);
    expect({ path, status: res.status }).toEqual({ path, status: 200 });
    expect(res.headers.get('content-type')).toContain('text/html');
    const html = await res.text();
    expect(html).toContain('localStorage.getItem("berth.token")');
    expect(html.indexOf('berth.token')).toBeLessThan(html.indexOf('__UI_CONFIG__'));
    for (const j of jobs) if (!path.includes(j.id)) expect(html).not.toContain(j.id);
    expect(html).not.toContain('echo');
    // It loads nothing from another host (bull-board's own shell asks fonts.googleapis.com for its fonts).
    expect(html).not.toMatch(/(href|src)="https?:\/\//);
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
    browser = await launchChromium();
  }, 60_000);
  afterAll(async () => browser?.close());

  /** Opens the CPU queue's prioritized tab with this token in the dashboard's localStorage (none: signed out). */
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
    await page.goto(`${stack.url}${boardBasePath}/queue/gpus-0?status=prioritized`);
    return { context, page, errors, statuses };
  }

  test("an admin signed in to the dashboard sees berth's jobs", async () => {
    const { context, page, errors, statuses } = await open(stack.admin.token);
    await page.getByText(jobs[0]!.id.slice(0, 12), { exact: false }).first().waitFor({ timeout: 20_000 });
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
    expect(await page.content()).not.toContain(jobs[0]!.id);
    await context.close();
  }, 60_000);

  test('signed out: a notice pointing to the dashboard sign-in', async () => {
    const { context, page } = await open(undefined);
    const notice = page.locator('#berth-auth');
    await notice.waitFor({ timeout: 20_000 });
    expect(await notice.textContent()).toContain('needs an admin signed in');
    expect(await notice.locator('a').getAttribute('href')).toBe('/');
    expect(await page.content()).not.toContain(jobs[0]!.id);
    await context.close();
  }, 60_000);
});
