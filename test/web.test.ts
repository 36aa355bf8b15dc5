// The dashboard in a real browser (Debian's Chromium through playwright-core) against the real API, worker, Redis and
// Docker engine: sign in, submit from the form generated from a recipe's schema, watch the job run live (log line,
// chart point), download its artifact, cancel another job, follow the jobs table live across an expired signed URL,
// upload a dataset, and the same pages on a phone. Screenshots go to test/output/.
import type { JobRecord } from '@berth/contracts';
import Fastify from 'fastify';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { webRoutes } from '../apps/api/src/routes/web.js';
import { NvidiaSmiInventory } from '../apps/worker/src/gpu/inventory.js';
import { GpuTelemetry } from '../apps/worker/src/gpu/telemetry.js';
import { launchChromium, shot, showsText, shownState, signIn as signInAt } from './support/browser.js';
import { fixtureJob, submit, waitForEnd, type TestStack, startTestStack, testApiConfig } from './support/stack.js';

const root = resolve(__dirname, '..');
const h200 = resolve(root, 'test/fixtures/nvidia-smi-h200');
const h200Uuid = 'GPU-e04940e4-4467-8624-647f-1be10c338fe5';
/** Signed URLs live this long here, so the test can watch one expire under an open page. */
const signedUrlTtlSeconds = 4;

let stack: TestStack;
let browser: Browser;
let context: BrowserContext;
let page: Page;
const pageErrors: string[] = [];

beforeAll(async () => {
  // The bundle under test is built from the sources, as `npm run build` builds it.
  execFileSync(process.execPath, [join(root, 'apps/web/build.mjs')], { stdio: 'inherit' });
  // One GPU; nvidia-smi can't run here, so the sampler replays a real H200's answer (as in live-streams.test.ts).
  const smi = join(mkdtempSync(join(tmpdir(), 'berth-web-')), 'nvidia-smi');
  writeFileSync(smi, `#!/bin/sh\ncat '${join(h200, 'nvidia-smi-query.csv')}'\n`);
  chmodSync(smi, 0o755);
  stack = await startTestStack('web', {
    apiConfig: { signedUrlTtlSeconds },
    mode: 'slots',
    gpus: h200Uuid,
    gpuTelemetry: new GpuTelemetry(new NvidiaSmiInventory({ binary: smi }), 500),
  });
  browser = await launchChromium();
  context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
  page = await context.newPage();
  page.on('pageerror', (err) => pageErrors.push(err.message));
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await stack?.close();
});

afterEach(() => {
  // No uncaught error in the page, whatever the test did.
  expect(pageErrors).toEqual([]);
});

const signIn = (p: Page, token: string) => signInAt(p, stack.url, token);

async function until(done: () => boolean, timeoutMs: number): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; !done(); await new Promise((r) => setTimeout(r, 100))) {
    if (Date.now() > deadline) throw new Error(`not done within ${timeoutMs} ms`);
  }
}

async function apiJob(id: string): Promise<JobRecord> {
  return (await (await stack.alice.fetch(`/v1/jobs/${id}`)).json()) as JobRecord;
}

test('the dashboard is served at / to anyone, client paths get index.html, nothing of it is in OpenAPI', async () => {
  const index = await fetch(`${stack.url}/`);
  expect(index.status).toBe(200);
  expect(index.headers.get('content-type')).toMatch(/^text\/html/);
  const html = await index.text();
  expect(html).toContain('/assets/app.js');
  // Every asset is served from here: no CDN, no external font.
  expect(html).not.toMatch(/https?:\/\//);
  const js = await fetch(`${stack.url}/assets/app.js`);
  expect(js.status).toBe(200);
  expect(js.headers.get('content-type')).toMatch(/javascript/);
  expect(await js.text()).not.toMatch(/https?:\/\//);
  const css = await (await fetch(`${stack.url}/assets/app.css`)).text();
  expect(css).toContain('.uplot');
  expect(css).not.toMatch(/@import|url\(\s*['"]?https?:/);
  expect(await (await fetch(`${stack.url}/jobs/job_aaaaaaaaaaaaaaaaaaaa`)).text()).toBe(html);
  // The files are public; the API behind them is not.
  const api = await fetch(`${stack.url}/v1/jobs`);
  expect([api.status, (await api.json()).error.code]).toEqual([401, 'UNAUTHENTICATED']);
  // A path cannot climb out of the assets folder.
  const climb = await fetch(`${stack.url}/assets/..%2f..%2fpackage.json`);
  expect(climb.status).not.toBe(200);
  expect(await climb.text()).not.toContain('"workspaces"');
  const missing = await fetch(`${stack.url}/assets/nope.js`);
  expect(missing.status).toBe(404);
  await missing.body?.cancel();

  const doc = (await (await fetch(`${stack.url}/openapi.json`)).json()) as { paths: Record<string, unknown> };
  const dashboardPaths = ['/', '/index.html', '/jobs', '/jobs/{id}', '/submit', '/datasets', '/pipelines'];
  expect(Object.keys(doc.paths).filter((p) => dashboardPaths.includes(p) || p.startsWith('/assets'))).toEqual([]);
  expect(Object.keys(doc.paths)).toContain('/v1/jobs');

  // Not built: a clear 404 in berth's error shape, not an empty page.
  const bare = Fastify().decorate(
    'config',
    testApiConfig(stack.prefix, { webDir: join(root, 'var', 'no-such-dashboard') }),
  );
  await bare.register(webRoutes);
  const res = await bare.inject({ method: 'GET', url: '/' });
  expect(res.statusCode).toBe(404);
  expect(res.json()).toEqual({
    error: { code: 'NOT_FOUND', message: expect.stringMatching(/dashboard is not built .*npm run build/) },
  });
  await bare.close();
});

test('signs in with a token (a wrong one is refused), keeps it across reloads, and signs out', async () => {
  await page.goto(`${stack.url}/`);
  await shot(page, 'sign-in');
  await page.getByLabel('API token').fill(`berth_${'A'.repeat(43)}`);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await showsText(page.getByRole('alert'), 'That token was refused (unknown, revoked or expired).');

  await signIn(page, stack.alice.token);
  expect(await page.locator('[data-testid=user]').textContent()).toBe('alice (member)');
  await page.reload();
  await page.locator('[data-testid=user]').waitFor();
  expect(await page.evaluate(() => localStorage.getItem('berth.token'))).toBe(stack.alice.token);
  // The token never goes into a URL the page loads.
  const urls: string[] = [];
  page.on('request', (r) => urls.push(r.url()));
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByLabel('API token').waitFor();
  expect(await page.evaluate(() => localStorage.getItem('berth.token'))).toBeNull();
  await signIn(page, stack.alice.token);
  expect(urls.filter((u) => u.includes(stack.alice.token))).toEqual([]);
});

let watched: string;
const artifactText = 'berth web test artifact\n';

test('a job submitted from the generated form runs live on its page: log line and chart points', async () => {
  await page.goto(`${stack.url}/#/submit`);
  await page.getByLabel('Recipe').selectOption('custom');
  const command = page.locator('#param-command');
  await command.waitFor();
  const dlll = (i: number) =>
    `echo 'DLLL {"timestamp": "1", "type": "LOG", "step": [0, ${i}], "data": {"step_loss": ${10 - i}, "learning_rate": 0.001}}'`;
  const script = [
    'echo "web-test: starting"',
    ...[1, 2, 3].flatMap((i) => [dlll(i), `echo "web-test: step ${i}"`]),
    // The window in which the page must already show the line and the points.
    'sleep 8',
    // End-of-run figures, one value each, with F1's unit announced as DLLogger does.
    `echo 'DLLL {"timestamp": "1", "type": "METADATA", "metric": "F1", "metadata": {"unit": "%"}}'`,
    `echo 'DLLL {"timestamp": "1", "type": "LOG", "step": [], "data": {"F1": 74.125}}'`,
    `printf '${artifactText.replace('\n', '\\n')}' > /results/model.txt`,
    'echo "web-test: done"',
  ].join('; ');
  await command.fill(['sh', '-c', script].join('\n'));

  // The image is required: the API's answer is shown at that field.
  await page.getByRole('button', { name: 'Submit', exact: true }).click();
  const imageError = page.locator('[data-field="params.image"] .field-error');
  await showsText(imageError, /required/);
  expect(await page.locator('#param-image').getAttribute('aria-invalid')).toBe('true');

  await page.locator('#param-image').fill('berth/fixture:dev');
  await page.getByRole('button', { name: 'Check' }).click();
  await showsText(page.locator('pre.preview'), 'berth/fixture:dev');
  await page.getByRole('button', { name: 'Submit', exact: true }).click();
  await page.waitForURL(/#\/jobs\/job_[a-z2-7]{20}$/);
  watched = /job_[a-z2-7]{20}/.exec(page.url())![0];

  await page.locator('.log .line', { hasText: 'web-test: step 1' }).waitFor({ timeout: 30_000 });
  await page.waitForFunction(
    () => Number(document.querySelector<HTMLElement>('[data-chart=loss]')?.dataset.points) >= 3,
    null,
    { timeout: 10_000 },
  );
  // Live: both arrived while the job was still running (it sleeps before it ends).
  expect((await apiJob(watched)).state).toBe('running');
  expect(await shownState(page)).toBe('running');
  expect(Number(await page.locator('[data-chart=learning-rate]').getAttribute('data-points'))).toBeGreaterThanOrEqual(
    1,
  );
  expect(await page.locator('[data-chart=loss] canvas').count()).toBeGreaterThan(0);
  await shot(page, 'job-running');

  // The search narrows the log to matching lines.
  await page.getByLabel('Search').fill('web-test: step 2');
  await expect(page.locator('.log .line:visible').allTextContents()).resolves.toEqual(['web-test: step 2']);
  // DLLogger records read as one line a step, as berth logs shows them; Raw shows them as printed.
  await page.getByLabel('Search').fill('loss');
  await expect(page.locator('.log .line:visible').allTextContents()).resolves.toEqual([
    'step 1  loss 9  lr 1e-3',
    'step 2  loss 8  lr 1e-3',
    'step 3  loss 7  lr 1e-3',
  ]);
  await page.getByLabel('Raw').check();
  expect(await page.locator('.log .line:visible').first().textContent()).toMatch(/^DLLL \{"timestamp"/);
  await page.getByLabel('Raw').uncheck();
  await page.getByLabel('Search').fill('');
}, 60_000);

test('the job ends on its page without a reload; its artifact and log download through signed URLs', async () => {
  await page.waitForSelector('article.job[data-state=succeeded]', { timeout: 30_000 });
  await page.locator('.log .line', { hasText: 'web-test: done' }).waitFor();
  // A single end-of-run value is a tile with its unit, not a dot on a time axis; the step charts have axis titles.
  const tile = page.locator('[data-chart=quality] .tile[data-metric=F1]');
  await showsText(tile, '74.1');
  expect(await tile.textContent()).toBe('74.13 %F1');
  expect(await page.locator('[data-chart=quality] canvas').count()).toBe(0);
  expect(await page.locator('[data-chart=loss] .plot').getAttribute('aria-label')).toBe('Loss chart: Loss by step');
  // Time on x: the same points, drawn at the times they were logged, from a fresh read of the page as from the follow.
  await page.reload();
  await page.waitForFunction(
    () => Number(document.querySelector<HTMLElement>('[data-chart=loss]')?.dataset.points) === 3,
  );
  await page.getByRole('button', { name: 'Time', exact: true }).click();
  await page.waitForSelector('[data-chart=loss][data-axis=time][data-points="3"]');
  expect(await page.locator('[data-chart=loss] .plot').getAttribute('aria-label')).toBe('Loss chart: Loss by time');
  await shot(page, 'job-charts-by-time');
  await page.getByRole('button', { name: 'Step', exact: true }).click();
  await page.waitForSelector('[data-chart=loss][data-axis=step][data-points="3"]');
  const timeline = await page.locator('.timeline li').evaluateAll((lis) => lis.map((li) => li.dataset.state));
  expect(timeline).toEqual(expect.arrayContaining(['queued', 'running', 'succeeded']));

  const button = page.locator('button[data-artifact="model.txt"]');
  await button.waitFor({ timeout: 15_000 });
  const sha = createHash('sha256').update(artifactText).digest('hex');
  const row = page.locator('li', { has: button });
  expect(await row.locator('code.hash').textContent()).toBe(sha);
  expect(await row.locator('.size').textContent()).toBe(`${artifactText.length} B`);

  const [download] = await Promise.all([page.waitForEvent('download'), button.click()]);
  expect(download.url()).toMatch(new RegExp(`/v1/jobs/${watched}/artifacts/model.txt\\?.*sig=`));
  expect(download.url()).not.toContain(stack.alice.token);
  expect(download.suggestedFilename()).toBe('model.txt');
  expect(readFileSync((await download.path())!, 'utf8')).toBe(artifactText);

  const [log] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('button', { name: 'Download log', exact: true }).click(),
  ]);
  expect(readFileSync((await log.path())!, 'utf8')).toContain('web-test: step 3\n');
  await shot(page, 'job-succeeded');
}, 60_000);

test('the form lists recipes in flow order, fits the GPUs live, and starts from a finished job picked from a list', async () => {
  await page.goto(`${stack.url}/#/submit`);
  await page.getByLabel('Recipe').selectOption('bert-finetune-squad');
  const recipes = await page
    .locator('#manifest option')
    .evaluateAll((os) => os.map((o) => (o as HTMLOptionElement).value));
  expect(recipes[0]).toMatch(/pretrain/);
  expect(recipes.at(-1)).toBe('custom');
  // The one live worker has one GPU; at 0 GPUs the job runs on the CPU image, which trains in fp32.
  await page.locator('#param-precision').waitFor();
  // What most runs set is up front; the rest waits behind Advanced.
  expect(await page.locator('#param-train_file').isVisible()).toBe(true);
  expect(await page.locator('#param-doc_stride').isVisible()).toBe(false);
  await page.getByText(/^Advanced parameters \(\d+\)$/).click();
  expect(await page.locator('#param-doc_stride').isVisible()).toBe(true);
  expect(await page.locator('#gpus').inputValue()).toBe('1');
  await page.locator('#gpus').fill('0');
  await page.locator('#gpus').dispatchEvent('change');
  expect(await page.locator('#param-precision').inputValue()).toBe('fp32');

  await page.getByLabel('Recipe').selectOption('custom');
  await page.locator('#param-image').fill('berth/fixture:dev');
  await page.locator('#param-command').fill(['cat', '/init/model.txt'].join('\n'));
  await page.locator('#init-job').selectOption(watched);
  await page.waitForFunction(() => document.querySelector<HTMLSelectElement>('#init-artifact')?.value === 'model.txt');
  await shot(page, 'submit-start-from');
  await page.getByRole('button', { name: 'Submit', exact: true }).click();
  await page.waitForURL(/#\/jobs\/job_[a-z2-7]{20}$/);
  const id = /job_[a-z2-7]{20}/.exec(page.url())![0];
  const job = await waitForEnd(stack.alice, id);
  expect(job.spec.inputs?.initFrom).toEqual({ job: watched, artifact: 'model.txt' });
  expect(await (await stack.alice.fetch(`/v1/jobs/${id}/logs`)).text()).toBe(artifactText);
}, 60_000);

test('a run has a name and notes, found by the jobs search; its page shows where it started from', async () => {
  const { body } = await submit(
    stack.alice,
    fixtureJob(['sh', '-c', 'cat /init/model.txt; mkdir -p /results/model; echo "{}" > /results/model/config.json'], {
      name: 'nightly squad run',
      notes: 'after the tokenizer fix',
      inputs: { initFrom: { job: watched, artifact: 'model.txt' } },
    }),
  );
  await waitForEnd(stack.alice, body.id);
  await page.goto(`${stack.url}/#/jobs`);
  await page.locator(`tr[data-job="${body.id}"]`).waitFor();
  await page.getByLabel('Search').fill('nightly');
  await expect(
    page.locator('tbody tr').evaluateAll((rs) => rs.map((r) => r.getAttribute('data-job'))),
  ).resolves.toEqual([body.id]);
  expect(await page.locator(`tr[data-job="${body.id}"] td.name`).textContent()).toBe('nightly squad run');

  await page.goto(`${stack.url}/#/jobs/${body.id}`);
  const details = page.locator('.details');
  await showsText(details, 'nightly squad run');
  await showsText(details, 'after the tokenizer fix');
  await showsText(details, `${watched} · model.txt at /init`);
  expect(await page.locator('.details a', { hasText: watched }).getAttribute('href')).toBe(`#/jobs/${watched}`);
  // It made a model folder: one button downloads all of it, as model.tar.
  const button = page.getByRole('button', { name: /^Download the model/ });
  await button.waitFor({ timeout: 15_000 });
  const [tar] = await Promise.all([page.waitForEvent('download'), button.click()]);
  expect(tar.suggestedFilename()).toBe('model.tar');
  expect(execFileSync('tar', ['-tf', (await tar.path())!], { encoding: 'utf8' })).toBe('model/config.json\n');
  await shot(page, 'job-lineage');
}, 60_000);

test('two runs ticked in the jobs table are compared: their loss curves over each other, named by run', async () => {
  const dlll = (i: number) =>
    `echo 'DLLL {"timestamp": "1", "type": "LOG", "step": [0, ${i}], "data": {"step_loss": ${i}}}'`;
  const { body } = await submit(
    stack.alice,
    fixtureJob(['sh', '-c', [1, 2, 3].map(dlll).join('; ')], { name: 'second run' }),
  );
  await waitForEnd(stack.alice, body.id);
  await page.goto(`${stack.url}/#/jobs`);
  await page.getByLabel(`Compare ${watched}`).check();
  await page.getByLabel('Compare second run').check();
  await page.getByRole('button', { name: 'Compare', exact: true }).click();
  await page.waitForURL(/#\/compare\?jobs=/);
  await page.waitForFunction(
    () => Number(document.querySelector<HTMLElement>('[data-chart=loss]')?.dataset.points) >= 6,
    null,
    { timeout: 15_000 },
  );
  const legend = await page.locator('[data-chart=loss] .u-legend').textContent();
  expect(legend).toContain(`${watched}: step_loss`);
  expect(legend).toContain('second run: step_loss');
  await shot(page, 'compare');
}, 60_000);

test('a GPU job shows on the overview and in its GPU chart, and is cancelled from its page', async () => {
  const { body } = await submit(stack.alice, fixtureJob(['sleep', '300'], { resources: { gpus: 1 } }));
  await page.goto(`${stack.url}/#/`);
  // The worker's GPU is shown held by the job.
  const holder = page.locator(`[data-worker="${stack.workerId}"] .gpu.busy a`, { hasText: body.id });
  await holder.waitFor({ timeout: 30_000 });
  await shot(page, 'overview-gpu');

  await holder.click();
  await page.waitForURL(new RegExp(`#/jobs/${body.id}$`));
  await page.waitForSelector('article.job[data-state=running]', { timeout: 30_000 });
  await page.waitForFunction(
    () => Number(document.querySelector<HTMLElement>('[data-chart=gpu]')?.dataset.points) >= 2,
    null,
    { timeout: 15_000 },
  );
  page.once('dialog', (d) => void d.accept());
  await page.getByRole('button', { name: 'Cancel' }).click();
  await page.waitForSelector('article.job[data-state=cancelled]', { timeout: 30_000 });
  expect((await waitForEnd(stack.alice, body.id)).state).toBe('cancelled');
  expect(await page.getByRole('button', { name: 'Cancel' }).isDisabled()).toBe(true);
  await shot(page, 'job-cancelled');

  // Resume is offered for a cancelled job; the custom recipe keeps no checkpoints, and the page says so.
  await page.getByRole('button', { name: 'Resume' }).click();
  await showsText(page.locator('.notice.error'), /Could not resume: recipe custom does not resume from a checkpoint/);

  // Retry makes a new job with the same spec and opens it.
  await page.getByRole('button', { name: 'Retry' }).click();
  await page.waitForURL((u) => /#\/jobs\/job_[a-z2-7]{20}$/.test(u.hash) && !u.hash.endsWith(body.id));
  const again = /job_[a-z2-7]{20}/.exec(page.url())![0];
  expect((await apiJob(again)).spec).toEqual({ ...body.spec, labels: { 'berth.retry-of': body.id } });
  await stack.alice.fetch(`/v1/jobs/${again}/cancel`, { method: 'POST' });
  await page.waitForSelector('article.job[data-state=cancelled]', { timeout: 30_000 });
}, 60_000);

test('the jobs table filters and sorts, shows only the caller’s jobs, and follows states across an expired URL', async () => {
  const { body: bobs } = await submit(stack.bob, fixtureJob(['true']));
  await page.goto(`${stack.url}/#/jobs`);
  await page.locator(`tr[data-job="${watched}"]`).waitFor();
  expect(await page.locator(`tr[data-job="${bobs.id}"]`).count()).toBe(0);

  const ids = () => page.locator('tbody tr[data-job]').evaluateAll((rows) => rows.map((r) => r.dataset.job));
  const newestFirst = await ids();
  const listed = (await (await stack.alice.fetch('/v1/jobs')).json()) as { jobs: JobRecord[] };
  expect(newestFirst).toEqual(listed.jobs.map((j) => j.id));
  expect(newestFirst.length).toBeGreaterThanOrEqual(3);
  await page.getByRole('button', { name: 'Created' }).click();
  expect(await page.locator('th', { hasText: 'Created' }).getAttribute('aria-sort')).toBe('ascending');
  expect(await ids()).toEqual([...newestFirst].reverse());

  await page.getByLabel('State').selectOption('cancelled');
  await page.waitForURL(/#\/jobs\?state=cancelled$/);
  const cancelled = (await (await stack.alice.fetch('/v1/jobs?state=cancelled')).json()) as { jobs: JobRecord[] };
  expect(cancelled.jobs.length).toBeGreaterThanOrEqual(1);
  await page.waitForFunction(
    (n) => document.querySelectorAll('tbody tr[data-job]').length === n,
    cancelled.jobs.length,
  );
  expect(await page.locator('tbody tr[data-job]').evaluateAll((rows) => rows.map((r) => r.dataset.state))).toEqual(
    cancelled.jobs.map(() => 'cancelled'),
  );
  await page.getByLabel('State').selectOption('');
  await page.locator(`tr[data-job="${watched}"]`).waitFor();

  // The feed's signed URL expires; then the connection drops (as a proxy or a restart would). The browser's own
  // reconnect is refused, so the page signs a new URL and carries on.
  const signed: string[] = [];
  page.on('request', (r) => {
    if (r.method() === 'POST' && r.url().endsWith('/v1/signed-urls')) signed.push(r.postData() ?? '');
  });
  await page.waitForTimeout((signedUrlTtlSeconds + 1) * 1000);
  stack.app.server.closeAllConnections();
  await until(() => signed.some((b) => b.includes('"/v1/events"')), 20_000);
  await page.waitForFunction(() => document.querySelector('.feed')?.textContent === '● live', null, {
    timeout: 20_000,
  });

  // A job submitted now appears and moves through its states in the table, from the feed alone.
  const { body } = await submit(stack.alice, fixtureJob(['sh', '-c', 'sleep 2']));
  const row = page.locator(`tr[data-job="${body.id}"]`);
  await row.waitFor({ timeout: 15_000 });
  await page.waitForSelector(`tr[data-job="${body.id}"][data-state=succeeded]`, { timeout: 30_000 });
  await shot(page, 'jobs');
}, 90_000);

test('the overview counts jobs by state and shows the worker with its GPUs', async () => {
  await page.goto(`${stack.url}/#/`);
  await page.locator('a.count').first().waitFor();
  const shown = Object.fromEntries(
    await page
      .locator('a.count')
      .evaluateAll((links) => links.map((a) => [a.dataset.state, Number(a.querySelector('.n')?.textContent)])),
  );
  const { counts } = (await (await stack.alice.fetch('/v1/queue')).json()) as { counts: Record<string, number> };
  expect(shown).toEqual(counts);
  expect(counts.succeeded).toBeGreaterThanOrEqual(2);
  expect(counts.cancelled).toBeGreaterThanOrEqual(1);
  await page.locator(`[data-worker="${stack.workerId}"]`).waitFor();
  expect(await page.locator(`[data-worker="${stack.workerId}"]`).textContent()).toContain('live');
  await shot(page, 'overview');
});

test('a dataset is uploaded with progress; a broken one shows the validator’s report', async () => {
  await page.goto(`${stack.url}/#/datasets`);
  const corpus = readFileSync(join(root, 'payloads/bert/demo/data/corpus.txt'));
  await page.getByLabel('File').setInputFiles({ name: 'corpus.txt', mimeType: 'text/plain', buffer: corpus });
  expect(await page.getByLabel('Name').inputValue()).toBe('corpus');
  await page.getByLabel('Format').selectOption('corpus');
  await page.evaluate(() => {
    // Records every value the progress bar is given.
    const bar = document.querySelector<HTMLProgressElement>('#ds-progress')!;
    const seen: number[] = [];
    (window as unknown as { progressSeen: number[] }).progressSeen = seen;
    const set = Object.getOwnPropertyDescriptor(HTMLProgressElement.prototype, 'value')!.set!;
    Object.defineProperty(bar, 'value', {
      set(v: number) {
        seen.push(v);
        set.call(this, v);
      },
    });
  });
  await page.getByRole('button', { name: 'Upload' }).click();
  await page.locator('.ok', { hasText: 'corpus is ready' }).waitFor({ timeout: 30_000 });
  expect(await page.evaluate(() => (window as unknown as { progressSeen: number[] }).progressSeen)).toContain(100);
  await page.locator('tr[data-dataset]', { hasText: 'corpus' }).waitFor();

  await page
    .getByLabel('File')
    .setInputFiles({ name: 'train.json', mimeType: 'application/json', buffer: Buffer.from('{"data": [') });
  await page.getByLabel('Format').selectOption('squad');
  await page.getByRole('button', { name: 'Upload' }).click();
  await showsText(page.locator('.error[role=alert]'), /^DATASET_INVALID: .*train\.json/);
  await shot(page, 'datasets');
}, 60_000);

/** The page's width, and the elements that stick out of the screen without a scrolling box around them. */
function overflowing() {
  const clipped = (el: Element | null): boolean => {
    for (let a = el?.parentElement; a; a = a.parentElement) {
      if (['auto', 'scroll', 'hidden'].includes(getComputedStyle(a).overflowX)) return true;
    }
    return false;
  };
  const wide = [...document.querySelectorAll('body *')]
    .filter((el) => el.getBoundingClientRect().right > innerWidth + 1 && !clipped(el))
    .map((el) => `${el.tagName.toLowerCase()}.${el.className}: ${el.textContent?.slice(0, 40)}`);
  return { scrollWidth: document.documentElement.scrollWidth, wide };
}

test('a pipeline started from its form is listed, and its page follows the step to the end', async () => {
  await page.goto(`${stack.url}/#/pipelines`);
  await page.locator('main h1', { hasText: 'Pipelines' }).waitFor();
  const spec = {
    name: 'web-pipeline',
    steps: [{ name: 'hello', manifest: 'custom', params: { image: 'berth/fixture:dev', command: ['echo', 'hello'] } }],
  };
  await page.getByLabel('Pipeline as JSON').fill(JSON.stringify(spec));
  await page
    .locator('form', { has: page.getByLabel('Pipeline as JSON') })
    .getByRole('button')
    .click();
  await page.waitForURL(/#\/pipelines\/pl_[a-z2-7]{20}$/);
  await page.waitForSelector('li[data-step=hello][data-state=succeeded]', { timeout: 30_000 });
  const job = await page.locator('li[data-step=hello] a').textContent();
  expect((await apiJob(job!)).state).toBe('succeeded');
  await shot(page, 'pipeline');
  await page.getByRole('link', { name: '← Pipelines' }).click();
  await page.getByRole('link', { name: 'web-pipeline' }).waitFor();
}, 60_000);

test('on a phone the pages fit the screen, and the keyboard reaches everything', async () => {
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  try {
    const p = await phone.newPage();
    p.on('pageerror', (err) => pageErrors.push(err.message));
    await signIn(p, stack.alice.token);
    for (const [hash, name] of [
      ['#/', 'phone-overview'],
      ['#/jobs', 'phone-jobs'],
      [`#/jobs/${watched}`, 'phone-job'],
      ['#/submit', 'phone-submit'],
    ] as const) {
      await p.goto(`${stack.url}/${hash}`);
      await p.locator('main h1').first().waitFor();
      await p.waitForTimeout(500);
      // Nothing wider than the screen (tables and the log scroll inside their own boxes).
      expect(await p.evaluate(overflowing)).toEqual({ scrollWidth: 390, wide: [] });
      await shot(p, name);
    }

    // Keyboard: the skip link comes first, then the navigation; Enter follows a link.
    await p.goto(`${stack.url}/#/`);
    await p.reload();
    await p.locator('main h1').waitFor();
    await p.keyboard.press('Tab');
    expect(await p.evaluate(() => document.activeElement?.textContent)).toBe('Skip to content');
    const focused: string[] = [];
    for (let i = 0; i < 4; i++) {
      await p.keyboard.press('Tab');
      focused.push(await p.evaluate(() => document.activeElement?.textContent ?? ''));
    }
    expect(focused).toEqual(expect.arrayContaining(['Overview', 'Jobs']));
    while ((await p.evaluate(() => document.activeElement?.textContent)) !== 'Jobs') await p.keyboard.press('Tab');
    await p.keyboard.press('Enter');
    await p.waitForURL(/#\/jobs$/);
  } finally {
    await phone.close();
  }
}, 60_000);
