// The trainer on this CPU: the demo job (`python3 -m berth_bert demo` in berth/bert-cpu:dev, submitted through
// berth: a tiny BERT pretrained on the demo corpus, then fine-tuned on the demo SQuAD set and scored on its
// held-out dev set), followed live to its end. Figures from its DLLogger summaries: the fine-tune's training and
// evaluation time and the dev F1 / exact match, the pretraining time, the whole job. Target: F1 ≥ 70 (the README
// says ≈ 74; the ratio is F1 / 74). The GPU figures (our trainer vs the Hugging Face reference, same card, same
// run) cannot be measured here: they are copied, with their card and date, from the GPU section at the top of
// bench/RESULTS.md, which bench/gpu-bert.sh on a GPU machine measures.
//   BENCH_PRETRAIN_STEPS (default 200), BENCH_SQUAD_EPOCHS (default 2): the demo's own settings
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import process from 'node:process';
import { getJson, repo, startBerth, submitJob } from './lib/berth.mjs';
import { requireImage } from './lib/engine.mjs';
import { epochMs, fmt, runBench } from './lib/report.mjs';
import { followSse } from './lib/sse.mjs';

const name = 'trainer';
const image = 'berth/bert-cpu:dev';
const pretrainSteps = process.env.BENCH_PRETRAIN_STEPS ?? '200';
const squadEpochs = process.env.BENCH_SQUAD_EPOCHS ?? '2';
const readmeF1 = 74;
const targetF1 = 70;

/** The GPU comparison as bench/RESULTS.md's hand-written GPU section records it: card, date and one row per workload. */
function gpuSection(text) {
  const gpu = text.slice(0, text.indexOf('<!-- bench/run.mjs'));
  const card = /\*\*(NVIDIA [^*]+)\*\*/.exec(gpu)?.[1];
  const date = /(\d{4}-\d\d-\d\d \d\d:\d\d UTC)/.exec(gpu)?.[1];
  const rows = [];
  const lines = gpu.split('\n');
  const header = lines.findIndex((l) => /^\| workload .*\| ours \(seq\/s\) \| reference \(seq\/s\) \|/.test(l));
  for (const line of header === -1 ? [] : lines.slice(header + 2)) {
    const cells = line.split('|').map((c) => c.trim());
    if (!line.startsWith('|') || cells.length < 5) break;
    const [what, ours, reference] = [cells[1], Number(cells[2]), Number(cells[3])];
    rows.push({ what, ours, reference, ratio: ours / reference });
  }
  return { card, date, rows };
}

await runBench(name, async (cleanups) => {
  await requireImage(image, 'docker/build-bert-cpu-image.sh');
  const gpu = gpuSection(readFileSync(join(repo, 'bench/RESULTS.md'), 'utf8'));
  const berth = await startBerth(name);
  cleanups.push(berth.stop);

  const cmd = ['python3', '-m', 'berth_bert', 'demo', '--pretrain-steps', pretrainSteps];
  cmd.push('--squad-epochs', squadEpochs);
  const t0 = epochMs();
  const id = await submitJob(berth.url, image, cmd);
  // The summaries (DLLogger lines with an empty step), in order: pretraining's, then the fine-tune's and its scores.
  const summaries = [];
  let state;
  await followSse(`${berth.url}/v1/jobs/${id}/logs?follow=true`, (event, data) => {
    if (event === 'end') state = JSON.parse(data).state;
    if (event !== 'log') return;
    for (const text of JSON.parse(data).lines) {
      if (!text.startsWith('DLLL ')) continue;
      const record = JSON.parse(text.slice(5));
      if (Array.isArray(record.step) && record.step.length === 0 && record.type === 'LOG') {
        summaries.push(record.data);
        console.log(`summary: ${JSON.stringify(record.data)}`);
      }
    }
  });
  const job = await getJson(`${berth.url}/v1/jobs/${id}`);
  if (state !== 'succeeded' || job.state !== 'succeeded')
    throw new Error(`the demo job ended ${job.state}: ${job.message ?? ''}`);
  const wall = (Date.parse(job.finishedAt) - t0) / 1000;
  const trained = summaries.filter((s) => s.e2e_train_time !== undefined);
  const [pretrain, finetune] = [trained[0], trained[1]];
  const evaluation = summaries.find((s) => s.e2e_inference_time !== undefined);
  const scores = summaries.find((s) => s.F1 !== undefined);
  if (!pretrain || !finetune || !scores)
    throw new Error(`the demo's log lacks its summaries: ${JSON.stringify(summaries)}`);
  const f1 = scores.F1;
  const ratio = f1 / readmeF1;

  const gpuNote = gpu.card ? `${gpu.card}, ${gpu.date}, copied from the GPU section` : 'GPU section not found';
  const gpuRows = gpu.rows.map((r) => ({
    what: `GPU ${r.what} (seq/s; ${gpuNote})`,
    berth: r.ours,
    baseline: r.reference,
    ratio: r.ratio,
    ratioNote: 'ours / Hugging Face',
  }));
  const eager = gpu.rows.find((r) => /fine-tune step, eager/.test(r.what));
  return {
    name,
    figure:
      `CPU demo: fine-tune ${fmt(finetune.e2e_train_time, 1)} s + eval ${fmt(evaluation?.e2e_inference_time ?? NaN, 1)} s, ` +
      `dev F1 ${fmt(f1, 1)} / EM ${fmt(scores.exact_match, 1)} (pretraining ${fmt(pretrain.e2e_train_time, 1)} s, ` +
      `whole job ${fmt(wall, 1)} s)` +
      (eager ? `; GPU fine-tune ${fmt(eager.ratio, 2)}× Hugging Face (${gpuNote})` : ''),
    ratio,
    ratioOf: `F1 / ${readmeF1} (README)`,
    target: `F1 ≥ ${targetF1}`,
    pass: f1 >= targetF1,
    rows: [
      { what: 'CPU demo fine-tune, training (s)', berth: finetune.e2e_train_time },
      { what: 'CPU demo fine-tune, dev F1', berth: f1, ratio, ratioNote: `/ ${readmeF1}` },
      { what: 'CPU demo pretraining (s)', berth: pretrain.e2e_train_time },
      ...gpuRows,
    ],
    notes: gpu.rows.length ? [] : ['no GPU figures found in the GPU section of bench/RESULTS.md'],
    summaries,
    gpu,
    wall,
  };
});
