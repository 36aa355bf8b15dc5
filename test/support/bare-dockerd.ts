// A second, throwaway Docker engine started without the GPU hook on its PATH: what a host without the NVIDIA
// Container Toolkit looks like. Its own socket, data root, containerd namespace and bridge. (`--bridge=none` would
// make it delete the main engine's docker0, so it gets a bridge of its own.)
import Docker from 'dockerode';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface BareDockerd {
  docker: Docker;
  socket: string;
  stop(): Promise<void>;
}

export async function startBareDockerd(images: string[]): Promise<BareDockerd> {
  const dir = mkdtempSync(join(tmpdir(), 'berth-bare-dockerd-'));
  const socket = join(dir, 'docker.sock');
  const name = `berth-bare-${process.pid}`;
  const bridge = `berthb${process.pid % 100000}`;
  execFileSync('ip', ['link', 'add', 'name', bridge, 'type', 'bridge']);
  execFileSync('ip', ['addr', 'add', '10.213.0.1/24', 'dev', bridge]);
  // The hook's folder is taken off PATH so this engine never registers the NVIDIA device driver.
  const path = (process.env.PATH ?? '')
    .split(':')
    .filter((p) => !p.includes('gpu-hook') && !p.includes('berth-gpu-standin'))
    .join(':');
  const child: ChildProcess = spawn(
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
    ],
    { env: { ...process.env, PATH: path }, stdio: 'ignore' },
  );
  const docker = new Docker({ socketPath: socket });
  for (let i = 0; ; i++) {
    if (
      await docker.ping().then(
        () => true,
        () => false,
      )
    )
      break;
    if (i > 80) throw new Error('the bare dockerd did not start');
    await new Promise((r) => setTimeout(r, 250));
  }
  for (const image of images) {
    execFileSync('sh', ['-c', `docker save ${image} | docker -H unix://${socket} load`], { stdio: 'ignore' });
  }
  return {
    docker,
    socket,
    async stop() {
      for (const c of await docker.listContainers({ all: true })) {
        await docker
          .getContainer(c.Id)
          .remove({ force: true })
          .catch(() => {});
      }
      child.kill('SIGTERM');
      if (child.exitCode === null) await new Promise((r) => child.once('exit', r));
      execFileSync('sh', ['-c', `umount ${join(dir, 'data')}/* 2>/dev/null || true`]);
      rmSync(dir, { recursive: true, force: true });
      execFileSync('ip', ['link', 'del', bridge]);
    },
  };
}
