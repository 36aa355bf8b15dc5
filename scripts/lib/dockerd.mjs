// A second, throwaway Docker engine next to the machine's main one: its own socket, data root, exec root, containerd
// namespace and bridge, so it can be configured, restarted and removed without touching the main engine.
// (`--bridge=none` would make it delete the main engine's docker0, so it gets a bridge of its own.) Plain ESM with a
// hand-written dockerd.d.mts, so the integration tests (test/support/bare-dockerd.ts) and the chaos suite
// (bench/chaos/chaos.mjs) start it the same way.
import { execFileSync, spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import process from 'node:process';
import { setTimeout as sleep } from 'node:timers/promises';

/** Whether the engine at `socket` answers its `/_ping`. */
const pings = (socket) =>
  new Promise((resolve) => {
    const req = request({ socketPath: socket, path: '/_ping', timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });

/** Starts the engine and loads `images` into it from the main one; resolves once it answers. */
export async function startDockerd(o) {
  const { dir, bridge, namespace } = o;
  mkdirSync(dir, { recursive: true });
  const socket = join(dir, 'docker.sock');
  const cli = ['-H', `unix://${socket}`];
  execFileSync('ip', ['link', 'add', 'name', bridge, 'type', 'bridge']);
  execFileSync('ip', ['addr', 'add', o.bridgeCidr, 'dev', bridge]);
  const config = join(dir, 'daemon.json');
  writeFileSync(config, JSON.stringify(o.daemonConfig ?? {}));
  const argv = [
    `--host=unix://${socket}`,
    `--data-root=${join(dir, 'data')}`,
    `--exec-root=${join(dir, 'exec')}`,
    `--pidfile=${join(dir, 'docker.pid')}`,
    `--bridge=${bridge}`,
    '--iptables=false',
    '--ip-masq=false',
    `--containerd-namespace=${namespace}`,
    `--containerd-plugins-namespace=${namespace}-plugins`,
    `--config-file=${config}`,
  ];
  const env = { ...process.env, PATH: o.path ?? process.env.PATH };
  const log = o.log ? createWriteStream(join(dir, 'dockerd.log'), { flags: 'a' }) : undefined;
  let proc;
  const up = async () => {
    proc = spawn('dockerd', argv, { env, stdio: ['ignore', log ? 'pipe' : 'ignore', log ? 'pipe' : 'ignore'] });
    if (log) {
      proc.stdout.pipe(log, { end: false });
      proc.stderr.pipe(log, { end: false });
    }
    for (const deadline = Date.now() + 20_000; !(await pings(socket)); await sleep(200)) {
      if (Date.now() > deadline) throw new Error(`the dockerd at ${socket} did not start`);
    }
  };
  const down = () =>
    new Promise((resolve) => {
      if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
      proc.once('exit', resolve);
      proc.kill('SIGTERM');
    });
  await up();
  for (const image of o.images ?? []) {
    execFileSync('sh', ['-c', `docker save ${image} | docker ${cli.join(' ')} load`], { stdio: 'ignore' });
  }
  return {
    socket,
    async restart(r = {}) {
      await down();
      if (r.daemonConfig) writeFileSync(config, JSON.stringify(r.daemonConfig));
      await sleep(r.awayMs ?? 0);
      await up();
    },
    async stop() {
      const ids = execFileSync('docker', [...cli, 'ps', '-aq'], { encoding: 'utf8' })
        .split('\n')
        .filter(Boolean);
      for (const id of ids) {
        try {
          execFileSync('docker', [...cli, 'rm', '-f', id], { stdio: 'ignore' });
        } catch {
          // Gone already, or going: the engine's data root is removed below either way.
        }
      }
      await down();
      log?.end();
      // Whatever the engine left mounted under its folders (a restarted engine leaves more than data/*) goes first.
      const mounts = readFileSync('/proc/self/mounts', 'utf8')
        .split('\n')
        .map((l) => l.split(' ')[1] ?? '')
        .filter((m) => m.startsWith(dir))
        .reverse();
      for (const m of mounts) execFileSync('umount', ['-l', m]);
      rmSync(dir, { recursive: true, force: true });
      execFileSync('ip', ['link', 'del', bridge]);
    },
  };
}
