// Domain data in, a verified checkpoint out: datasets uploaded (checked, unsafe archives refused), a pretraining on the
// corpus, a SQuAD fine-tune from its model (initFrom), and the downloaded checkpoint loads in PyTorch.
import type { Artifact, Dataset, JobRecord } from '@berth/contracts';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startTestStack, submit, waitForEnd, type TestStack } from './support/stack.js';

const demo = resolve(__dirname, '../payloads/bert/demo/data');
const work = mkdtempSync(join(tmpdir(), 'berth-datasets-'));
let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack('datasets');
});
afterAll(async () => stack.close());

async function upload(
  body: Buffer,
  query: Record<string, string>,
): Promise<{ status: number; body: Dataset & { error?: { code: string; details?: Record<string, unknown> } } }> {
  const res = await stack.alice.fetch(`/v1/datasets?${new URLSearchParams(query)}`, {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream' },
    body: new Uint8Array(body),
  });
  return { status: res.status, body: await res.json() };
}

let corpus: Dataset;
let squad: Dataset;
test('a corpus file and a SQuAD archive are uploaded, unpacked and counted', async () => {
  const c = await upload(readFileSync(join(demo, 'corpus.txt')), {
    name: 'demo corpus',
    format: 'corpus',
    filename: 'corpus.txt',
  });
  expect(c.status).toBe(201);
  corpus = c.body;
  expect(corpus).toMatchObject({ format: 'corpus', files: 1, report: { ok: true } });
  expect(corpus.report.examples).toBeGreaterThan(10);
  const archive = join(work, 'squad.tar.gz');
  execFileSync('tar', ['-czf', archive, '-C', demo, 'train.json', 'dev.json']);
  const s = await upload(readFileSync(archive), { name: 'demo squad', format: 'squad' });
  expect(s.status).toBe(201);
  squad = s.body;
  expect(squad).toMatchObject({ format: 'squad', files: 2, report: { ok: true } });
  expect(squad.sha256).toBe(createHash('sha256').update(readFileSync(archive)).digest('hex'));
  const listed = (await (await stack.alice.fetch(`/v1/datasets`)).json()) as { datasets: Dataset[] };
  expect(listed.datasets.map((d) => d.id)).toEqual(expect.arrayContaining([corpus.id, squad.id]));
});

test('a dataset with format errors is refused with file and line; an unsafe archive never writes outside', async () => {
  const bad = await upload(Buffer.from('{"data": [\n  {"paragraphs": [\n    oops\n]}]}\n'), {
    name: 'broken',
    format: 'squad',
    filename: 'train.json',
  });
  expect(bad.status).toBe(422);
  expect(bad.body.error?.code).toBe('DATASET_INVALID');
  const report = bad.body.error?.details?.report as { errors: { file: string; line?: number }[] };
  expect(report.errors[0]).toMatchObject({ file: 'train.json', line: 3 });

  const slip = join(work, 'slip.zip');
  execFileSync('/usr/bin/python3', [
    '-c',
    `import zipfile; z = zipfile.ZipFile('${slip}', 'w'); z.writestr('../../escaped.txt', 'x'); z.close()`,
  ]);
  const unsafe = await upload(readFileSync(slip), { name: 'slip', format: 'corpus' });
  expect(unsafe.status).toBe(422);
  expect(unsafe.body.error?.details).toMatchObject({ reason: 'ARCHIVE_UNSAFE' });
  expect(execFileSync('find', ['/tmp', '-name', 'escaped.txt'], { encoding: 'utf8' })).toBe('');
});

test('pretrain on the corpus, fine-tune from it with the defaults, download the checkpoint: sha256 matches, it loads', async () => {
  const pretrain = await submit(stack.alice, {
    manifest: 'bert-pretrain',
    params: { train_file: 'corpus.txt', model_config: 'tiny', max_steps: 10, batch_size: 8, precision: 'fp32' },
    resources: { gpus: 0 },
    inputs: { dataset: corpus.id },
  });
  expect(pretrain.status).toBe(201);
  // The dataset is in use: it can't be deleted now.
  expect((await stack.alice.fetch(`/v1/datasets/${corpus.id}`, { method: 'DELETE' })).status).toBe(409);
  const pre: JobRecord = await waitForEnd(stack.alice, pretrain.body.id, 240_000);
  expect([pre.state, pre.reason, pre.message]).toEqual(['succeeded', undefined, undefined]);

  const finetune = await submit(stack.alice, {
    manifest: 'bert-finetune-squad',
    // No init_from and no artifact: the recipe's /init holds the pretraining job's model folder.
    params: {
      train_file: 'train.json',
      predict_file: 'dev.json',
      max_steps: 6,
      batch_size: 8,
      max_seq_length: 128,
      doc_stride: 64,
      precision: 'fp32',
    },
    resources: { gpus: 0 },
    inputs: { dataset: squad.id, initFrom: { job: pre.id } },
  });
  expect(finetune.status).toBe(201);
  expect(finetune.body.spec.inputs?.initFrom).toEqual({ job: pre.id, artifact: 'model' });
  const ft = await waitForEnd(stack.alice, finetune.body.id, 240_000);
  expect([ft.state, ft.reason, ft.message]).toEqual(['succeeded', undefined, undefined]);

  const artifacts = (
    (await (await stack.alice.fetch(`/v1/jobs/${ft.id}/artifacts`)).json()) as { artifacts: Artifact[] }
  ).artifacts;
  const state = artifacts.find((a) => /checkpoints\/step-\d+\/state\.pt$/.test(a.path))!;
  expect(state).toBeDefined();
  const res = await stack.alice.fetch(`/v1/jobs/${ft.id}/artifacts/${state.path}`);
  const bytes = Buffer.from(await res.arrayBuffer());
  expect(createHash('sha256').update(bytes).digest('hex')).toBe(res.headers.get('x-berth-sha256'));
  expect(res.headers.get('x-berth-sha256')).toBe(state.sha256);
  const file = join(work, 'state.pt');
  writeFileSync(file, bytes);
  const loaded = execFileSync(
    '/usr/bin/python3',
    ['-c', `import torch; s = torch.load('${file}', map_location='cpu'); print(sorted(s.keys())[:3], 'model' in s)`],
    { encoding: 'utf8' },
  );
  expect(loaded.trim().endsWith('True')).toBe(true);

  // Done with it: now the corpus can go.
  expect((await stack.alice.fetch(`/v1/datasets/${corpus.id}`, { method: 'DELETE' })).status).toBe(204);
  expect((await stack.alice.fetch(`/v1/datasets/${corpus.id}`)).status).toBe(404);
}, 500_000);
