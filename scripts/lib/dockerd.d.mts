// Types of dockerd.mjs (plain ESM, run by node from bench/ and compiled by swc for the tests).

export interface DockerdOptions {
  /** The engine's folder (created if missing): socket, data and exec roots, daemon.json; removed by stop(). */
  dir: string;
  /** Name of the bridge created for it (and deleted by stop()); engines that may run at once need different ones. */
  bridge: string;
  /** The bridge's address, e.g. `10.213.0.1/24`; engines that may run at once need different ones. */
  bridgeCidr: string;
  /** Its containerd namespace (and `<namespace>-plugins`). */
  namespace: string;
  /** The engine's daemon.json (e.g. `live-restore`, `runtimes`, `default-runtime`); `{}` by default. */
  daemonConfig?: Record<string, unknown>;
  /** dockerd's PATH (which runtime hooks it finds); this process's by default. */
  path?: string;
  /** Append dockerd's output to `<dir>/dockerd.log`; by default it is dropped. */
  log?: boolean;
  /** Images copied in from the main engine (`docker save | docker load`) once it answers. */
  images?: string[];
}

export interface Dockerd {
  /** The engine's unix socket. */
  socket: string;
  /**
   * Stops dockerd (SIGTERM, as systemd does) and starts it again on the same data root, with `daemonConfig` when
   * given; resolves once it answers. `awayMs` is how long it stays down.
   */
  restart(o?: { daemonConfig?: Record<string, unknown>; awayMs?: number }): Promise<void>;
  /** Removes its containers, stops it, unmounts and removes its folder, deletes its bridge. */
  stop(): Promise<void>;
}

export function startDockerd(o: DockerdOptions): Promise<Dockerd>;
