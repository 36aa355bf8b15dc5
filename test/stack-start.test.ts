// `npm start` with no REDIS_URL starts and owns a redis-server; SIGINT stops everything it started.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(__dirname, '..');

function childPids(pid: number): number[] {
  try {
    const kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
    return kids.flatMap((k) => [k, ...childPids(k)]);
  } catch {
    return [];
  }
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(' ')[2] !== 'Z';
  } catch {
    return false;
  }
};

test('the stack starts its own Redis, serves, and leaves no process behind after SIGINT', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'berth-stack-'));
  const port = 18_000 + Math.floor(Math.random() * 1000);
  const env: NodeJS.ProcessEnv = { ...process.env, PORT: String(port), BERTH_DATA_DIR: dataDir, LOG_LEVEL: 'warn' };
  delete env.REDIS_URL;
  const proc = spawn(process.execPath, [join(root, 'apps/stack/dist/main.js')], {
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  try {
    const deadline = Date.now() + 30_000;
    while (!stderr.includes('API on') && Date.now() < deadline && proc.exitCode === null)
      await new Promise((r) => setTimeout(r, 100));
    expect(stderr).toContain('started redis-server');
    const ready = await (await fetch(`http://127.0.0.1:${port}/readyz`)).json();
    expect(ready.status).toBe('ready');

    const descendants = childPids(proc.pid!);
    const names = descendants.map((p) => readFileSync(`/proc/${p}/comm`, 'utf8').trim());
    expect(names).toEqual(expect.arrayContaining(['redis-server']));
    expect(descendants.length).toBeGreaterThanOrEqual(3);

    const exited = new Promise<number | null>((res) => proc.once('exit', (code) => res(code)));
    proc.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(descendants.filter(alive)).toEqual([]);
  } finally {
    if (proc.exitCode === null) proc.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  }
});
