// berth's core flow walked in a real browser as a new user walks it, with nothing but the dashboard: sign in, upload
// both demo datasets, pretrain from the form, fine-tune from that run picked in the form's list, watch the log and
// charts live, and download the fine-tuned model. It checks what a person sees (log lines that read as a training
// tool prints them, end-of-run figures as tiles with units, no chart of one lone point) and keeps a screenshot of
// every page in test/output/.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { launchChromium, shot, showsText, shownState, signIn } from './support/browser.js';
import { startTestStack, type TestStack } from './support/stack.js';

const root = resolve(__dirname, '..');
const demo = join(root, 'payloads/bert/demo/data');

let stack: TestStack;
let browser: Browser;
let page: Page;
const pageErrors: string[] = [];

beforeAll(async () => {
  execFileSync(process.execPath, [join(root, 'apps/web/build.mjs')], { stdio: 'inherit' });
  stack = await startTestStack('web-flow');
  browser = await launchChromium();
  page = await (await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true })).newPage();
  page.on('pageerror', (err) => pageErrors.push(err.message));
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await stack?.close();
});

/** Uploads a file on the Datasets page under `name` and waits until the page says it is ready. */
async function upload(file: { name: string; buffer: Buffer; mimeType: string }, name: string, format: string) {
  await page.goto(`${stack.url}/#/datasets`);
  await page.getByLabel('File').setInputFiles(file);
  await page.getByLabel('Name').fill(name);
  await page.getByLabel('Format').selectOption(format);
  await page.getByRole('button', { name: 'Upload' }).click();
  await page.locator('.ok', { hasText: `${name} is ready` }).waitFor({ timeout: 60_000 });
}

/** Sets a recipe parameter in the form, a list or a text box alike, opening the advanced ones as a person would. */
async function param(name: string, value: string) {
  const field = page.locator(`#param-${name}`);
  if (!(await field.isVisible())) await page.locator('details.advanced > summary').click();
  if ((await field.evaluate((el) => el.tagName)) === 'SELECT') await field.selectOption(value);
  else await field.fill(value);
}

/** Picks the option of a list whose text starts as a person reads it. */
async function pick(select: string, starts: string) {
  const texts = await page.locator(`${select} option`).allTextContents();
  const found = texts.findIndex((t) => t.startsWith(starts));
  expect(found).toBeGreaterThanOrEqual(0);
  await page.locator(select).selectOption({ index: found });
}

async function submitted(): Promise<string> {
  await page.getByRole('button', { name: 'Submit', exact: true }).click();
  await page.waitForURL(/#\/jobs\/job_[a-z2-7]{20}$/);
  return /job_[a-z2-7]{20}/.exec(page.url())![0];
}

/** Waits for the job page to show the job ended as it should, with its log pane ended too. */
async function succeeds(timeout: number) {
  await page.waitForSelector('article.job[data-state=succeeded], article.job[data-state=failed]', { timeout });
  expect(await shownState(page)).toBe('succeeded');
}

/** Every chart drawn has more than one point in it: an end-of-run figure is a tile, never a lone dot. */
async function noLoneDots() {
  const charts = await page
    .locator('[data-chart]')
    .evaluateAll((els) =>
      els.map((el) => [
        el.getAttribute('data-chart'),
        Number(el.getAttribute('data-points')),
        !!el.querySelector('canvas'),
      ]),
    );
  for (const [, points, drawn] of charts) if (drawn) expect(points).toBeGreaterThan(1);
}

test('sign in, upload both demo datasets, pretrain, fine-tune from it with the picker, download the model', async () => {
  await signIn(page, stack.url, stack.alice.token);
  await upload(
    { name: 'corpus.txt', mimeType: 'text/plain', buffer: readFileSync(join(demo, 'corpus.txt')) },
    'corpus',
    'corpus',
  );
  // The SQuAD set is two files: a user packs them as one archive, as the upload form says.
  const tar = join(mkdtempSync(join(tmpdir(), 'berth-web-flow-')), 'squad.tar');
  execFileSync('tar', ['-cf', tar, '-C', demo, 'train.json', 'dev.json']);
  await upload({ name: 'squad.tar', mimeType: 'application/x-tar', buffer: readFileSync(tar) }, 'demo-squad', 'squad');
  await shot(page, 'flow-datasets');

  // Pretraining from the form: the GPUs default to what the live workers have (none here), so fp32 on the CPU image.
  await page.goto(`${stack.url}/#/submit`);
  await page.getByLabel('Recipe').selectOption('bert-pretrain');
  await page.locator('#param-precision').waitFor();
  expect(await page.locator('#gpus').inputValue()).toBe('0');
  expect(await page.locator('#param-precision').inputValue()).toBe('fp32');
  await pick('#dataset', 'corpus (corpus, ');
  await param('train_file', 'corpus.txt');
  await param('model_config', 'tiny');
  await param('max_steps', '60');
  await page.locator('#name').fill('domain pretrain');
  await page.locator('#notes').fill('tiny model, 60 steps on the demo corpus');
  await shot(page, 'flow-submit-pretrain');
  const pre = await submitted();
  // Live: readable step lines and a loss curve while it runs.
  await showsText(page.locator('.log .line'), /^step \d+\/60 {2}loss \S+/, 120_000);
  await page.waitForFunction(
    () => Number(document.querySelector<HTMLElement>('[data-chart=loss]')?.dataset.points) >= 2,
    null,
    { timeout: 120_000 },
  );
  await shot(page, 'flow-pretrain-running');
  await succeeds(300_000);
  const preLog = await page.locator('.log .line:visible').allTextContents();
  expect(preLog).toContainEqual(expect.stringMatching(/^step 60\/60 {2}loss \S+/));
  expect(preLog.filter((l) => l.startsWith('DLLL {'))).toEqual([]);
  await noLoneDots();
  await shot(page, 'flow-pretrain-done');

  // Fine-tuning from it: the run is picked from the list of finished jobs, its model artifact chosen by default.
  await page.goto(`${stack.url}/#/submit`);
  await page.getByLabel('Recipe').selectOption('bert-finetune-squad');
  await page.locator('#param-precision').waitFor();
  await pick('#dataset', 'demo-squad (squad, ');
  await page.locator('#init-job').selectOption(pre);
  await page.waitForFunction(() => document.querySelector<HTMLSelectElement>('#init-artifact')?.value === 'model');
  await param('train_file', 'train.json');
  await param('predict_file', 'dev.json');
  await param('max_steps', '30');
  await param('max_seq_length', '128');
  await param('doc_stride', '64');
  await page.locator('#name').fill('squad from domain pretrain');
  await shot(page, 'flow-submit-finetune');
  const ft = await submitted();
  await showsText(page.locator('.details'), `${pre} · model at /init`);
  await succeeds(300_000);
  // The figures at the end are tiles with their units; the log ends with them, as berth logs prints them.
  const f1 = page.locator('[data-chart=quality] .tile[data-metric=F1]');
  await showsText(f1, /^\d+(\.\d+)? %F1$/);
  expect(await page.locator('[data-chart=quality] canvas').count()).toBe(0);
  await noLoneDots();
  await showsText(page.locator('.log .line'), /^ {2}F1 +\d+(\.\d+)?%$/m);
  await shot(page, 'flow-finetune-done');

  const button = page.getByRole('button', { name: /^Download the model/ });
  await button.waitFor({ timeout: 30_000 });
  const [download] = await Promise.all([page.waitForEvent('download'), button.click()]);
  expect(download.suggestedFilename()).toBe('model.tar');
  const files = execFileSync('tar', ['-tf', (await download.path())!], { encoding: 'utf8' }).split('\n');
  expect(files).toEqual(expect.arrayContaining(['model/config.json', 'model/model.safetensors']));
  expect(ft).not.toBe(pre);
  expect(pageErrors).toEqual([]);
}, 900_000);
