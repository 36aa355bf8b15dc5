// Submission safety under concurrency: quotas answered with 429 and the limit hit, idempotency keys that give one
// job for ten racing submits, the rate limit with Retry-After, the image allowlist; and the first admin's token read
// from the bootstrap file.
import { mkdirSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp } from '../apps/api/src/app.js';
import { connectRedis } from '@berth/store';
import { testPrefix, testRedisUrl } from './support/env.js';
import { addUser, fixtureJob, startTestStack, submit, testApiConfig, type TestStack } from './support/stack.js';

let stack: TestStack;

beforeAll(async () => {
  stack = await startTestStack('tenancy', {
    worker: false,
    apiConfig: {
      images: { allow: ['docker.io/berth/**', 'nvcr.io/nvidia/**'], requireDigest: false },
    },
  });
});

afterAll(async () => stack?.close());

const job = (gpus = 0, extra: Record<string, unknown> = {}) => fixtureJob(['true'], { resources: { gpus }, ...extra });

async function submitWithKey(client: TestStack['alice'], key: string, spec: unknown) {
  const res = await client.fetch('/v1/jobs', {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'idempotency-key': key },
    body: JSON.stringify(spec),
  });
  return { status: res.status, body: (await res.json()) as { id: string; error?: { code: string } } };
}

test('the queued-jobs quota holds under 10 concurrent submits: exactly the limit gets in, the rest 429 with the limit', async () => {
  const carol = await addUser(stack.admin, 'carol', 'member', { queuedJobs: 3 });
  const results = await Promise.all(Array.from({ length: 10 }, () => submit(carol, job())));
  expect(results.filter((r) => r.status === 201)).toHaveLength(3);
  const refused = results.filter((r) => r.status === 429);
  expect(refused).toHaveLength(7);
  for (const r of refused) {
    expect(r.body).toMatchObject({
      error: { code: 'QUOTA_EXCEEDED', details: { limit: 'queuedJobs', max: 3, current: 3 } },
    });
  }
  // A job that leaves the queue frees its place.
  const first = results.find((r) => r.status === 201)!.body;
  await carol.fetch(`/v1/jobs/${first.id}/cancel`, { method: 'POST' });
  expect((await submit(carol, job())).status).toBe(201);
});

test('the GPU quota counts the GPUs of unfinished jobs; an admin can raise it', async () => {
  const dave = await addUser(stack.admin, 'dave', 'member', { gpus: 4 });
  expect((await submit(dave, job(2))).status).toBe(201);
  const second = await submit(dave, job(2));
  expect(second.status).toBe(201);
  const third = await submit(dave, job(1));
  expect(third).toMatchObject({
    status: 429,
    body: { error: { code: 'QUOTA_EXCEEDED', details: { limit: 'gpus', max: 4, current: 4 } } },
  });
  // Cancelling gives the GPUs back to the count.
  await dave.fetch(`/v1/jobs/${second.body.id}/cancel`, { method: 'POST' });
  expect((await submit(dave, job(2))).status).toBe(201);
  const raised = await stack.admin.fetch(`/v1/users/${dave.user.id}`, {
    method: 'PATCH',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ quotas: { gpus: 8 } }),
  });
  expect(((await raised.json()) as { quotas: unknown }).quotas).toEqual({ queuedJobs: null, gpus: 8 });
  // The new limit applies to the next submit.
  expect((await submit(dave, job(4))).status).toBe(201);
});

test('one Idempotency-Key, ten concurrent identical submits: one job, the same id everywhere; another body is 409', async () => {
  const key = `run-${testPrefix('k')}`;
  const spec = job(0, { labels: { try: 'one' } });
  const results = await Promise.all(Array.from({ length: 10 }, () => submitWithKey(stack.alice, key, spec)));
  const ids = new Set(results.map((r) => r.body.id));
  expect(ids.size).toBe(1);
  expect(results.filter((r) => r.status === 201)).toHaveLength(1);
  expect(results.filter((r) => r.status === 200)).toHaveLength(9);
  const listed = (await (await stack.alice.fetch('/v1/jobs?limit=200')).json()) as { jobs: { id: string }[] };
  expect(listed.jobs.filter((j) => ids.has(j.id))).toHaveLength(1);
  // Key order does not matter; a different job under the same key is refused.
  const reordered = Object.fromEntries(Object.entries(spec).reverse());
  expect((await submitWithKey(stack.alice, key, reordered)).body.id).toBe([...ids][0]);
  const other = await submitWithKey(stack.alice, key, job(0, { labels: { try: 'two' } }));
  expect(other).toMatchObject({ status: 409, body: { error: { code: 'IDEMPOTENCY_KEY_REUSED' } } });
  // Keys are per user: bob's use of the same key is his own job.
  const bobs = await submitWithKey(stack.bob, key, spec);
  expect(bobs.status).toBe(201);
  expect(bobs.body.id).not.toBe([...ids][0]);
});

test('an Idempotency-Key whose job record is gone is refused, never answered with a job that was not stored', async () => {
  const key = `gone-${testPrefix('k')}`;
  const spec = job(0, { labels: { try: 'gone' } });
  const first = await submitWithKey(stack.alice, key, spec);
  expect(first.status).toBe(201);
  const redis = connectRedis(testRedisUrl());
  try {
    expect(await redis.del(`${stack.prefix}:job:${first.body.id}`)).toBe(1);
  } finally {
    redis.disconnect();
  }
  const again = await submitWithKey(stack.alice, key, spec);
  expect(again).toMatchObject({
    status: 409,
    body: { error: { code: 'IDEMPOTENCY_KEY_REUSED', details: { job: first.body.id } } },
  });
});

test('images outside the allowlist are refused with the rule they broke; digests can be required', async () => {
  const res = await submit(stack.alice, { manifest: 'custom', params: { image: 'ubuntu:24.04', command: ['true'] } });
  expect(res).toMatchObject({
    status: 422,
    body: { error: { code: 'IMAGE_NOT_ALLOWED', details: { image: 'ubuntu:24.04' } } },
  });
  expect((res.body as unknown as { error: { message: string } }).error.message).toContain('docker.io/library/ubuntu');
  const pinned = await startTestStack('tenancy-pinned', {
    worker: false,
    apiConfig: { images: { allow: ['docker.io/berth/**'], requireDigest: true } },
  });
  try {
    expect((await submit(pinned.alice, job())).body).toMatchObject({ error: { code: 'IMAGE_NOT_ALLOWED' } });
    const digest = `berth/fixture@sha256:${'0'.repeat(64)}`;
    const ok = await submit(pinned.alice, { manifest: 'custom', params: { image: digest, command: ['true'] } });
    expect(ok.status).toBe(201);
  } finally {
    await pinned.close();
  }
});

test('a member over the rate limit gets 429 RATE_LIMITED with Retry-After; admins and workers are not limited', async () => {
  const limited = await startTestStack('tenancy-rate', {
    worker: false,
    apiConfig: { rateLimit: { perSecond: 2, burst: 5 } },
  });
  try {
    const statuses: number[] = [];
    let retryAfter: string | null = null;
    for (let i = 0; i < 8; i++) {
      const res = await limited.alice.fetch('/v1/jobs');
      statuses.push(res.status);
      if (res.status === 429) {
        retryAfter = res.headers.get('retry-after');
        expect(((await res.json()) as { error: { code: string } }).error.code).toBe('RATE_LIMITED');
      }
    }
    // addUser used none of alice's budget: the first five pass, then she waits.
    expect(statuses.slice(0, 5)).toEqual([200, 200, 200, 200, 200]);
    expect(statuses.slice(5)).toContain(429);
    expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
    await new Promise((r) => setTimeout(r, Number(retryAfter) * 1000));
    expect((await limited.alice.fetch('/v1/jobs')).status).toBe(200);
    for (let i = 0; i < 10; i++) expect((await limited.admin.fetch('/v1/jobs')).status).toBe(200);
  } finally {
    await limited.close();
  }
});

test('the first admin: its token is read from the bootstrap file when one is there, stored only as a hash', async () => {
  const prefix = testPrefix('bootstrap');
  const dir = join(tmpdir(), 'berth-test-api', prefix);
  mkdirSync(dir, { recursive: true });
  const secret = `berth_${'b'.repeat(43)}`;
  writeFileSync(join(dir, 'given-token'), `${secret}\n`, { mode: 0o600 });
  const app = await buildApp(testApiConfig(prefix, { bootstrapTokenFile: join(dir, 'given-token') }));
  try {
    const me = await app.inject({ url: '/v1/me', headers: { authorization: `Bearer ${secret}` } });
    expect(me.statusCode).toBe(200);
    expect(me.json()).toMatchObject({ user: { name: 'admin', role: 'admin' }, token: { name: 'bootstrap' } });
    const redis = connectRedis(testRedisUrl());
    try {
      const keys = await redis.keys(`${prefix}:*`);
      expect(keys.length).toBeGreaterThan(0);
      for (const k of keys) {
        const type = await redis.type(k);
        const dump = type === 'hash' ? JSON.stringify(await redis.hgetall(k)) : await redis.dump(k);
        expect(String(dump)).not.toContain(secret);
      }
    } finally {
      redis.disconnect();
    }
    // A second start (or a second API process) does not make another admin.
    const again = await buildApp(testApiConfig(prefix, { bootstrapTokenFile: join(dir, 'absent') }));
    await again.close();
    const users = await app.inject({ url: '/v1/users', headers: { authorization: `Bearer ${secret}` } });
    expect((users.json() as { users: unknown[] }).users).toHaveLength(1);
  } finally {
    await app.close();
  }
});

test('a request that stops moving is cut after the idle timeout; an upload that keeps moving may take longer', async () => {
  const slow = await startTestStack('tenancy-idle', { worker: false, apiConfig: { idleTimeoutMs: 1500 } });
  const port = Number(new URL(slow.url).port);
  const body = 'A document about berths.\nAnd ships.\n';
  const head = (length: number) =>
    `POST /v1/datasets?name=slow&format=corpus&filename=c.txt HTTP/1.1\r\nHost: x\r\n` +
    `Authorization: Bearer ${slow.alice.token}\r\nContent-Type: application/octet-stream\r\n` +
    `Content-Length: ${length}\r\n\r\n`;
  try {
    // Stalled after 10 bytes: the server closes the connection once it has been silent for the idle timeout.
    const t0 = Date.now();
    const stalled = createConnection(port, '127.0.0.1');
    stalled.write(head(body.length) + body.slice(0, 10));
    await new Promise((resolve) => stalled.once('close', resolve));
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1400);
    expect(Date.now() - t0).toBeLessThan(5000);

    // Trickled a byte every 300 ms for ~11 s in all: never idle, so it completes.
    const moving = createConnection(port, '127.0.0.1');
    let answer = '';
    moving.on('data', (d: Buffer) => (answer += d.toString()));
    moving.write(head(body.length));
    for (const ch of body) {
      moving.write(ch);
      await new Promise((r) => setTimeout(r, 300));
    }
    for (let i = 0; i < 50 && !answer.includes('\r\n\r\n'); i++) await new Promise((r) => setTimeout(r, 100));
    expect(answer).toMatch(/^HTTP\/1\.1 201/);
    moving.destroy();
  } finally {
    await slow.close();
  }
}, 30_000);
