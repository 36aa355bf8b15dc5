// A second, throwaway Docker engine started without the GPU hook on its PATH: what a host without the NVIDIA
// Container Toolkit looks like. Its own socket, data root, containerd namespace and bridge (scripts/lib/dockerd.mjs,
// which the chaos suite starts too). Options give it a daemon.json (other runtimes, another default runtime) or keep
// the stand-in GPU hook, for tests of a differently configured host.
import Docker from 'dockerode';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDockerd, type Dockerd } from '../../scripts/lib/dockerd.mjs';

export interface BareDockerd extends Dockerd {
  docker: Docker;
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
  // Unless asked to keep it, the hook's folder is taken off PATH so this engine never registers the NVIDIA driver.
  const path = [
    ...(o.gpuHook ? [join(__dirname, 'gpu-hook')] : []),
    ...(process.env.PATH ?? '').split(':').filter((p) => !p.includes('gpu-hook') && !p.includes('berth-gpu-standin')),
  ].join(':');
  const engine = await startDockerd({
    dir: o.dir ?? mkdtempSync(join(tmpdir(), 'berth-bare-dockerd-')),
    bridge: `berthb${process.pid % 100000}`,
    bridgeCidr: o.bridgeCidr ?? '10.213.0.1/24',
    namespace: `berth-bare-${process.pid}`,
    daemonConfig: o.daemonConfig ?? {},
    path,
    images,
  });
  return { ...engine, docker: new Docker({ socketPath: engine.socket }) };
}
