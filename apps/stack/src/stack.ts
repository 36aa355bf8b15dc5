// Brings berth up on one machine: its own redis-server unless REDIS_URL is given, the API and one worker as
// child processes, the local Docker engine. Owns every child and stops them all on close.
import { maskUrl } from '@berth/contracts';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { StackConfig } from './env.js';
import { redisArgs } from './redis-args.js';
import { StackError } from './stack-error.js';

export { StackError };

const appsDir = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

export interface Stack {
  apiUrl: string;
  redisUrl: string;
  /** The first admin's token (from the data dir): the operator of a one-machine stack. */
  adminToken: string;
  /** Resolves when any child exits on its own (a crash): the stack is then broken. */
  exited: Promise<string>;
  stop(): Promise<void>;
}

export async function startStack(config: StackConfig, log: (line: string) => void): Promise<Stack> {
  const dataDir = resolve(config.BERTH_DATA_DIR);
  mkdirSync(dataDir, { recursive: true });
  await checkDocker(config.DOCKER_HOST);

  const children: { name: string; proc: ChildProcess }[] = [];
  const stop = async () => {
    // Reverse order: API and worker first, Redis last, so nothing loses its store mid-shutdown.
    for (const { proc } of children.reverse()) await terminate(proc);
  };
  try {
    let redisUrl = config.REDIS_URL;
    if (!redisUrl) {
      const port = await freePort();
      const redisDir = join(dataDir, 'redis');
      mkdirSync(redisDir, { recursive: true });
      children.push({ name: 'redis-server', proc: startRedis(port, redisDir) });
      redisUrl = `redis://127.0.0.1:${port}`;
      await waitFor(() => redisPing(port), 10_000, 'redis-server did not start');
      log(`berth: started redis-server on port ${port} (data in ${redisDir})`);
    }
    const env = { ...process.env, REDIS_URL: redisUrl, BERTH_DATA_DIR: dataDir, LOG_LEVEL: config.LOG_LEVEL };
    const apiEnv = { ...env, PORT: String(config.PORT), HOST: config.HOST };
    const exits: Promise<string>[] = [];
    const launch = (name: string, script: string, childEnv: NodeJS.ProcessEnv) => {
      const proc = spawnNode(join(appsDir, script), childEnv);
      children.push({ name, proc });
      exits.push(new Promise<string>((res) => proc.once('exit', (code) => res(`${name} exited with ${code}`))));
    };
    const crashed = () =>
      Promise.race(exits).then((why) => Promise.reject(new StackError(`berth: ${why} during start-up`)));
    launch('api', 'api/dist/main.js', apiEnv);
    // The API listens on all interfaces only if HOST says so; the worker and the demo talk to it on loopback.
    const apiUrl = `http://${config.HOST === '0.0.0.0' ? '127.0.0.1' : config.HOST}:${config.PORT}`;
    const ready = waitFor(
      async () => (await httpStatus(`${apiUrl}/readyz`)) === 200,
      20_000,
      'the API did not become ready',
    );
    await Promise.race([ready, crashed()]);
    // The API made the first admin on its first start; the worker gets an account and token of its own.
    const adminToken = readFileSync(join(dataDir, 'admin-token'), 'utf8').trim();
    const workerTokenFile = await ensureWorkerToken(apiUrl, adminToken, join(dataDir, 'worker-token'));
    launch('worker', 'worker/dist/main.js', { ...env, BERTH_API_URL: apiUrl, BERTH_API_TOKEN_FILE: workerTokenFile });
    log(`berth: API on ${apiUrl} (docs at ${apiUrl}/docs), one worker on the local Docker engine`);
    log(`berth: dashboard ${apiUrl}/ — sign in with the admin token in ${join(dataDir, 'admin-token')}`);
    log(`berth: CLI: npx berth login --url ${apiUrl} --token "$(cat ${join(dataDir, 'admin-token')})"`);
    return { apiUrl, redisUrl, adminToken, exited: Promise.race(exits), stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * The worker's token file: kept from an earlier start while it still works, otherwise a worker account (made once)
 * gets a new token, written 0600.
 */
async function ensureWorkerToken(apiUrl: string, adminToken: string, file: string): Promise<string> {
  const api = async (path: string, init: { method?: string; body?: unknown; token?: string } = {}) => {
    const res = await fetch(`${apiUrl}${path}`, {
      method: init.method ?? 'GET',
      headers: {
        authorization: `Bearer ${init.token ?? adminToken}`,
        ...(init.body ? { 'content-type': 'application/json' } : {}),
      },
      ...(init.body ? { body: JSON.stringify(init.body) } : {}),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  if (existsSync(file) && (await api('/v1/me', { token: readFileSync(file, 'utf8').trim() })).status === 200) {
    return file;
  }
  const name = `worker-${hostname()
    .toLowerCase()
    .replace(/[^a-z0-9._-]/g, '-')}`.slice(0, 63);
  let user = await api('/v1/users', { method: 'POST', body: { name, role: 'worker' } });
  if (user.status === 409) {
    const all = (await api('/v1/users')).body.users as { id: string; name: string }[];
    user = { status: 200, body: all.find((u) => u.name === name)! };
  }
  const token = await api('/v1/tokens', { method: 'POST', body: { name: 'stack', user: user.body.id } });
  if (token.status !== 201)
    throw new StackError(`berth: could not make the worker's token: ${JSON.stringify(token.body)}`);
  writeFileSync(file, `${String(token.body.token)}\n`, { mode: 0o600 });
  return file;
}

function startRedis(port: number, dir: string): ChildProcess {
  const found = spawnSync('sh', ['-c', 'command -v redis-server']);
  if (found.status !== 0) {
    throw new StackError(
      'berth: redis-server is not installed — install it with: apt-get install -y redis-server (or set REDIS_URL)',
    );
  }
  return spawn('redis-server', redisArgs(port, dir), { stdio: 'ignore' });
}

function spawnNode(script: string, env: NodeJS.ProcessEnv): ChildProcess {
  return spawn(process.execPath, [script], { env, stdio: ['ignore', 'inherit', 'inherit'] });
}

async function terminate(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const gone = new Promise<void>((res) => proc.once('exit', () => res()));
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
  await gone;
  clearTimeout(timer);
}

async function checkDocker(dockerHost: string | undefined): Promise<void> {
  const socketPath = dockerHost?.startsWith('unix://') ? dockerHost.slice('unix://'.length) : '/var/run/docker.sock';
  const url = dockerHost?.startsWith('tcp://')
    ? `http://${dockerHost.slice('tcp://'.length)}/_ping`
    : 'http://docker/_ping';
  const ok = await httpStatus(url, dockerHost?.startsWith('tcp://') ? undefined : socketPath).then(
    (s) => s === 200,
    () => false,
  );
  if (!ok) {
    throw new StackError(
      `berth: no Docker engine answers at ${dockerHost ? maskUrl(dockerHost) : socketPath} — install and start it with: scripts/setup-system.sh (apt-get install -y docker.io; dockerd &)`,
    );
  }
}

function httpStatus(url: string, socketPath?: string): Promise<number> {
  return new Promise((res, rej) => {
    const req = request(url, { socketPath, timeout: 2000 }, (r) => {
      r.resume();
      res(r.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', rej);
    req.end();
  });
}

async function redisPing(port: number): Promise<boolean> {
  return spawnSync('redis-cli', ['-p', String(port), 'ping'], { encoding: 'utf8' }).stdout?.trim() === 'PONG';
}

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? res(addr.port) : rej(new Error('no port'))));
    });
  });
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new StackError(`berth: ${what} within ${timeoutMs / 1000} s`);
}
