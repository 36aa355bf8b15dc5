// The NGC key and the API tokens never show up anywhere: one whole job through the built API and worker processes
// (apps/*/dist: npm run build first) with trace logs and DEBUG=* (docker-modem, ioredis), then a search of what they
// printed, every answer the users got, every Redis value, the files both processes wrote, and every byte the worker
// exchanged with the Docker engine — where the key's one legitimate place is the X-Registry-Auth header of the pull.
// Both processes reach Redis as a user with a password (an ACL user made on the test Redis for this file), so the
// password in REDIS_URL is one more secret: masked in the config the worker logs and in ioredis's debug output.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Redis } from 'ioredis';
import { DockerRecorder } from './support/docker-recorder.js';
import { testPrefix, testRedisUrl } from './support/env.js';
import { FakeRegistry } from './support/fake-registry.js';
import { findSecret, secretForms, type Haystack, type SecretForm } from './support/secret-scan.js';
import { docker } from './support/stack.js';

jest.setTimeout(180_000);

const root = resolve(__dirname, '..');
const run = randomBytes(3).toString('hex');
const key = `nvapi-${randomBytes(16).toString('hex')}`;
const prefix = testPrefix('secrets');
const redisUser = `berth-secrets-${run}`;
const redisPassword = `redis-pw-${randomBytes(16).toString('hex')}`;
/** The test Redis, as the user only this file's password opens. */
const securedRedisUrl = () => {
  const url = new URL(testRedisUrl());
  url.username = redisUser;
  url.password = redisPassword;
  return url.toString();
};

async function redisAdmin(command: string, ...args: string[]): Promise<unknown> {
  const redis = new Redis(testRedisUrl(), { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  try {
    return await redis.call(command, ...args);
  } finally {
    redis.disconnect();
  }
}

/** A built process with everything it printed. */
interface Proc {
  name: string;
  child: ChildProcess;
  output: () => string;
}

function startProcess(name: string, script: string, env: Record<string, string>): Proc {
  let output = '';
  const child = spawn(process.execPath, [join(root, script)], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env, LOG_LEVEL: 'trace', DEBUG: '*' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d: Buffer) => (output += d.toString('latin1')));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString('latin1')));
  return { name, child, output: () => output };
}

async function stop(p: Proc | undefined): Promise<void> {
  if (!p || p.child.exitCode !== null || p.child.signalCode !== null) return;
  const exited = new Promise((r) => p.child.once('exit', r));
  p.child.kill('SIGTERM');
  const force = setTimeout(() => p.child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(force);
}

async function until<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** One answer the API gave, kept whole: status line, headers and body. */
interface Answer {
  what: string;
  status: number;
  headers: string;
  body: Buffer;
}

const answers: Answer[] = [];
/** The answers that hand out a token's secret (POST /v1/tokens): the one place each token may appear. */
const tokenAnswers: Answer[] = [];

function client(base: string, token: string | undefined) {
  return async (path: string, init: RequestInit & { json?: unknown } = {}, keep = answers): Promise<Answer> => {
    const { json, ...rest } = init;
    const headers: Record<string, string> = { ...(rest.headers as Record<string, string>) };
    if (token) headers.authorization = `Bearer ${token}`;
    if (json !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(`${base}${path}`, {
      ...rest,
      headers,
      ...(json !== undefined ? { body: JSON.stringify(json) } : {}),
      signal: AbortSignal.timeout(90_000),
    });
    const answer: Answer = {
      what: `${rest.method ?? 'GET'} ${path}`,
      status: res.status,
      headers: [...res.headers].map(([k, v]) => `${k}: ${v}`).join('\n'),
      body: Buffer.from(await res.arrayBuffer()),
    };
    keep.push(answer);
    return answer;
  };
}

const json = <T>(a: Answer): T => JSON.parse(a.body.toString()) as T;

/** Every key in the test Redis with its type and every value it holds, as text. */
async function dumpRedis(url: string): Promise<{ key: string; type: string; text: string }[]> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  try {
    const dump: { key: string; type: string; text: string }[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'COUNT', 500);
      cursor = next;
      for (const k of keys) {
        const type = await redis.type(k);
        // The stack runs on while the dump reads: a key the scan listed may be gone by now (the housekeeper empties
        // the unqueued outbox, for one). What is gone holds nothing to find.
        if (type === 'none') continue;
        let values: unknown;
        if (type === 'string') values = (await redis.getBuffer(k))?.toString('latin1');
        else if (type === 'hash') values = await redis.hgetall(k);
        else if (type === 'list') values = await redis.lrange(k, 0, -1);
        else if (type === 'set') values = await redis.smembers(k);
        else if (type === 'zset') values = await redis.zrange(k, '0', '-1', 'WITHSCORES');
        else if (type === 'stream') values = await redis.xrange(k, '-', '+');
        else throw new Error(`Redis key ${k} has a type this dump does not read: ${type}`);
        dump.push({ key: k, type, text: `${k}\n${JSON.stringify(values)}` });
      }
    } while (cursor !== '0');
    return dump;
  } finally {
    redis.disconnect();
  }
}

/** Every regular file under `dir`, read whole. */
function filesUnder(dir: string): Haystack[] {
  if (!existsSync(dir)) return [];
  const out: Haystack[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      const st = statSync(p, { throwIfNoEntry: false });
      if (st?.isDirectory()) walk(p);
      else if (st?.isFile()) out.push({ where: `file ${p}`, text: readFileSync(p) });
    }
  };
  walk(dir);
  return out;
}

let secured: FakeRegistry;
let recorder: DockerRecorder;
let api: Proc | undefined;
let worker: Proc | undefined;
const apiDataDir = mkdtempSync(join(tmpdir(), 'berth-secrets-api-'));
const workerDataDir = mkdtempSync(join(tmpdir(), 'berth-secrets-worker-'));
const image = () => `${secured.host}/berth-secrets-${run}/private:v1`;

beforeAll(async () => {
  for (const script of ['apps/api/dist/main.js', 'apps/worker/dist/main.js']) {
    if (!existsSync(join(root, script))) throw new Error(`${script} is missing: run npm run build first`);
  }
  [secured, recorder] = await Promise.all([
    FakeRegistry.start({ basicAuth: { username: '$oauthtoken', password: key } }),
    DockerRecorder.start(),
  ]);
  await redisAdmin('ACL', 'SETUSER', redisUser, 'on', `>${redisPassword}`, '~*', '&*', '+@all');
});

afterAll(async () => {
  await stop(worker);
  await stop(api);
  await docker
    .getImage(image())
    .remove({ force: true })
    .catch(() => {});
  await Promise.all([secured?.close(), recorder?.close()]);
  await redisAdmin('ACL', 'DELUSER', redisUser);
  rmSync(apiDataDir, { recursive: true, force: true });
  rmSync(workerDataDir, { recursive: true, force: true });
});

test('a whole job through the built API and worker leaves the NGC key and the tokens nowhere but where they belong', async () => {
  // --- the API, as `node apps/api/dist/main.js` runs it
  api = startProcess('api', 'apps/api/dist/main.js', {
    REDIS_URL: securedRedisUrl(),
    BERTH_PREFIX: prefix,
    BERTH_DATA_DIR: apiDataDir,
    PORT: '0',
    BERTH_IMAGE_ALLOWLIST: '127.0.0.1:*/**,docker.io/berth/**',
    BERTH_SWEEP_MS: '500',
  });
  const port = await until('the API to listen', () => {
    if (api!.child.exitCode !== null) throw new Error(`the API exited:\n${api!.output()}`);
    return /Server listening at http:\/\/127\.0\.0\.1:(\d+)/.exec(api!.output())?.[1];
  });
  const base = `http://127.0.0.1:${port}`;
  const adminToken = await until('the bootstrap admin token', () => {
    const file = join(apiDataDir, 'admin-token');
    return existsSync(file) ? readFileSync(file, 'utf8').trim() || undefined : undefined;
  });
  const admin = client(base, adminToken);

  // --- a member and a worker account, made by the admin
  const member = json<{ id: string }>(
    await admin('/v1/users', { method: 'POST', json: { name: 'carol', role: 'member' } }),
  );
  const robot = json<{ id: string }>(
    await admin('/v1/users', { method: 'POST', json: { name: 'robot', role: 'worker' } }),
  );
  const memberToken = json<{ token: string }>(
    await admin('/v1/tokens', { method: 'POST', json: { name: 'carol-cli', user: member.id } }, tokenAnswers),
  ).token;
  const workerToken = json<{ token: string; id: string }>(
    await admin('/v1/tokens', { method: 'POST', json: { name: 'robot-1', user: robot.id } }, tokenAnswers),
  ).token;
  expect(tokenAnswers.map((a) => a.status)).toEqual([201, 201]);
  const carol = client(base, memberToken);
  const asWorker = client(base, workerToken);

  // --- the worker, reaching the engine only through the recorder
  worker = startProcess('worker', 'apps/worker/dist/main.js', {
    REDIS_URL: securedRedisUrl(),
    BERTH_PREFIX: prefix,
    BERTH_API_URL: base,
    BERTH_API_TOKEN: workerToken,
    NGC_API_KEY: key,
    BERTH_NGC_REGISTRY: secured.host,
    BERTH_PULL_ATTEMPTS: '1',
    BERTH_GPUS: '0',
    BERTH_WORKER_ID: `w-${prefix}`,
    BERTH_WORKER_METRICS_PORT: '0',
    BERTH_HEARTBEAT_MS: '200',
    BERTH_DATA_DIR: workerDataDir,
    DOCKER_HOST: recorder.dockerHost,
  });
  await until('the worker to register', async () => {
    if (worker!.child.exitCode !== null) throw new Error(`the worker exited:\n${worker!.output()}`);
    const workers = json<{ workers: { id: string }[] }>(await admin('/v1/workers', {}, []));
    return workers.workers.some((w) => w.id === `w-${prefix}`) ? true : undefined;
  });

  // --- the member's job: an image only the NGC key can pull, a file left in /results
  const submitted = await carol('/v1/jobs', {
    method: 'POST',
    json: {
      manifest: 'custom',
      params: {
        image: image(),
        command: ['sh', '-c', 'echo hello from the job; echo the result > /results/out.txt; env | sort'],
      },
    },
  });
  expect(submitted.status).toBe(201);
  const jobId = json<{ id: string }>(submitted).id;
  // Followed live as Server-Sent Events; the answer ends with the stream's `end` event.
  const followed = await carol(`/v1/jobs/${jobId}/logs?follow=true`);
  expect(followed.headers).toContain('text/event-stream');
  expect(followed.body.toString()).toContain('hello from the job');
  expect(followed.body.toString()).toContain('event: end');

  const job = await until('the job to end', async () => {
    const j = json<{ state: string }>(await carol(`/v1/jobs/${jobId}`));
    return ['succeeded', 'failed', 'cancelled'].includes(j.state) ? j : undefined;
  });
  expect(job).toMatchObject({ state: 'succeeded' });

  // --- everything a member, the admin and the worker account may read about it
  await carol(`/v1/jobs/${jobId}/events`);
  await carol(`/v1/jobs/${jobId}/logs`);
  await carol(`/v1/jobs/${jobId}/logs`, { headers: { accept: 'application/json' } });
  await carol(`/v1/jobs/${jobId}/metrics`);
  const listed = json<{ artifacts: { path: string }[] }>(await carol(`/v1/jobs/${jobId}/artifacts`));
  expect(listed.artifacts.map((a) => a.path)).toEqual(expect.arrayContaining(['out.txt', 'logs/attempt-1.log']));
  const file = await carol(`/v1/jobs/${jobId}/artifacts/out.txt`);
  expect(file.body.toString()).toBe('the result\n');
  const logFile = await carol(`/v1/jobs/${jobId}/artifacts/logs/attempt-1.log`);
  expect(logFile.body.toString()).toContain('hello from the job');
  await carol('/v1/jobs');
  await carol('/v1/me');
  await carol('/v1/queue');
  await carol('/v1/workers');
  await carol('/v1/tokens');
  const signed = json<{ url: string }>(
    await carol('/v1/signed-urls', { method: 'POST', json: { path: `/v1/jobs/${jobId}/logs` } }),
  );
  expect((await client(base, undefined)(signed.url)).status).toBe(200);
  await admin('/v1/users');
  await admin('/v1/tokens');
  await admin('/v1/workers');
  await admin('/v1/queue');
  await admin(`/v1/jobs/${jobId}`);
  await admin('/metrics');
  await asWorker('/v1/me');
  await asWorker(`/v1/jobs/${jobId}/artifacts`);
  // --- and the errors
  expect((await carol('/v1/jobs/job_doesnotexist0000000000')).status).toBe(404);
  expect((await carol('/v1/no-such-route')).status).toBe(404);
  expect((await carol('/v1/jobs', { method: 'POST', json: { manifest: 7, params: 'x' } })).status).toBe(400);
  expect(
    (await carol('/v1/jobs', { method: 'POST', body: '{"manifest":', headers: { 'content-type': 'application/json' } }))
      .status,
  ).toBe(400);
  expect((await carol('/v1/users', { method: 'POST', json: { name: 'mallory', role: 'admin' } })).status).toBe(403);
  expect((await client(base, `${memberToken.slice(0, -4)}AAAA`)('/v1/me')).status).toBe(401);
  // A client that puts its token in a URL is refused — and that URL must not end up in the API's log either.
  expect((await client(base, undefined)(`/v1/jobs?access_token=${memberToken}`)).status).toBe(401);
  expect((await asWorker('/v1/jobs', { method: 'POST', json: { manifest: 'custom' } })).status).toBe(403);

  // --- collected while both processes still run
  const redisDump = await dumpRedis(testRedisUrl());
  await stop(worker);
  await stop(api);
  const exchanges = recorder.exchanges();

  // Each place looked in really was collected, or a clean result would prove nothing.
  const apiOut = api.output();
  const workerOut = worker.output();
  expect(apiOut).toContain('incoming request');
  expect(apiOut).toMatch(/ioredis:\S+/); // DEBUG=* reached the libraries
  expect(workerOut).toContain('worker ready');
  expect(workerOut).toContain('attempt finished');
  expect(workerOut).toMatch(/\bmodem\b/); // docker-modem's debug output
  // The worker logs its config, Redis URL and all, with the password masked: the line the search below reads.
  expect(workerOut).toContain(`redis://${redisUser}:[redacted]@`);
  // ioredis printed the HELLO (or AUTH) it sent with the password (with DEBUG=*): the search below reads it.
  for (const out of [apiOut, workerOut])
    expect(out).toMatch(/ioredis:redis write command\[[^\]]*\]: \d+ -> (?:hello|auth)\(/);
  expect(answers.length).toBeGreaterThan(30);
  const ourKeys = redisDump.filter((d) => d.key.startsWith(prefix));
  expect(ourKeys.length).toBeGreaterThan(10);
  expect([...new Set(ourKeys.map((d) => d.type))]).toEqual(expect.arrayContaining(['hash', 'zset', 'stream']));
  const described = exchanges.map((e) => `${e.method} ${e.url.split('?')[0]}`);
  expect(described).toEqual(
    expect.arrayContaining([
      'POST /images/create',
      'POST /containers/create',
      expect.stringMatching(/^POST \/containers\/.+\/start$/),
    ]),
  );
  const create = exchanges.find((e) => e.method === 'POST' && e.url.startsWith('/containers/create'))!;
  expect(JSON.parse(create.request.body.toString())).toMatchObject({ Image: image() });
  const files = [...filesUnder(apiDataDir), ...filesUnder(workerDataDir)];
  expect(files.some((f) => f.where.endsWith('a1.log'))).toBe(true);

  // The pull is the one request that carries the key: dockerode's X-Registry-Auth, base64url of the auth JSON.
  const pulls = exchanges.filter((e) => e.method === 'POST' && e.url.startsWith('/images/create'));
  expect(pulls.length).toBeGreaterThan(0);
  const auth = JSON.parse(Buffer.from(pulls[0]!.request.headers['x-registry-auth'] ?? '', 'base64url').toString());
  expect(auth).toEqual({ username: '$oauthtoken', password: key, serveraddress: secured.host });
  expect(
    secured.requests.some(
      (r) => r.headers.authorization === `Basic ${Buffer.from(`$oauthtoken:${key}`).toString('base64')}`,
    ),
  ).toBe(true);

  // What the worker sent the engine, the header above taken out of the pulls, and what the engine answered.
  const engineTraffic: Haystack[] = exchanges.flatMap((e, i) => {
    const headers = { ...e.request.headers };
    if (pulls.includes(e)) delete headers['x-registry-auth'];
    const request = `${e.method} ${e.url}\n${JSON.stringify(headers)}\n${e.request.body.toString('latin1')}`;
    return [
      { where: `engine request #${i} ${e.method} ${e.url}`, text: request },
      ...(e.response
        ? [
            {
              where: `engine answer #${i} to ${e.method} ${e.url}`,
              text: `${e.response.startLine}\n${JSON.stringify(e.response.headers)}\n${e.response.body.toString('latin1')}`,
            },
          ]
        : []),
    ];
  });
  // The raw bytes too, with the one header line cut out, so nothing the parser missed goes unread.
  const header = pulls.map((p) => `X-Registry-Auth: ${p.request.headers['x-registry-auth']}\r\n`);
  const rawUp = recorder.rawRequests().map((b, i) => ({
    where: `raw bytes to the engine, connection ${i}`,
    text: header.reduce((s, h) => s.split(h).join(''), b.toString('latin1')),
  }));
  const rawDown = recorder
    .rawResponses()
    .map((b, i) => ({ where: `raw bytes from the engine, connection ${i}`, text: b }));

  const logs: Haystack[] = [
    { where: 'API output', text: apiOut },
    { where: 'worker output', text: workerOut },
  ];
  const everywhere: Haystack[] = [
    ...logs,
    ...answers.map((a) => ({
      where: `answer to ${a.what}`,
      text: `${a.status}\n${a.headers}\n${a.body.toString('latin1')}`,
    })),
    ...redisDump.map((d) => ({ where: `Redis ${d.type} ${d.key}`, text: d.text })),
    ...files,
    ...engineTraffic,
    ...rawUp,
    ...rawDown,
  ];
  const keyForms: SecretForm[] = secretForms(key, [
    { name: 'basic credential', text: Buffer.from(`$oauthtoken:${key}`).toString('base64') },
    { name: 'X-Registry-Auth', text: pulls[0]!.request.headers['x-registry-auth'] ?? '' },
  ]);
  // A signed URL works as the token for its path until it expires: its MAC is handed out (and used) in the URL, but
  // must not be written to a log.
  const mac = /[?&]sig=[^.]+\.\d+\.([A-Za-z0-9_-]{43})$/.exec(signed.url)?.[1];
  expect(mac).toBeDefined();
  // One expectation for them all, so a failure lists every place each one showed up.
  expect({
    'NGC key': findSecret(everywhere, keyForms),
    "member's token": findSecret(everywhere, secretForms(memberToken)),
    "worker's token": findSecret(everywhere, secretForms(workerToken)),
    "signed URL's MAC": findSecret(logs, [{ name: 'raw', text: mac! }]),
    'Redis password': findSecret(everywhere, secretForms(redisPassword)),
  }).toEqual({
    'NGC key': [],
    "member's token": [],
    "worker's token": [],
    "signed URL's MAC": [],
    'Redis password': [],
  });
  // Each token is in its one POST /v1/tokens answer: the search finds a token where there is one.
  for (const token of [memberToken, workerToken]) {
    const handedOut = findSecret(
      tokenAnswers.map((a, i) => ({ where: `${a.what} #${i}`, text: a.body })),
      secretForms(token),
    );
    expect(new Set(handedOut.map((s) => s.where)).size).toBe(1);
  }
  // The searches can find the key where it is: in the pull's header.
  expect(
    findSecret([{ where: 'pull', text: JSON.stringify(pulls[0]!.request.headers) }], keyForms).length,
  ).toBeGreaterThan(0);
});
