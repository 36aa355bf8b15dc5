import { loadManifests } from '@berth/manifests';
import { mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ResultsTree } from '../artifacts/results-tree.js';
import { dlloggerPrefixes, globToRegExp, judge as judgeResults, MetricNames } from './success.js';

const manifests = loadManifests(resolve(__dirname, '../../../../ngc-manifests'));
const squad = manifests.get('dle-bert-squad')!;
const pretrain = manifests.get('dle-bert-pretrain')!;
const results = () => mkdtempSync(join(tmpdir(), 'berth-results-'));
/** Judges as the worker does: over a scan of the folder through a ResultsTree. */
async function judge(m: typeof squad, exitCode: number, dir: string, names: MetricNames) {
  const tree = new ResultsTree(dir, { maxBytes: 1024 ** 2, maxFiles: 100 });
  return judgeResults(m, exitCode, { tree, scan: await tree.scan() }, names);
}
const record = (data: Record<string, unknown>, step: unknown = []) =>
  `DLLL ${JSON.stringify({ timestamp: '1', datetime: 'x', elapsedtime: '1', type: 'LOG', step, data })}`;

test('a DLE wrapper that exits 0 without its final metrics has not succeeded', async () => {
  const v = await judge(squad, 0, results(), new MetricNames(dlloggerPrefixes(squad)));
  expect(v).toMatchObject({ ok: false, reason: 'INCOMPLETE_RESULT' });
  expect(v.ok || v.message).toMatch(/e2e_train_time, e2e_inference_time, F1/);
});

test('a final metric in the DLLogger JSON file under /results makes it a success', async () => {
  const dir = results();
  writeFileSync(join(dir, 'dllogger.json'), `${record({ step_loss: 1 }, [0, 1])}\n${record({ F1: 88.1 })}\n`);
  expect(await judge(squad, 0, dir, new MetricNames([]))).toEqual({ ok: true });
});

test('metrics seen in the log count too; a bad exit code fails whatever was reported', async () => {
  const names = new MetricNames(['DLLL ']);
  names.observe('DLLL not json');
  names.observe(record({ e2e_inference_time: 3.2 }));
  expect(await judge(squad, 0, results(), names)).toEqual({ ok: true });
  expect(await judge(squad, 3, results(), names)).toMatchObject({ ok: false, reason: 'EXIT_NONZERO' });
});

test('required files are matched by glob under /results', async () => {
  const dir = results();
  writeFileSync(join(dir, 'dllogger.json'), `${record({ final_loss: 1.5 })}\n`);
  expect(await judge(pretrain, 0, dir, new MetricNames([]))).toMatchObject({ ok: false, reason: 'INCOMPLETE_RESULT' });
  writeFileSync(join(dir, 'ckpt_1000.pt'), 'x');
  expect(await judge(pretrain, 0, dir, new MetricNames([]))).toEqual({ ok: true });
  expect(globToRegExp('checkpoints/**').test('checkpoints/step-1/state.pt')).toBe(true);
  expect(globToRegExp('ckpt_*.pt').test('sub/ckpt_1.pt')).toBe(false);
});

test('a metric file that is a link to a host file is not read: the job cannot borrow a final metric', async () => {
  const host = results();
  writeFileSync(join(host, 'dllogger.json'), `${record({ F1: 99 })}\n`);
  const dir = results();
  symlinkSync(join(host, 'dllogger.json'), join(dir, 'dllogger.json'));
  expect(await judge(squad, 0, dir, new MetricNames([]))).toMatchObject({ ok: false, reason: 'INCOMPLETE_RESULT' });
});
