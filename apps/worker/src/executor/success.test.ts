import { loadManifests } from '@berth/manifests';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { dlloggerPrefixes, globToRegExp, judge, MetricNames } from './success.js';

const manifests = loadManifests(resolve(__dirname, '../../../../ngc-manifests'));
const squad = manifests.get('dle-bert-squad')!;
const pretrain = manifests.get('dle-bert-pretrain')!;
const results = () => mkdtempSync(join(tmpdir(), 'berth-results-'));
const record = (data: Record<string, unknown>, step: unknown = []) =>
  `DLLL ${JSON.stringify({ timestamp: '1', datetime: 'x', elapsedtime: '1', type: 'LOG', step, data })}`;

test('a DLE wrapper that exits 0 without its final metrics has not succeeded', () => {
  const v = judge(squad, 0, results(), new MetricNames(dlloggerPrefixes(squad)));
  expect(v).toMatchObject({ ok: false, reason: 'INCOMPLETE_RESULT' });
  expect(v.ok || v.message).toMatch(/e2e_train_time, e2e_inference_time, F1/);
});

test('a final metric in the DLLogger JSON file under /results makes it a success', () => {
  const dir = results();
  writeFileSync(join(dir, 'dllogger.json'), `${record({ step_loss: 1 }, [0, 1])}\n${record({ F1: 88.1 })}\n`);
  expect(judge(squad, 0, dir, new MetricNames([]))).toEqual({ ok: true });
});

test('metrics seen in the log count too; a bad exit code fails whatever was reported', () => {
  const names = new MetricNames(['DLLL ']);
  names.observe('DLLL not json');
  names.observe(record({ e2e_inference_time: 3.2 }));
  expect(judge(squad, 0, results(), names)).toEqual({ ok: true });
  expect(judge(squad, 3, results(), names)).toMatchObject({ ok: false, reason: 'EXIT_NONZERO' });
});

test('required files are matched by glob under /results', () => {
  const dir = results();
  writeFileSync(join(dir, 'dllogger.json'), `${record({ final_loss: 1.5 })}\n`);
  expect(judge(pretrain, 0, dir, new MetricNames([]))).toMatchObject({ ok: false, reason: 'INCOMPLETE_RESULT' });
  writeFileSync(join(dir, 'ckpt_1000.pt'), 'x');
  expect(judge(pretrain, 0, dir, new MetricNames([]))).toEqual({ ok: true });
  expect(globToRegExp('checkpoints/**').test('checkpoints/step-1/state.pt')).toBe(true);
  expect(globToRegExp('ckpt_*.pt').test('sub/ckpt_1.pt')).toBe(false);
});
