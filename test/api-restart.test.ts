// The API goes away while a worker needs it — it restarts, as on an upgrade — and no job fails for it: a worker
// waits to fetch a job's dataset until the API is back, and an attempt that ended while the API was down uploads its
// results when it returns. The worker reaches the API through a TCP proxy that, while the API is "away", cuts every
// connection it has and closes every new one at once.
import type { Dataset } from '@berth/contracts';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { fixtureJob, startTestStack, startTestWorker, submit, waitForEnd, type TestStack } from './support/stack.js';

let stack: TestStack;
let proxy: Server;
let proxyUrl: string;
let away = false;
const open = new Set<Socket>();
const workers: { close(): Promise<void> }[] = [];
beforeAll(async () => {
  stack = await startTestStack('api-restart', { worker: false });
  const api = new URL(stack.url);
  proxy = createServer((client) => {
    client.on('error', () => {});
    if (away) return void client.destroy();
    const upstream = connect(Number(api.port), api.hostname);
    upstream.on('error', () => client.destroy());
    for (const s of [client, upstream]) {
      open.add(s);
      s.on('close', () => open.delete(s));
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  proxyUrl = `http://127.0.0.1:${(proxy.address() as { port: number }).port}`;
});
afterAll(async () => {
  for (const w of workers) await w.close();
  proxy?.close();
  await stack?.close();
});

/** The API is away for `ms`: what is open is cut, and every new connection is reset until it is back. */
async function apiAway(ms: number): Promise<void> {
  away = true;
  for (const s of open) s.destroy();
  await new Promise((r) => setTimeout(r, ms));
  away = false;
}

const worker = () => {
  const w = startTestWorker(stack.prefix, { api: { ...stack.workerApi, url: proxyUrl }, apiGraceMs: 60_000 });
  workers.push(w);
  return w.ready;
};

test('a job placed while the API is away fetches its dataset once the API is back, and succeeds', async () => {
  const res = await stack.alice.fetch('/v1/datasets?name=notes&format=corpus&filename=notes.txt', {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream' },
    body: 'one line of text\nand another\n',
  });
  const dataset = (await res.json()) as Dataset;
  const { body } = await submit(
    stack.alice,
    fixtureJob(['sh', '-c', 'cat /data/notes.txt'], { inputs: { dataset: dataset.id } }),
  );
  // The worker starts while the API is down: it takes the job from Redis and has to wait for its input.
  const back = apiAway(4000);
  await worker();
  await back;
  const done = await waitForEnd(stack.alice, body.id, 60_000);
  expect([done.state, done.attempt, done.message]).toEqual(['succeeded', 1, undefined]);
  expect(await (await stack.alice.fetch(`/v1/jobs/${body.id}/logs`)).text()).toBe('one line of text\nand another\n');
}, 120_000);

test('an attempt that ends while the API is away uploads its results when it is back', async () => {
  const { body } = await submit(
    stack.alice,
    fixtureJob(['sh', '-c', 'sleep 2; echo weights > /results/model.bin; echo done']),
  );
  for (let i = 0; i < 100; i++) {
    const job = await (await stack.alice.fetch(`/v1/jobs/${body.id}`)).json();
    if ((job as { state: string }).state === 'running') break;
    await new Promise((r) => setTimeout(r, 100));
  }
  // Away for longer than the job has left to run: its end waits in `uploading` for the API.
  await apiAway(5000);
  const done = await waitForEnd(stack.alice, body.id, 60_000);
  expect([done.state, done.attempt, done.reason]).toEqual(['succeeded', 1, undefined]);
  const model = await stack.alice.fetch(`/v1/jobs/${body.id}/artifacts/model.bin`);
  expect(await model.text()).toBe('weights\n');
}, 120_000);
