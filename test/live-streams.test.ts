// Metrics, caps, GPU telemetry and shared followers on the real engine: DLLogger lines in both formats become series
// and a summary; a capped log says where it was cut and the full log stays in a file; 200 followers share a reader.
import type { JobRecord, MetricSeries } from '@berth/contracts';
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { NvidiaSmiInventory } from '../apps/worker/src/gpu/inventory.js';
import { GpuTelemetry } from '../apps/worker/src/gpu/telemetry.js';
import { testRedisUrl } from './support/env.js';
import {
  fixtureJob,
  manifestsDir,
  logTexts,
  readEvents,
  startTestStack,
  submit,
  waitForEnd,
  type TestStack,
} from './support/stack.js';

const h200 = resolve(__dirname, 'fixtures/nvidia-smi-h200');
const h200Uuid = 'GPU-e04940e4-4467-8624-647f-1be10c338fe5';

// A recipe like NVIDIA's DLE ones (their DLLogger text on stdout), with the fixture image so it runs here.
const textRecipe = `id: dll-text-fixture
title: DLLogger text fixture
description: Prints NVIDIA DLLogger stdout-backend lines.
image: { param: image }
command: ["{{command}}"]
parameters:
  image: { type: image, required: true, description: the image }
  command: { type: argv, required: true, description: the argument list }
resources:
  gpus: { default: 0, min: 0, max: 8 }
  shmSize: 64m
mounts:
  - { target: /results, source: results, readOnly: false, required: true }
metrics:
  - { kind: dllogger-text }
`;

let stack: TestStack;
let recipes: string;
beforeAll(async () => {
  recipes = mkdtempSync(join(tmpdir(), 'berth-recipes-'));
  copyFileSync(join(manifestsDir, 'custom.yaml'), join(recipes, 'custom.yaml'));
  writeFileSync(join(recipes, 'dll-text-fixture.yaml'), textRecipe);
  // nvidia-smi can't run here: replay the real H200 capture for the query the sampler sends.
  const smi = join(recipes, 'nvidia-smi');
  writeFileSync(smi, `#!/bin/sh\ncat '${join(h200, 'nvidia-smi-query.csv')}'\n`);
  chmodSync(smi, 0o755);
  stack = await startTestStack('streams', {
    manifestsDir: recipes,
    mode: 'slots',
    gpus: h200Uuid,
    caps: { logLines: 100, metricPoints: 10_000 },
    // The test follows 200 streams at once as one member, past the default per-user cap.
    apiConfig: { maxStreamsPerUser: 256 },
    gpuTelemetry: new GpuTelemetry(new NvidiaSmiInventory({ binary: smi }), 500),
  });
});
afterAll(async () => stack.close());

async function metrics(id: string): Promise<{ series: MetricSeries[]; latest: Record<string, number> }> {
  return (await stack.alice.fetch(`/v1/jobs/${id}/metrics?points=50`)).json() as never;
}

const dlll = (o: object) => `DLLL ${JSON.stringify({ timestamp: '1', datetime: 'x', elapsedtime: '0', ...o })}`;

test('DLLogger JSON lines (any job) become series with units, and the summary lands on the job record', async () => {
  const head = [
    dlll({ type: 'METADATA', metric: 'average_loss', metadata: { unit: null } }),
    dlll({ type: 'METADATA', metric: 'training_sequences_per_second', metadata: { unit: 'sequences/s' } }),
    dlll({ type: 'LOG', step: 'PARAMETER', data: { learning_rate: 0.0001, model: 'bert-tiny' } }),
  ];
  const summary = dlll({
    type: 'LOG',
    step: [],
    data: { final_loss: 4.05, training_sequences_per_second: 812.5, F1: 88.2 },
  });
  // 120 step records, average_loss falling from 10 by 0.05 a step (arguments are capped at 8 KiB: awk writes them).
  const steps =
    'awk \'BEGIN { for (i = 1; i <= 120; i++) printf "DLLL {\\"timestamp\\": \\"1\\", \\"type\\": \\"LOG\\", ' +
    '\\"step\\": [0, %d], \\"data\\": {\\"average_loss\\": %g, \\"step_loss\\": 9}}\\n", i, 10 - (i - 1) / 20 }\'';
  const script = [...head.map((l) => `echo '${l}'`), steps, `echo '${summary}'`].join('; ');
  const { status, body } = await submit(stack.alice, fixtureJob(['sh', '-c', script]));
  expect(status).toBe(201);
  const job = await waitForEnd(stack.alice, body.id);
  expect(job.state).toBe('succeeded');
  expect(job.summary).toEqual({ final_loss: 4.05, training_sequences_per_second: 812.5, F1: 88.2 });

  const m = await metrics(body.id);
  const loss = m.series.find((s) => s.name === 'average_loss')!;
  expect(loss).toMatchObject({ count: 120, x: 'step', latest: 4.05, kind: 'step' });
  expect(loss.points).toHaveLength(50);
  expect(loss.points[0]).toEqual([1, 10 - 0 / 20]);
  expect(loss.points.at(-1)).toEqual([120, 4.05]);
  expect(m.series.find((s) => s.name === 'training_sequences_per_second')).toMatchObject({
    unit: 'sequences/s',
    kind: 'summary',
  });
  expect(m.latest.learning_rate).toBe(0.0001);
});

test('DLLogger text lines need the recipe rule: several pairs per line, PARAMETER, None units', async () => {
  const text = [
    'DLL 2026-11-26 10:00:00.000000 - PARAMETER seed : 42  batch_size : 32 ',
    'DLL 2026-11-26 10:00:01.000000 - (0, 10) average_loss : 7.5  learning_rate : 0.0001 None ',
    'DLL 2026-11-26 10:00:02.000000 - (0, 20) average_loss : 6.25  learning_rate : 0.0002 None ',
    'DLL 2026-11-26 10:00:03.000000 - () e2e_train_time : 12.5 s  final_loss : 6.1 ',
  ];
  const { body } = await submit(stack.alice, {
    manifest: 'dll-text-fixture',
    params: { image: 'berth/fixture:dev', command: ['sh', '-c', text.map((l) => `echo '${l}'`).join('; ')] },
  });
  const job = await waitForEnd(stack.alice, body.id);
  expect(job.summary).toEqual({ e2e_train_time: 12.5, final_loss: 6.1 });
  const m = await metrics(body.id);
  expect(m.series.find((s) => s.name === 'average_loss')!.points).toEqual([
    [10, 7.5],
    [20, 6.25],
  ]);
  expect(m.series.find((s) => s.name === 'e2e_train_time')).toMatchObject({ unit: 's', latest: 12.5 });
  expect(m.series.find((s) => s.name === 'learning_rate')?.unit).toBeUndefined();
});

test('a capped live log starts with a truncated marker; the attempt’s log file has every line', async () => {
  // 20 reads of 50 lines each: 20 entries, of which the 100-line cap keeps the newest.
  const script = 'for i in $(seq 0 19); do seq $((i * 50 + 1)) $((i * 50 + 50)); sleep 0.05; done';
  const { body } = await submit(stack.alice, fixtureJob(['sh', '-c', script]));
  await waitForEnd(stack.alice, body.id);
  const text = await (await stack.alice.fetch(`/v1/jobs/${body.id}/logs`)).text();
  const [marker, ...kept] = text.trimEnd().split('\n');
  expect(marker).toMatch(/^\[berth\] \d+ older lines are not in the live log; they are in the attempt's log artifact$/);
  expect(kept.at(-1)).toBe('1000');
  expect(kept.length).toBeLessThan(1000);
  // Contiguous up to the end: the cap drops only the oldest.
  expect(kept).toEqual(Array.from({ length: kept.length }, (_, i) => String(1001 - kept.length + i)));
  const file = readFileSync(join(stack.dataDir, 'logs', body.id, 'a1.log'), 'utf8');
  expect(file).toBe(Array.from({ length: 1000 }, (_, i) => `${i + 1}\n`).join(''));
  const tail = await (await stack.alice.fetch(`/v1/jobs/${body.id}/logs?tail=3`)).text();
  expect(tail).toBe('998\n999\n1000\n');
});

test('while a GPU job runs, its GPU is sampled into gpu.* series (nvidia-smi replayed from an H200)', async () => {
  const { body } = await submit(stack.alice, fixtureJob(['sleep', '2'], { resources: { gpus: 1 } }));
  const job = await waitForEnd(stack.alice, body.id);
  expect(job.attempts[0]!.gpus).toEqual([h200Uuid]);
  const m = await metrics(body.id);
  const names = m.series.map((s) => s.name);
  expect(names).toEqual(
    expect.arrayContaining(['gpu.0.utilization', 'gpu.0.memory_used', 'gpu.0.power', 'gpu.0.temperature']),
  );
  expect(m.latest['gpu.0.memory_total']).toBe(143771);
  expect(m.latest['gpu.0.power']).toBeCloseTo(80.66);
  expect(m.series.find((s) => s.name === 'gpu.0.power')).toMatchObject({ unit: 'W', x: 'time', kind: 'gpu' });
});

test('200 followers of one job all receive every line, through one shared Redis reader', async () => {
  const { body } = await submit(stack.alice, fixtureJob(['sh', '-c', 'sleep 2; seq 1 60']));
  const followers = Array.from({ length: 200 }, () => readEvents(stack.alice, `/v1/jobs/${body.id}/logs?follow=true`));
  // While they follow, this API process holds one blocking reader for the job, not 200.
  await new Promise((r) => setTimeout(r, 1000));
  const clients = execFileSync('redis-cli', ['-u', testRedisUrl(), 'CLIENT', 'LIST'], { encoding: 'utf8' });
  expect(clients.split('\n').filter((l) => l.includes('name=berth-api-follow')).length).toBeLessThanOrEqual(1);
  const all = await Promise.all(followers);
  const expected = Array.from({ length: 60 }, (_, i) => String(i + 1));
  for (const events of all) {
    expect(logTexts(events)).toEqual(expected);
    expect(events.at(-1)?.event).toBe('end');
  }
});

test('metrics follow as SSE to the end, and /v1/events reports each state change of a job', async () => {
  const states = readEvents(stack.alice, `/v1/events`, {}, { count: 'state', after: 5 });
  await new Promise((r) => setTimeout(r, 300));
  const lines = Array.from({ length: 5 }, (_, i) => dlll({ type: 'LOG', step: [0, i], data: { step_loss: i } }));
  const { body } = await submit(stack.alice, fixtureJob(['sh', '-c', lines.map((l) => `echo '${l}'`).join('; ')]));
  expect(body.id).toBeDefined();
  const followed = await readEvents(stack.alice, `/v1/jobs/${body.id}/metrics?follow=true`);
  expect(followed.filter((e) => e.event === 'metric').map((e) => JSON.parse(e.data).value)).toEqual([0, 1, 2, 3, 4]);
  expect(followed.at(-1)?.event).toBe('end');
  const changes = (await states).map((e) => JSON.parse(e.data) as { job: string; state: JobRecord['state'] });
  expect(changes.filter((c) => c.job === body.id).map((c) => c.state)).toEqual([
    'pulling',
    'starting',
    'running',
    'uploading',
    'succeeded',
  ]);
});

test('Prometheus: the API reports jobs by state and followers; the worker reports log volume, pulls and GPUs', async () => {
  const api = await (await stack.admin.fetch(`/metrics`)).text();
  expect(api).toMatch(/^berth_jobs\{state="succeeded"\} [1-9]\d*$/m);
  expect(api).toMatch(/^berth_sse_clients 0$/m);
  expect(api).toMatch(/^berth_api_redis_rtt_seconds_count [1-9]/m);
  expect(api).toMatch(/^berth_http_requests_total\{route="\/v1\/jobs",status="201"\} [1-9]/m);

  const server = await stack.worker!.metrics.serve(0, '127.0.0.1');
  try {
    const { port } = server.address() as { port: number };
    const worker = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const lines = Number(/^berth_log_lines_total (\d+)$/m.exec(worker)?.[1]);
    expect(lines).toBeGreaterThan(1000);
    expect(worker).toMatch(/^berth_pulls_total\{result="present"\} [1-9]/m);
    expect(worker).toMatch(/^berth_worker_gpus\{state="free"\} 1$/m);
    expect(worker).toMatch(/^berth_run_seconds_count\{outcome="succeeded"\} [1-9]/m);
    expect(worker).toMatch(/^berth_worker_redis_up 1$/m);
  } finally {
    server.close();
  }
});
