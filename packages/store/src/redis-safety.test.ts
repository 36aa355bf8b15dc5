// checkRedisSafety against real redis-servers: one as the stack starts it, one whose CONFIG is renamed (managed
// services hide it) so only INFO answers, and an ACL user that may run neither.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { redisArgs } from '../../../test/support/redis-server.js';
import { connectRedis, redisReady, type Redis } from './redis.js';
import { checkRedisSafety, readRedisSettings, UnsafeRedisError } from './redis-safety.js';

interface Server {
  url: string;
  /** A client that can still change the settings (under CONFIG's new name where it was renamed). */
  admin: Redis;
  configCommand: string;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const { port } = probe.address() as AddressInfo;
  await new Promise((r) => probe.close(r));
  return port;
}

async function startServer(extra: string[], configCommand = 'CONFIG'): Promise<Server> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'berth-redis-safety-'));
  const proc: ChildProcess = spawn('redis-server', [...redisArgs(port, dir), ...extra], { stdio: 'ignore' });
  for (let i = 0; ; i++) {
    if (spawnSync('redis-cli', ['-p', String(port), 'ping'], { encoding: 'utf8' }).stdout?.trim() === 'PONG') break;
    if (i === 100) throw new Error(`redis-server did not start on port ${port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const url = `redis://127.0.0.1:${port}`;
  const admin = connectRedis(url);
  expect(await redisReady(admin, 5000)).toBe(true);
  return {
    url,
    admin,
    configCommand,
    async stop() {
      admin.disconnect();
      if (proc.exitCode === null) await new Promise((r) => (proc.once('exit', r), proc.kill('SIGTERM')));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const makeUnsafe = async (s: Server) => {
  await s.admin.call(s.configCommand, 'SET', 'appendonly', 'no');
  await s.admin.call(s.configCommand, 'SET', 'maxmemory-policy', 'allkeys-lru');
};
const refusal = (url: string, allowUnsafe = false) =>
  checkRedisSafety(url, { allowUnsafe }).then(
    () => undefined,
    (err: unknown) => err,
  );

describe('checkRedisSafety', () => {
  let stack: Server;
  let hidden: Server;
  beforeAll(async () => {
    [stack, hidden] = await Promise.all([
      startServer([]),
      startServer(['--rename-command', 'CONFIG', 'berth-test-config'], 'berth-test-config'),
    ]);
  });
  afterAll(async () => {
    await Promise.all([stack, hidden].map((s) => s?.stop()));
  });

  it('accepts the Redis the stack and the tests start (AOF on, noeviction)', async () => {
    await expect(readRedisSettings(stack.admin)).resolves.toEqual({
      appendonly: 'yes',
      maxmemoryPolicy: 'noeviction',
    });
    await expect(checkRedisSafety(stack.url, { allowUnsafe: false })).resolves.toEqual([]);
  });

  it('reads both settings from INFO where CONFIG is disabled', async () => {
    await expect(readRedisSettings(hidden.admin)).resolves.toEqual({
      appendonly: 'yes',
      maxmemoryPolicy: 'noeviction',
    });
    await expect(checkRedisSafety(hidden.url, { allowUnsafe: false })).resolves.toEqual([]);
  });

  it('refuses AOF off and an evicting policy, naming both and the fixes; allowed, returns them to warn about', async () => {
    await makeUnsafe(stack);
    await makeUnsafe(hidden);
    for (const server of [stack, hidden]) {
      const err = await refusal(server.url);
      expect(err).toBeInstanceOf(UnsafeRedisError);
      const { message, problems } = err as UnsafeRedisError;
      expect(problems).toEqual([
        expect.stringContaining('appendonly is "no"'),
        expect.stringContaining('maxmemory-policy is "allkeys-lru"'),
      ]);
      for (const fix of ['"appendonly yes"', '"maxmemory-policy noeviction"', 'BERTH_ALLOW_UNSAFE_REDIS=1']) {
        expect(message).toContain(fix);
      }
      await expect(checkRedisSafety(server.url, { allowUnsafe: true })).resolves.toEqual(problems);
    }
  });

  it('refuses one bad setting on its own', async () => {
    await stack.admin.call('CONFIG', 'SET', 'appendonly', 'yes');
    expect(((await refusal(stack.url)) as UnsafeRedisError).problems).toEqual([
      expect.stringContaining('maxmemory-policy is "allkeys-lru"'),
    ]);
  });

  it('refuses a Redis that answers neither CONFIG nor INFO, unless allowed', async () => {
    await stack.admin.call('ACL', 'SETUSER', 'blind', 'on', '>blind-pw', '~*', '&*', '+@all', '-config', '-info');
    const url = stack.url.replace('//', '//blind:blind-pw@');
    // ioredis says on the console that it skips its ready check for a user without INFO; that is expected here.
    const quiet = jest.spyOn(console, 'warn').mockImplementation(() => {});
    const blind = connectRedis(url);
    try {
      expect(await redisReady(blind, 5000)).toBe(true);
      await expect(readRedisSettings(blind)).resolves.toEqual({ appendonly: undefined, maxmemoryPolicy: undefined });
    } finally {
      blind.disconnect();
    }
    const err = (await refusal(url)) as UnsafeRedisError;
    expect(err).toBeInstanceOf(UnsafeRedisError);
    expect(err.problems).toEqual([
      expect.stringContaining('appendonly could not be read'),
      expect.stringContaining('maxmemory-policy could not be read'),
    ]);
    await expect(checkRedisSafety(url, { allowUnsafe: true })).resolves.toHaveLength(2);
    quiet.mockRestore();
  });

  it('waits for a Redis that is not up yet, and says so once', async () => {
    const port = await freePort();
    let waiting = 0;
    const check = checkRedisSafety(`redis://127.0.0.1:${port}`, { allowUnsafe: false, waiting: () => waiting++ });
    await new Promise((r) => setTimeout(r, 5500));
    expect(waiting).toBe(1);
    const dir = mkdtempSync(join(tmpdir(), 'berth-redis-safety-'));
    const late = spawn('redis-server', redisArgs(port, dir), { stdio: 'ignore' });
    try {
      await expect(check).resolves.toEqual([]);
    } finally {
      await new Promise((r) => (late.once('exit', r), late.kill('SIGTERM')));
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
