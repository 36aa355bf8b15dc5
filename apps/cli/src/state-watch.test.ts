// The state lines a follower is shown, read from an HTTP server that answers GET /v1/jobs/<id> with the records a
// job goes through: queued behind another job, its reason changing, then running, a retry, and the end.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { JobRecord, StateChange } from '@berth/contracts';
import { ApiClient } from './api-client.js';
import { StateWatch } from './state-watch.js';

const at = '2026-12-03T10:00:00.000Z';
const id = 'job_aaaaaaaaaaaaaaaaaaaa';

function record(history: StateChange[], extra: Partial<JobRecord> = {}): JobRecord {
  return {
    id,
    owner: 'usr_alice',
    spec: { manifest: 'bert-finetune-squad', params: {}, resources: {} },
    state: history.at(-1)!.state,
    attempt: history.at(-1)!.attempt,
    createdAt: at,
    updatedAt: at,
    attempts: [
      { attempt: 1, worker: 'gpu-a', gpus: [], startedAt: at },
      { attempt: 2, worker: 'gpu-b', gpus: [], startedAt: at },
    ],
    history,
    ...extra,
  };
}

const queued: StateChange = { state: 'queued', at, attempt: 0 };
const run1: StateChange[] = [
  { state: 'pulling', at, attempt: 1 },
  { state: 'starting', at, attempt: 1 },
  { state: 'running', at, attempt: 1 },
];
const retry: StateChange = { state: 'queued', at, attempt: 1, reason: 'WORKER_LOST' };
const run2: StateChange[] = [
  { state: 'starting', at, attempt: 2 },
  { state: 'running', at, attempt: 2 },
  { state: 'uploading', at, attempt: 2 },
];
const done: StateChange = { state: 'succeeded', at, attempt: 2 };

let server: Server;
let answers: JobRecord[];
let api: ApiClient;
beforeAll(async () => {
  server = createServer((_req, res) => {
    const next = answers.length > 1 ? answers.shift()! : answers[0]!;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(next));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  api = new ApiClient(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
});
afterAll(() => new Promise((r) => server.close(r)));

let said: string[];
beforeEach(() => {
  said = [];
  jest.spyOn(process.stderr, 'write').mockImplementation((line) => said.push(String(line)) > 0);
});
afterEach(() => jest.restoreAllMocks());

/** Watches until every answer but the last was read, then finishes with `ended`; what was said on stderr. */
async function watch(records: JobRecord[], ended: JobRecord): Promise<string> {
  answers = records;
  const watcher = new StateWatch(api, id, 10);
  watcher.start();
  while (answers.length > 1) await new Promise((r) => setTimeout(r, 5));
  await new Promise((r) => setTimeout(r, 30));
  await watcher.finish(ended);
  return said.join('');
}

test('says where a queued job waits and why, each change of reason, then every state it passed through', async () => {
  const waiting = (reason: string, position: number) =>
    record([queued], { queue: { position, reason, placeable: true } });
  const out = await watch(
    [
      waiting('behind 1 job for 8 GPUs', 2),
      waiting('behind 1 job for 8 GPUs', 2),
      waiting('next to start: waits for 8 free GPUs', 1),
      record([queued, ...run1]),
    ],
    record([queued, ...run1, retry, ...run2, done]),
  );
  expect(out).toBe(
    [
      '[berth] queued #2: behind 1 job for 8 GPUs',
      '[berth] still queued #1: next to start: waits for 8 free GPUs',
      '[berth] pulling the bert-finetune-squad image on gpu-a',
      '[berth] starting on gpu-a (attempt 1)',
      '[berth] running on gpu-a (attempt 1)',
      '[berth] queued to retry (attempt 1 ended WORKER_LOST)',
      '[berth] starting on gpu-b (attempt 2)',
      '[berth] running on gpu-b (attempt 2)',
      '[berth] uploading',
      '',
    ].join('\n'),
  );
});

test('a follower that comes late is told only the state the job is in, and nothing for a job that has ended', async () => {
  const running = record([queued, ...run1]);
  expect(await watch([running, running], running)).toBe('[berth] running on gpu-a (attempt 1)\n');
  said = [];
  const ended = record([queued, ...run1, { state: 'failed', at, attempt: 1, reason: 'EXIT_NONZERO' }]);
  expect(await watch([ended, ended], ended)).toBe('');
});
