// berth as it runs in production, for a benchmark: a private redis-server, the built API (apps/api/dist) and one
// worker (apps/worker/dist) as child processes on the local Docker engine. The bench owns all three and the
// containers its jobs leave behind; stop() ends everything, also after a failure.
// Where the API asks for a bearer token (/v1/* and /metrics), the bench is its bootstrap admin and the worker gets
// a token of its own; every request made through these helpers (and lib/sse.mjs) to that API carries the admin's.
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import process from 'node:process';
import { clearTimeout, setTimeout } from 'node:timers';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { removeLabelled } from './engine.mjs';

export const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const outDir = join(repo, 'bench/.bench-out');

const built = ['apps/api/dist/main.js', 'apps/worker/dist/main.js', 'apps/stack/dist/redis-args.js'];

export function freePort() {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => res(addr.port));
    });
  });
}

/** True once a redis-server answers PING on this local port. */
export function redisPing(port) {
  return new Promise((res) => {
    const sock = createConnection({ port, host: '127.0.0.1' });
    let reply = '';
    sock.on('connect', () => sock.write('PING\r\n'));
    sock.on('data', (d) => {
      reply += d;
      if (reply.includes('\r\n')) {
        sock.destroy();
        res(reply.startsWith('+PONG'));
      }
    });
    sock.on('error', () => res(false));
  });
}

/**
 * A new token for the API's bootstrap admin, written to <dir>/admin-token for BERTH_BOOTSTRAP_TOKEN_FILE: the API
 * makes its first admin with it (an API without auth ignores the file). Returns the file and the token.
 */
export function writeAdminToken(dir) {
  const token = `berth_${randomBytes(32).toString('base64url')}`;
  const file = join(dir, 'admin-token');
  writeFileSync(file, `${token}\n`, { mode: 0o600 });
  return { file, token };
}

/** Admin tokens of the APIs this process started, by origin (none where the API asks for none). */
const tokens = new Map();

/** The headers a request to `url` needs: the bootstrap admin's bearer token where that API asks for one. */
export function authHeaders(url) {
  const token = tokens.get(new URL(url).origin);
  return token ? { authorization: `Bearer ${token}` } : {};
}

function httpJson(url) {
  return new Promise((res, rej) => {
    const req = request(url, { timeout: 2000, headers: authHeaders(url) }, (r) => {
      let text = '';
      r.setEncoding('utf8');
      r.on('data', (d) => (text += d));
      r.on('end', () => res({ status: r.statusCode, body: text ? JSON.parse(text) : undefined }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', rej);
    req.end();
  });
}

export async function postJson(url, body) {
  const res = await globalThis.fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...authHeaders(url) },
    body: JSON.stringify(body),
  });
  const json = await res.json();
  if (res.status >= 300) throw new Error(`POST ${url}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

export const getJson = async (url) => (await httpJson(url)).body;

/** GET `url` as text (e.g. a job's log); throws unless 200. */
export async function getText(url) {
  const res = await globalThis.fetch(url, { headers: authHeaders(url) });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`GET ${url}: ${res.status} ${text}`);
  return text;
}

async function waitFor(check, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await sleep(100);
  }
  throw new Error(`${what} within ${timeoutMs / 1000} s`);
}

function terminate(proc) {
  if (!proc || proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((res) => {
    const kill = setTimeout(() => proc.kill('SIGKILL'), 10_000);
    proc.once('exit', () => {
      clearTimeout(kill);
      res();
    });
    proc.kill('SIGTERM');
  });
}

/**
 * Starts redis-server, the API and (unless `worker: false`) a worker. `workerEnv` adds worker settings (e.g.
 * BERTH_LOG_STREAM_MAX_LINES or BERTH_GPUS), `apiEnv` API settings. Child output goes to
 * bench/.bench-out/<name>/{redis,api,worker}.log.
 */
export async function startBerth(name, { workerEnv = {}, apiEnv = {}, worker: withWorker = true } = {}) {
  for (const file of built) {
    if (!existsSync(join(repo, file))) throw new Error(`${file} is missing: run npm run build first`);
  }
  const { redisArgs } = await import(join(repo, 'apps/stack/dist/redis-args.js'));
  const prefix = `bench-${name}-${randomBytes(3).toString('hex')}`;
  const logs = join(outDir, name);
  mkdirSync(logs, { recursive: true });
  const scratch = mkdtempSync(join(tmpdir(), `berth-bench-${name}-`));
  const dataDir = join(scratch, 'data');
  const redisDir = join(scratch, 'redis');
  mkdirSync(dataDir);
  mkdirSync(redisDir);
  const admin = writeAdminToken(scratch);
  const children = [];
  let stopped = false;
  const crashes = [];
  const spawnLogged = (label, cmd, args, env) => {
    const out = createWriteStream(join(logs, `${label}.log`));
    const proc = spawn(cmd, args, { cwd: repo, env, stdio: ['ignore', 'pipe', 'pipe'] });
    proc.stdout.pipe(out);
    proc.stderr.pipe(out);
    children.push({ label, proc });
    const crashed = new Promise((_, rej) => {
      proc.once('exit', (code) => {
        if (!stopped) rej(new Error(`${label} exited with ${code} (see ${join(logs, `${label}.log`)})`));
      });
    });
    crashed.catch(() => {});
    crashes.push(crashed);
    return proc;
  };
  /** Waits for `check`, failing at once if any child exited. */
  const ready = (check, timeoutMs, what) => Promise.race([...crashes, waitFor(check, timeoutMs, what)]);

  let origin;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    // API and worker first, Redis last, then whatever containers the jobs left.
    for (const { proc } of [...children].reverse()) await terminate(proc);
    await removeLabelled(`berth.prefix=${prefix}`).catch(() => 0);
    rmSync(scratch, { recursive: true, force: true });
    if (origin) tokens.delete(origin);
  };

  try {
    const redisPort = await freePort();
    const redis = spawnLogged('redis', 'redis-server', redisArgs(redisPort, redisDir), process.env);
    await ready(() => redisPing(redisPort), 10_000, 'redis-server did not start');
    const redisUrl = `redis://127.0.0.1:${redisPort}`;
    const common = {
      ...process.env,
      REDIS_URL: redisUrl,
      BERTH_PREFIX: prefix,
      BERTH_DATA_DIR: dataDir,
      BERTH_MANIFESTS_DIR: join(repo, 'ngc-manifests'),
      LOG_LEVEL: 'warn',
    };
    const port = await freePort();
    const node = process.execPath;
    // BENCH_CPU_PROF=1: V8 CPU profiles of the API and the worker in bench/.bench-out/<name>/ (written at exit).
    // BENCH_NODE_ARGS: more node flags for both (e.g. `--trace-gc`, whose lines land in <label>.log there).
    const prof = process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${logs}`] : [];
    prof.push(...(process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean));
    const api = spawnLogged('api', node, [...prof, join(repo, 'apps/api/dist/main.js')], {
      ...common,
      PORT: String(port),
      HOST: '127.0.0.1',
      BERTH_BOOTSTRAP_TOKEN_FILE: admin.file,
      ...apiEnv,
    });
    const url = `http://127.0.0.1:${port}`;
    origin = new URL(url).origin;
    await ready(async () => (await httpJson(`${url}/readyz`)).status === 200, 20_000, 'the API did not become ready');
    const auth = (await httpJson(`${url}/v1/jobs?limit=1`)).status === 401;
    if (auth) tokens.set(origin, admin.token);

    const pids = { api: api.pid, redis: redis.pid };
    let workerId;
    if (withWorker) {
      // The worker's own token, of a user with the worker role, where the API asks for one.
      const workerAuth = auth ? { BERTH_API_TOKEN: await serviceToken(url, `${prefix}-worker`, 'worker') } : {};
      workerId = `${prefix}-w`;
      const worker = spawnLogged('worker', node, [...prof, join(repo, 'apps/worker/dist/main.js')], {
        ...common,
        BERTH_WORKER_ID: workerId,
        BERTH_GPUS: '0',
        BERTH_WORKER_METRICS_PORT: '0',
        BERTH_HEARTBEAT_MS: '1000',
        BERTH_API_URL: url,
        ...workerAuth,
        ...workerEnv,
      });
      pids.worker = worker.pid;
      await ready(
        async () => (await getJson(`${url}/v1/workers`)).workers.some((w) => w.id === workerId && w.status === 'live'),
        20_000,
        'the worker did not register',
      );
    }
    const crashed = Promise.race(crashes);
    crashed.catch(() => {});
    return { url, prefix, redisUrl, redisPort, dataDir, workerId, auth, pids, crashed, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** A new user with `role` and a token for it (needs the admin's token); returns the token. */
export async function serviceToken(url, name, role) {
  const user = await postJson(`${url}/v1/users`, { name, role });
  return (await postJson(`${url}/v1/tokens`, { name, user: user.id })).token;
}

/** The API's Prometheus /metrics as a map from series (`name` or `name{labels}`) to value. */
export async function scrapeMetrics(url) {
  const res = await globalThis.fetch(`${url}/metrics`, { headers: authHeaders(url) });
  if (res.status !== 200) throw new Error(`GET ${url}/metrics: ${res.status}`);
  const series = new Map();
  for (const line of (await res.text()).split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (m) series.set(m[1], Number(m[2]));
  }
  return series;
}

/** Runs one command on the bench's Redis with redis-cli; returns its output lines. */
export function redisCli(redisUrl, ...args) {
  const out = execFileSync('redis-cli', ['-u', redisUrl, ...args], { encoding: 'utf8' });
  return out.trimEnd().split('\n');
}

/** What the worker stored of a job's log: lines counted for attempt 1, entries ever added to the stream. */
export async function storedLog(berth, jobId) {
  const { keys } = await import(join(repo, 'packages/store/dist/keys.js'));
  const k = keys(berth.prefix);
  const counted = Number(redisCli(berth.redisUrl, 'HGET', k.logCount(jobId), '1')[0] || 0);
  const info = redisCli(berth.redisUrl, 'XINFO', 'STREAM', k.logs(jobId));
  const added = Number(info[info.indexOf('entries-added') + 1]);
  return { counted, added };
}

/** The spec of a `custom` job running `cmd` in `image` on `gpus` GPUs. */
export function customSpec(image, cmd, { gpus = 0 } = {}) {
  return { manifest: 'custom', params: { image, command: cmd }, resources: { gpus } };
}

/** Submits a `custom` job running `cmd` in `image`; returns its id. */
export async function submitJob(url, image, cmd, options) {
  const job = await postJson(`${url}/v1/jobs`, customSpec(image, cmd, options));
  return job.id;
}

/** Polls a job until it is terminal. */
export async function waitForJob(url, id, timeoutMs = 120_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const job = await getJson(`${url}/v1/jobs/${id}`);
    if (['succeeded', 'failed', 'cancelled'].includes(job.state)) return job;
    if (Date.now() > deadline) throw new Error(`job ${id} still ${job.state} after ${timeoutMs / 1000} s`);
    await sleep(100);
  }
}
