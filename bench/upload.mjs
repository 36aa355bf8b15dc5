// Checkpoint upload (issue 19, item 1): how fast the worker's uploader sends a 1 GiB checkpoint to the API, reading it
// through ResultsTree (every component opened relative to a folder descriptor, never by path), against `cp` of the
// same file into the API's data dir (same filesystem, so the same page cache and disk on both sides).
//
//   npm run build && node bench/upload.mjs
//
// It starts redis-server, the API and a worker (startBerth), runs a fixture job that sleeps so that an attempt owns
// the job (uploads are fenced by attempt), then, as the worker account, uploads
// <scratch>/results/checkpoints/step-1/model.bin with the built ArtifactUploader. Rounds alternate cp and berth (one
// untimed warm-up of each); the figure is the median MB/s of each, the ratio berth / cp. Target: >= 0.07, which is
// 0.7 x the ratio the path-based uploader had before ResultsTree on this kind of machine (bench/RESULTS.md).
//   BENCH_UP_MIB (default 1024), BENCH_UP_ROUNDS (default 5)
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, openSync, closeSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import process from 'node:process';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { getJson, repo, serviceToken, startBerth, submitJob } from './lib/berth.mjs';
import { requireImage } from './lib/engine.mjs';
import { fixtureImage, fmt, median, runBench } from './lib/report.mjs';

const name = 'upload';
const MiB = 1024 * 1024;
const size = Number(process.env.BENCH_UP_MIB ?? 1024) * MiB;
const rounds = Number(process.env.BENCH_UP_ROUNDS ?? 5);
const target = 0.07;
const mbps = (ms) => size / 1e6 / (ms / 1000);

await runBench(name, async (cleanups) => {
  await requireImage(fixtureImage);
  const { ArtifactUploader } = await import(join(repo, 'apps/worker/dist/artifacts/uploader.js'));
  const { ResultsTree } = await import(join(repo, 'apps/worker/dist/artifacts/results-tree.js'));
  const berth = await startBerth(name);
  cleanups.push(berth.stop);
  const scratch = mkdtempSync(join(tmpdir(), 'berth-bench-upload-'));
  cleanups.push(async () => rmSync(scratch, { recursive: true, force: true }));

  const jobId = await submitJob(berth.url, fixtureImage, ['sleep', '600']);
  for (let i = 0; (await getJson(`${berth.url}/v1/jobs/${jobId}`)).state !== 'running'; i++) {
    if (i > 600) throw new Error('the sleeping job never ran');
    await sleep(100);
  }
  const api = { url: berth.url, token: await serviceToken(berth.url, `${berth.prefix}-uploader`, 'worker') };

  const results = join(scratch, 'results');
  const file = join(results, 'checkpoints/step-1/model.bin');
  mkdirSync(join(results, 'checkpoints/step-1'), { recursive: true });
  const block = randomBytes(4 * MiB);
  const fd = openSync(file, 'w');
  for (let done = 0; done < size; done += block.length) writeSync(fd, block, 0, Math.min(block.length, size - done));
  closeSync(fd);

  const copy = join(berth.dataDir, 'cp-copy.bin');
  const cp = () => {
    const t = performance.now();
    execFileSync('cp', [file, copy]);
    const ms = performance.now() - t;
    rmSync(copy);
    return ms;
  };
  const tree = new ResultsTree(results, { maxBytes: 2 * size, maxFiles: 100 });
  const upload = async () => {
    // A new uploader each round: it remembers what it sent and would skip an unchanged file.
    const uploader = new ArtifactUploader(api, jobId, 1, tree, []);
    const t = performance.now();
    const sent = await uploader.uploadCheckpoints(await tree.scan());
    if (sent !== 1) throw new Error(`the uploader sent ${sent} files, not 1`);
    return performance.now() - t;
  };
  cp();
  await upload();
  const cpMs = [];
  const upMs = [];
  for (let r = 0; r < rounds; r++) {
    cpMs.push(cp());
    upMs.push(await upload());
    console.log(`round ${r + 1}: cp ${fmt(mbps(cpMs.at(-1)))} MB/s, berth ${fmt(mbps(upMs.at(-1)))} MB/s`);
  }
  const artifact = (await getJson(`${berth.url}/v1/jobs/${jobId}/artifacts`)).artifacts.find(
    (a) => a.path === 'checkpoints/step-1/model.bin',
  );
  if (artifact?.size !== size) throw new Error(`the stored checkpoint is ${artifact?.size} bytes, not ${size}`);
  const berthMbps = mbps(median(upMs));
  const cpMbps = mbps(median(cpMs));
  const ratio = berthMbps / cpMbps;
  return {
    name,
    figure: `${fmt(berthMbps)} MB/s uploading a ${size / MiB} MiB checkpoint (cp ${fmt(cpMbps)} MB/s)`,
    ratio,
    ratioOf: 'berth upload / cp of the same file',
    target: `>= ${target}`,
    pass: ratio >= target,
    rows: [{ what: `upload of a ${size / MiB} MiB checkpoint, MB/s`, berth: berthMbps, baseline: cpMbps, ratio }],
  };
});
