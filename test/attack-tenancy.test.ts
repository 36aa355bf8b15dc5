// Attacks across tenants and attempts, on the real API and real Redis: another member's job ids in the workers
// listing, a written-off attempt that keeps uploading, uploads after the job ended, open streams that outlive their
// token or signed URL, and more concurrent streams than a user may hold.
// A worker is played through the store's own classes (register, claim, transition) so that which attempt owns the
// job, and when it is written off, is exact rather than a race against a container.
import { parseEvents, type Artifact } from '@berth/contracts';
import {
  AuthStore,
  connectRedis,
  endAttempt,
  hashToken,
  JobQueues,
  JobStore,
  keys,
  WorkerRegistry,
  type Redis,
} from '@berth/store';
import Fastify, { type FastifyInstance } from 'fastify';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { installAuth, type Auth } from '../apps/api/src/auth/auth.js';
import { SseClients } from '../apps/api/src/streams/sse.js';
import { testRedisUrl } from './support/env.js';
import { fixtureJob, startTestStack, submit, type TestClient, type TestStack } from './support/stack.js';
import { claimAs } from './support/claim.js';

let stack: TestStack;
let redis: Redis;
let apiDataDir: string;
const workerId = 'w-played';

beforeAll(async () => {
  apiDataDir = mkdtempSync(join(tmpdir(), 'berth-attack-tenancy-'));
  stack = await startTestStack('attack-tenancy', { worker: false, apiDataDir, apiConfig: { maxStreamsPerUser: 3 } });
  redis = connectRedis(testRedisUrl());
  await new WorkerRegistry(redis, stack.prefix).register({
    id: workerId,
    host: 'played',
    mode: 'slots',
    concurrency: 8,
    gpus: [],
    gpuSource: 'none',
    startedAt: new Date().toISOString(),
  });
});
afterAll(async () => {
  redis?.disconnect();
  await stack?.close();
});

/** Places queued jobs on the played worker and moves the placed one to `running`, as a worker would. */
async function runAs(jobId: string): Promise<number> {
  const claims = await claimAs(redis, stack.prefix, { id: workerId, mode: 'slots', concurrency: 8, gpus: [] }, 10);
  const claim = claims.find((c) => c.jobId === jobId);
  if (!claim) throw new Error(`job ${jobId} was not placed`);
  const store = new JobStore(redis, stack.prefix);
  const owner = `${workerId}|${claim.attempt}`;
  for (const state of ['pulling', 'starting', 'running'] as const) {
    const t = await store.transition(
      jobId,
      state === 'pulling'
        ? { state, attempt: claim.attempt, worker: workerId, newAttempt: { worker: workerId, gpus: [] } }
        : { state },
      { owner },
    );
    if (!t.ok) throw new Error(`${state}: ${t.refusal}`);
  }
  return claim.attempt;
}

/** The attempt is written off (its worker was lost): the job goes back to the queue, as the housekeeper does it. */
/** Writes the played worker's attempt off as the housekeeper does: WORKER_LOST, and a new attempt queued in BullMQ. */
async function writeOff(jobId: string, attempt: number): Promise<void> {
  const store = new JobStore(redis, stack.prefix);
  const queues = new JobQueues(redis, stack.prefix);
  try {
    const t = await endAttempt(
      { store, queues, token: '0' },
      (await store.get(jobId))!,
      `${workerId}|${attempt}`,
      { state: 'failed', reason: 'WORKER_LOST' },
      { infraRetries: 5, backoffMs: 0 },
    );
    if (!t.ok || t.record.state !== 'queued') throw new Error(`write-off: ${t.ok ? t.record.state : t.refusal}`);
  } finally {
    await queues.close();
  }
}

async function upload(jobId: string, path: string, attempt: number, body: string): Promise<Response> {
  return fetch(`${stack.url}/v1/jobs/${jobId}/artifacts/${path}`, {
    method: 'PUT',
    headers: {
      authorization: `Bearer ${stack.workerApi.token}`,
      'content-type': 'application/octet-stream',
      'x-berth-attempt': String(attempt),
      'x-berth-kind': path.startsWith('checkpoints/') ? 'checkpoint' : 'other',
    },
    body,
  });
}

const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const blobs = (jobId: string): string[] => {
  const dir = join(apiDataDir, 'artifacts', jobId);
  return existsSync(dir) ? readdirSync(dir) : [];
};
async function listed(client: TestClient, jobId: string): Promise<Artifact[]> {
  return ((await (await client.fetch(`/v1/jobs/${jobId}/artifacts`)).json()) as { artifacts: Artifact[] }).artifacts;
}

test("GET /v1/workers shows a member none of another member's running job ids", async () => {
  const { body: job } = await submit(stack.alice, fixtureJob(['true']));
  await runAs(job.id);
  const asBob = await (await stack.bob.fetch('/v1/workers')).text();
  const asAlice = await (await stack.alice.fetch('/v1/workers')).text();
  const asAdmin = await (await stack.admin.fetch('/v1/workers')).text();
  expect(asAlice).toContain(job.id);
  expect(asAdmin).toContain(job.id);
  expect(asBob).not.toContain(job.id);
  // The same walk over every other listing bob can call.
  for (const path of ['/v1/queue', '/v1/jobs', '/v1/jobs?state=running', '/v1/datasets', '/v1/pipelines']) {
    expect({ path, leaked: (await (await stack.bob.fetch(path)).text()).includes(job.id) }).toEqual({
      path,
      leaked: false,
    });
  }
});

test('a written-off attempt cannot upload: 409 ATTEMPT_FENCED, no blob, no index entry; latest stays current', async () => {
  const { body: job } = await submit(stack.alice, fixtureJob(['true']));
  const first = await runAs(job.id);
  expect((await upload(job.id, 'checkpoints/step-1/state.pt', first, 'first attempt, step 1')).status).toBe(201);
  await writeOff(job.id, first);

  // Written off and back in the queue: nothing the old attempt sends is taken.
  const queued = await upload(job.id, 'checkpoints/step-9/state.pt', first, 'stale while queued');
  expect(queued.status).toBe(409);
  expect(((await queued.json()) as { error: { code: string } }).error.code).toBe('ATTEMPT_FENCED');

  const second = await runAs(job.id);
  expect(second).toBe(first + 1);
  expect((await upload(job.id, 'checkpoints/step-2/state.pt', second, 'second attempt, step 2')).status).toBe(201);
  // The stale attempt races the live one with a higher step and with the live one's own path.
  const stale = await upload(job.id, 'checkpoints/step-50/state.pt', first, 'stale step 50');
  const overwrite = await upload(job.id, 'checkpoints/step-2/state.pt', first, 'stale overwrite');
  const future = await upload(job.id, 'checkpoints/step-60/state.pt', second + 1, 'an attempt that never was');
  expect([stale.status, overwrite.status, future.status]).toEqual([409, 409, 409]);

  const all = await listed(stack.alice, job.id);
  expect(all.map((a) => `${a.path}@${a.attempt}`)).toEqual([
    'checkpoints/step-1/state.pt@1',
    'checkpoints/step-2/state.pt@2',
  ]);
  // Nothing stale is left on disk either.
  const onDisk = blobs(job.id);
  for (const body of ['stale while queued', 'stale step 50', 'stale overwrite', 'an attempt that never was']) {
    expect(onDisk).not.toContain(sha(body));
  }
  // `latest` is the live attempt's newest checkpoint (step 2), not the first attempt's, whatever their steps.
  await upload(job.id, 'checkpoints/step-1/state.pt', second, 'second attempt, step 1');
  const latest = await stack.alice.fetch(`/v1/jobs/${job.id}/artifacts/latest/state.pt`);
  expect(latest.status).toBe(200);
  expect(await latest.text()).toBe('second attempt, step 2');
});

test('latest resolves within the current attempt only, not to an older attempt with a higher step', async () => {
  const { body: job } = await submit(stack.alice, fixtureJob(['true']));
  const first = await runAs(job.id);
  expect((await upload(job.id, 'checkpoints/step-7/state.pt', first, 'first attempt, step 7')).status).toBe(201);
  await writeOff(job.id, first);
  const second = await runAs(job.id);
  expect((await upload(job.id, 'checkpoints/step-3/state.pt', second, 'second attempt, step 3')).status).toBe(201);
  const latest = await stack.alice.fetch(`/v1/jobs/${job.id}/artifacts/latest/state.pt`);
  expect(await latest.text()).toBe('second attempt, step 3');
});

test('nothing is accepted after the job ended, not even from its last attempt', async () => {
  const { body: job } = await submit(stack.alice, fixtureJob(['true']));
  const attempt = await runAs(job.id);
  const store = new JobStore(redis, stack.prefix);
  const owner = `${workerId}|${attempt}`;
  expect((await store.transition(job.id, { state: 'uploading' }, { owner })).ok).toBe(true);
  // Uploading is still the attempt's to do.
  expect((await upload(job.id, 'predictions.json', attempt, '{"f1": 90}')).status).toBe(201);
  const ended = await store.transition(job.id, { state: 'succeeded' }, { owner, release: workerId });
  expect(ended.ok).toBe(true);
  const late = await upload(job.id, 'predictions.json', attempt, '{"f1": 100}');
  expect(late.status).toBe(409);
  expect(((await late.json()) as { error: { code: string } }).error.code).toBe('ATTEMPT_FENCED');
  const all = await listed(stack.alice, job.id);
  expect(all.map((a) => a.sha256)).toEqual([sha('{"f1": 90}')]);
  expect(blobs(job.id)).not.toContain(sha('{"f1": 100}'));
});

test('an attempt written off while its upload streams in is refused at the index write, and its blob is removed', async () => {
  const { body: job } = await submit(stack.alice, fixtureJob(['true']));
  const attempt = await runAs(job.id);
  const head = 'x'.repeat(64 * 1024);
  const tail = 'y'.repeat(64 * 1024);
  let finish: () => void = () => {};
  const body = new ReadableStream<Uint8Array>({
    async start(controller) {
      controller.enqueue(new TextEncoder().encode(head));
      await new Promise<void>((r) => (finish = r));
      controller.enqueue(new TextEncoder().encode(tail));
      controller.close();
    },
  });
  const answer = fetch(`${stack.url}/v1/jobs/${job.id}/artifacts/checkpoints/step-5/state.pt`, {
    method: 'PUT',
    headers: {
      authorization: `Bearer ${stack.workerApi.token}`,
      'content-type': 'application/octet-stream',
      'x-berth-attempt': String(attempt),
      'x-berth-kind': 'checkpoint',
    },
    body,
    duplex: 'half',
  } as RequestInit);
  // The API has taken the first part (it passed every check made before the body), then the attempt is written off.
  for (let i = 0; i < 100 && !existsSync(join(apiDataDir, 'artifacts', '.tmp')); i++) await tick(20);
  await tick(100);
  await writeOff(job.id, attempt);
  finish();
  const res = await answer;
  expect(res.status).toBe(409);
  expect(((await res.json()) as { error: { code: string } }).error.code).toBe('ATTEMPT_FENCED');
  expect(await listed(stack.alice, job.id)).toEqual([]);
  expect(blobs(job.id)).not.toContain(sha(head + tail));
});

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Opened {
  status: number;
  /** The events until the server ends the stream or `waitMs` passes (then the client leaves). */
  events: Promise<{ event: string; data: string }[]>;
  leave(): void;
}

/** Opens an SSE follow and collects its events (heartbeats left out) until the server ends it or `waitMs` passes. */
async function open(url: string, headers: Record<string, string>, waitMs: number): Promise<Opened> {
  const ac = new AbortController();
  const res = await fetch(url, { headers, signal: ac.signal });
  const timer = setTimeout(() => ac.abort(), waitMs);
  const events = (async () => {
    const out: { event: string; data: string }[] = [];
    if (!res.body) return out;
    try {
      for await (const ev of parseEvents(res.body as unknown as AsyncIterable<Uint8Array>)) out.push(ev);
    } catch (err) {
      if (!ac.signal.aborted) throw err;
    } finally {
      clearTimeout(timer);
    }
    return out;
  })();
  return { status: res.status, events, leave: () => ac.abort() };
}

async function newToken(client: TestClient): Promise<{ id: string; token: string }> {
  const res = await stack.admin.fetch('/v1/tokens', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: `short-${Math.random()}`, user: client.user.id, expiresInDays: 1 }),
  });
  expect(res.status).toBe(201);
  return (await res.json()) as { id: string; token: string };
}

test('a member may hold only maxStreamsPerUser follows at once: the next answers 429 TOO_MANY_STREAMS', async () => {
  const { body: job } = await submit(stack.alice, fixtureJob(['true']));
  const url = `${stack.url}/v1/jobs/${job.id}/logs?follow=true`;
  const alice = { authorization: `Bearer ${stack.alice.token}` };
  const held = [await open(url, alice, 10_000), await open(url, alice, 10_000), await open(url, alice, 10_000)];
  expect(held.map((h) => h.status)).toEqual([200, 200, 200]);
  const refused = await fetch(url, { headers: alice });
  expect(refused.status).toBe(429);
  expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('TOO_MANY_STREAMS');
  // The cap is per user: an admin's follow is not refused for alice's, and closing one frees its place.
  const admin = await open(url, { authorization: `Bearer ${stack.admin.token}` }, 10_000);
  expect(admin.status).toBe(200);
  held[0]!.leave();
  await held[0]!.events;
  let again: Opened | undefined;
  for (let i = 0; i < 50 && again?.status !== 200; i++) {
    if (again) await again.events;
    await tick(20);
    again = await open(url, alice, 10_000);
  }
  expect(again!.status).toBe(200);
  for (const h of [...held.slice(1), admin, again!]) h.leave();
});

test('a follow whose token is revoked mid-stream ends at the next heartbeat with end {reason: TOKEN_REVOKED}', async () => {
  const { body: job } = await submit(stack.alice, fixtureJob(['true']));
  const { id, token } = await newToken(stack.alice);
  // The API's own heartbeat (15 s): the stream must end within it and a little more.
  const follow = await open(
    `${stack.url}/v1/jobs/${job.id}/logs?follow=true`,
    { authorization: `Bearer ${token}` },
    20_000,
  );
  expect(follow.status).toBe(200);
  expect((await stack.alice.fetch(`/v1/tokens/${id}`, { method: 'DELETE' })).status).toBe(204);
  const t0 = Date.now();
  const events = await follow.events;
  expect(events.at(-1)).toEqual({ event: 'end', data: JSON.stringify({ reason: 'TOKEN_REVOKED' }) });
  expect(Date.now() - t0).toBeLessThan(16_000);
}, 30_000);

/**
 * A second API process on the same Redis, built from the API's own auth hook and SSE clients with a 100 ms heartbeat:
 * what the stack's process revokes, this one must notice, and without waiting 15 s.
 */
async function fastHeartbeatApi(): Promise<{ app: FastifyInstance; auth: Auth; url: string }> {
  const app = Fastify();
  const auth = installAuth(app, {
    store: new AuthStore(redis, stack.prefix),
    ownerOf: { job: async () => null, dataset: async () => null, pipeline: async () => null },
    rateLimit: { perSecond: 1000, burst: 1000 },
    signedUrlTtlSeconds: 600,
  });
  const sse = new SseClients({ heartbeatMs: 100, maxStreamsPerUser: 8 });
  app.get('/v1/follow', async (_request, reply) => {
    sse.start(reply);
    await new Promise((r) => reply.raw.on('close', r));
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  return { app, auth, url: `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}` };
}

const ended = (reason: string) => ({ event: 'end', data: JSON.stringify({ reason }) });

test('a follow ends with end {reason} at the next heartbeat once its token is revoked elsewhere or expires', async () => {
  const api = await fastHeartbeatApi();
  try {
    const revoked = await newToken(stack.alice);
    const expiring = await newToken(stack.bob);
    const a = await open(`${api.url}/v1/follow`, { authorization: `Bearer ${revoked.token}` }, 5_000);
    const b = await open(`${api.url}/v1/follow`, { authorization: `Bearer ${expiring.token}` }, 5_000);
    expect([a.status, b.status]).toEqual([200, 200]);
    await tick(300);
    // Revoked through the other API process; bob's token record reaches its expiry.
    expect((await stack.alice.fetch(`/v1/tokens/${revoked.id}`, { method: 'DELETE' })).status).toBe(204);
    const k = keys(stack.prefix);
    const record = JSON.parse((await redis.hget(k.tokens, hashToken(expiring.token)))!) as { expiresAt: string };
    record.expiresAt = new Date(Date.now() - 1000).toISOString();
    await redis.hset(k.tokens, hashToken(expiring.token), JSON.stringify(record));
    const t0 = Date.now();
    const [ea, eb] = await Promise.all([a.events, b.events]);
    expect([ea.at(-1), eb.at(-1)]).toEqual([ended('TOKEN_REVOKED'), ended('TOKEN_EXPIRED')]);
    expect(Date.now() - t0).toBeLessThan(2_000);
  } finally {
    await api.app.close();
  }
});

test('a follow opened by a signed URL ends with end {reason: SIGNED_URL_EXPIRED} once the URL expires', async () => {
  const api = await fastHeartbeatApi();
  try {
    const { id, token } = await newToken(stack.alice);
    const signed = await api.auth.signer.sign('/v1/follow', id, 2);
    const t0 = Date.now();
    const s = await open(`${api.url}${signed.url}`, {}, 6_000);
    expect(s.status).toBe(200);
    const events = await s.events;
    expect(events.at(-1)).toEqual(ended('SIGNED_URL_EXPIRED'));
    // It ran until the URL's expiry, not less, and ended within a few heartbeats of it.
    expect(Date.now()).toBeGreaterThanOrEqual(Date.parse(signed.expiresAt));
    expect(Date.now() - Date.parse(signed.expiresAt)).toBeLessThan(1_000);
    expect(Date.now() - t0).toBeLessThan(4_000);
    // The token itself still opens follows: only the URL expired.
    const still = await open(`${api.url}/v1/follow`, { authorization: `Bearer ${token}` }, 400);
    expect(still.status).toBe(200);
    expect(await still.events).toEqual([]);
  } finally {
    await api.app.close();
  }
});
