// Brings berth up on one machine: its own redis-server unless REDIS_URL is given, the API and one worker as
// child processes, the local Docker engine. Owns every child and stops them all on close.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
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
    children.push({ name: 'api', proc: spawnNode(join(appsDir, 'api/dist/main.js'), apiEnv) });
    // The worker uploads artifacts to this API; the API listens on all interfaces only if HOST says so.
    const apiHost = config.HOST === '0.0.0.0' ? '127.0.0.1' : config.HOST;
    const workerEnv = { ...env, BERTH_API_URL: `http://${apiHost}:${config.PORT}` };
    children.push({ name: 'worker', proc: spawnNode(join(appsDir, 'worker/dist/main.js'), workerEnv) });
    const apiUrl = `http://${config.HOST === '0.0.0.0' ? '127.0.0.1' : config.HOST}:${config.PORT}`;
    const exited = Promise.race(
      children.map(
        ({ name, proc }) =>
          new Promise<string>((res) => proc.once('exit', (code) => res(`${name} exited with ${code}`))),
      ),
    );
    const ready = waitFor(
      async () => (await httpStatus(`${apiUrl}/readyz`)) === 200,
      20_000,
      'the API did not become ready',
    );
    await Promise.race([ready, exited.then((why) => Promise.reject(new StackError(`berth: ${why} during start-up`)))]);
    log(`berth: API on ${apiUrl} (docs at ${apiUrl}/docs), one worker on the local Docker engine`);
    return { apiUrl, redisUrl, exited, stop };
  } catch (err) {
    await stop();
    throw err;
  }
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
      `berth: no Docker engine answers at ${dockerHost ?? socketPath} — install and start it with: scripts/setup-system.sh (apt-get install -y docker.io; dockerd &)`,
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
