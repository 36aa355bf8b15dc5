// A second, throwaway Docker engine started without the GPU hook on its PATH: what a host without the NVIDIA
// Container Toolkit looks like. Its own socket, data root, containerd namespace and bridge. (`--bridge=none` would
// make it delete the main engine's docker0, so it gets a bridge of its own.) Options give it a daemon.json (other
// runtimes, another default runtime) or keep the stand-in GPU hook, for tests of a differently configured host.
import Docker from 'dockerode';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface BareDockerd {
  docker: Docker;
  socket: string;
  /**
   * Stops dockerd (SIGTERM, as systemd does) and starts it again on the same data root, with `daemonConfig` when
   * given; resolves once it answers. `away` is how long it stays down.
   */
  restart(o?: { daemonConfig?: Record<string, unknown>; awayMs?: number }): Promise<void>;
  stop(): Promise<void>;
}

export interface BareDockerdOptions {
  /** The engine's daemon.json (e.g. `runtimes` and `default-runtime`); none by default. */
  daemonConfig?: Record<string, unknown>;
  /** Keep the stand-in GPU hook on the engine's PATH, so it accepts GPU DeviceRequests. Default false. */
  gpuHook?: boolean;
  /** The bridge's address: engines started by test files that may run at once need different ones. */
  bridgeCidr?: string;
  /** A private folder for the caller's own files (a runtime wrapper…), removed with the engine. */
  dir?: string;
}

export async function startBareDockerd(images: string[], o: BareDockerdOptions = {}): Promise<BareDockerd> {
  const dir = o.dir ?? mkdtempSync(join(tmpdir(), 'berth-bare-dockerd-'));
  const socket = join(dir, 'docker.sock');
  const name = `berth-bare-${process.pid}`;
  const bridge = `berthb${process.pid % 100000}`;
  execFileSync('ip', ['link', 'add', 'name', bridge, 'type', 'bridge']);
  execFileSync('ip', ['addr', 'add', o.bridgeCidr ?? '10.213.0.1/24', 'dev', bridge]);
  // Unless asked to keep it, the hook's folder is taken off PATH so this engine never registers the NVIDIA driver.
  const path = [
    ...(o.gpuHook ? [join(__dirname, 'gpu-hook')] : []),
    ...(process.env.PATH ?? '').split(':').filter((p) => !p.includes('gpu-hook') && !p.includes('berth-gpu-standin')),
  ].join(':');
  const config = join(dir, 'daemon.json');
  writeFileSync(config, JSON.stringify(o.daemonConfig ?? {}));
  const launch = (): ChildProcess =>
    spawn(
      'dockerd',
      [
        `--host=unix://${socket}`,
        `--data-root=${join(dir, 'data')}`,
        `--exec-root=${join(dir, 'exec')}`,
        `--pidfile=${join(dir, 'docker.pid')}`,
        `--bridge=${bridge}`,
        '--iptables=false',
        '--ip-masq=false',
        `--containerd-namespace=${name}`,
        `--containerd-plugins-namespace=${name}-plugins`,
        `--config-file=${config}`,
      ],
      { env: { ...process.env, PATH: path }, stdio: 'ignore' },
    );
  const docker = new Docker({ socketPath: socket });
  const answers = async () => {
    for (let i = 0; ; i++) {
      if (
        await docker.ping().then(
          () => true,
          () => false,
        )
      )
        return;
      if (i > 80) throw new Error('the bare dockerd did not start');
      await new Promise((r) => setTimeout(r, 250));
    }
  };
  let child = launch();
  const exit = async () => {
    child.kill('SIGTERM');
    if (child.exitCode === null && child.signalCode === null) await new Promise((r) => child.once('exit', r));
  };
  await answers();
  for (const image of images) {
    execFileSync('sh', ['-c', `docker save ${image} | docker -H unix://${socket} load`], { stdio: 'ignore' });
  }
  return {
    docker,
    socket,
    async restart(r = {}) {
      await exit();
      if (r.daemonConfig) writeFileSync(config, JSON.stringify(r.daemonConfig));
      await new Promise((done) => setTimeout(done, r.awayMs ?? 0));
      child = launch();
      await answers();
    },
    async stop() {
      for (const c of await docker.listContainers({ all: true })) {
        await docker
          .getContainer(c.Id)
          .remove({ force: true })
          .catch(() => {});
      }
      await exit();
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
