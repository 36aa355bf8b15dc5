// ContainerRuntime on the Docker Engine API through dockerode. Errors are told apart by statusCode, never by text.
import Docker from 'dockerode';
import { Demuxer, type StreamName } from '../pump/demux.js';
import { LogCursor, type LogPosition } from '../pump/log-cursor.js';
import {
  gangNetworkOf,
  LaunchError,
  type AttemptHooks,
  type AttemptResult,
  type ContainerRuntime,
  type LaunchSpec,
  type ManagedContainer,
} from './container-runtime.js';
import { jobLimitDefaults, memlockLimit, type JobLimitDefaults } from './host-limits.js';
import { ensureJobNetwork, removeJobNetwork } from './job-network.js';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

interface DockerError {
  statusCode?: number;
}

function statusOf(err: unknown): number | undefined {
  return typeof err === 'object' && err !== null ? (err as DockerError).statusCode : undefined;
}

/** What the runtime gives every container beyond its launch: resolved once, when the runtime is built. */
export interface ContainerDefaults extends JobLimitDefaults {
  /** The memlock ulimit: -1 (NGC's recommendation) unless the host caps it. */
  memlock: number;
  /** The network of launches that name none. */
  network: string;
  log: { maxSize: string; maxFiles: number };
  /** Where a launch on the host's network runs (its CgroupParent, fenced); none: such launches are refused. */
  hostNetwork?: { cgroupParent: string } | undefined;
}

export interface DockerRuntimeOptions {
  /**
   * How long the engine may stay unreachable while a container runs before the attempt is given up as INFRA_ERROR
   * (default 10 minutes): long enough for a dockerd restart or upgrade.
   */
  engineGraceMs?: number;
  /**
   * How long after a container's unasked-for non-zero exit the engine is watched (default 2 s): an engine shutting
   * down without live-restore stops its containers and then goes, and a container that died that way died of the
   * engine, not of its job.
   */
  exitSettleMs?: number;
  /** Default memlockLimit(): -1 unless this host's own hard limit is lower. */
  memlock?: number;
  /** Limits of launches whose job and recipe set none. Default jobLimitDefaults({}): the host's share. */
  limits?: JobLimitDefaults;
  /** Default 'bridge', Docker's own; the worker passes config.jobDefaults.network. */
  network?: string;
  /** The engine's copy of each log: json-file of `maxSize` a file, `maxFiles` kept (default 256m × 4). */
  log?: { maxSize: string; maxFiles: number };
  /**
   * The fence of multi-node members on the host's network (ensureHostNetworkFence, run before this runtime is
   * made). Without it no launch runs on the host's network.
   */
  hostNetwork?: { cgroupParent: string } | undefined;
}

/** The host's InfiniBand devices (uverbs, rdma_cm), for NCCL's RDMA between hosts; none where it has none. */
function infinibandDevices(
  dir = '/dev/infiniband',
): { PathOnHost: string; PathInContainer: string; CgroupPermissions: string }[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names.map((n) => ({ PathOnHost: join(dir, n), PathInContainer: join(dir, n), CgroupPermissions: 'rwm' }));
}

/** NVIDIA_VISIBLE_DEVICES for a launch: the toolkit's word for "no GPU" is `void`. */
function visibleDevices(gpus: LaunchSpec['gpus']): string {
  if (gpus === 'none') return 'void';
  return gpus === 'all' ? 'all' : gpus.join(',');
}

export function createBody(spec: LaunchSpec, d: ContainerDefaults): Docker.ContainerCreateOptions {
  const env: Record<string, string> = {
    // A read-only root leaves HOME (/root) unwritable; tools that keep caches or config there get /tmp instead.
    ...(spec.readOnlyRootfs ? { HOME: '/tmp' } : {}),
    ...spec.env,
    // Always set, so the image's ENV (NGC images say `all`) never decides which GPUs a job sees: a runtime that reads
    // the container's environment, as the toolkit's legacy mode does, finds exactly the devices given, or none.
    NVIDIA_VISIBLE_DEVICES: visibleDevices(spec.gpus),
  };
  const memory = spec.memoryBytes ?? d.memoryBytes;
  const onHost = spec.network === 'host';
  if (onHost && !d.hostNetwork) {
    throw new LaunchError(
      'INFRA_ERROR',
      'this worker has no fence for members on the host network (BERTH_WORKER_ADDRESS)',
    );
  }
  return {
    name: spec.name,
    Image: spec.image,
    Cmd: spec.command,
    Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
    Labels: spec.labels,
    Tty: false,
    OpenStdin: false,
    HostConfig: {
      AutoRemove: false,
      RestartPolicy: { Name: 'no' },
      Privileged: false,
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges'],
      PidsLimit: 4096,
      // Never the host's IPC, PID or user namespaces: each job gets its own (shared memory via ShmSize). The host's
      // network only for a member of a multi-node job across hosts (NCCL), in the cgroup the host-network fence
      // keeps from berth's ports, with the host's InfiniBand devices.
      NetworkMode: spec.network ?? d.network,
      ...(onHost ? { CgroupParent: d.hostNetwork!.cgroupParent, Devices: infinibandDevices() } : {}),
      IpcMode: 'private',
      PidMode: '',
      UsernsMode: '',
      // A CPU job runs on plain runc even where the host's default runtime is nvidia: that runtime would hand it
      // every GPU the image's environment names, those leased to other tenants included.
      ...(spec.gpus === 'none' ? { Runtime: 'runc' } : {}),
      // The image stays as it was pulled, for this job's retry and the next tenant's run; /tmp is memory (charged to
      // the memory limit below), exec allowed since compilers (torch.compile, triton) load what they build there.
      ...(spec.readOnlyRootfs ? { ReadonlyRootfs: true, Tmpfs: { '/tmp': 'rw,exec,nosuid,nodev' } } : {}),
      Binds: spec.mounts.map((m) => `${m.hostPath}:${m.containerPath}:${m.readOnly ? 'ro' : 'rw'}`),
      // No swap beyond the limit: a training job that outgrows its memory should end as OOM_KILLED, not crawl.
      Memory: memory,
      MemorySwap: memory,
      NanoCpus: spec.nanoCpus ?? d.nanoCpus,
      // Half the weight of the host's own processes: under contention the worker's heartbeats and log pumping win.
      CpuShares: 512,
      ShmSize: spec.shmSizeBytes,
      Ulimits: [
        { Name: 'memlock', Soft: d.memlock, Hard: d.memlock },
        { Name: 'stack', Soft: 67108864, Hard: 67108864 },
      ],
      // The engine's copy is what the worker reads (again, after a follow stops early): by default 1 GiB is kept
      // before rotation drops the oldest, so a worker that falls behind a flood can still catch up.
      LogConfig: { Type: 'json-file', Config: { 'max-size': d.log.maxSize, 'max-file': String(d.log.maxFiles) } },
      ...(spec.gpus === 'none'
        ? {}
        : {
            DeviceRequests: [
              spec.gpus === 'all'
                ? { Driver: '', Count: -1, Capabilities: [['gpu']] }
                : { Driver: '', DeviceIDs: spec.gpus, Capabilities: [['gpu']] },
            ],
          }),
    },
  };
}

/** Frames of one stream read together, and where the log stands after the last of them. */
interface Run {
  stream: StreamName;
  payloads: Buffer[];
  position: LogPosition | undefined;
}

/** Output the hooks could not take (the log file's disk is full…): the attempt's own failure, never retried here. */
class HookFailed extends Error {
  constructor(readonly inner: unknown) {
    super('output hook failed');
  }
}

/**
 * Failures that say the engine is away for now, not that the container is: the socket gone or refusing while dockerd
 * restarts, a connection cut mid-stream, an engine answering 5xx while it starts up.
 */
function engineAway(err: unknown): boolean {
  const status = statusOf(err);
  if (status !== undefined) return status >= 500;
  const code = (err as { code?: string } | null)?.code;
  if (code && ['ECONNREFUSED', 'ENOENT', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ECONNABORTED'].includes(code))
    return true;
  return err instanceof Error && /socket hang up|aborted|premature close/i.test(err.message);
}

export class DockerRuntime implements ContainerRuntime {
  private readonly defaults: ContainerDefaults;
  private readonly engineGraceMs: number;
  private readonly exitSettleMs: number;
  /** Containers berth asked to stop: their exits are berth's doing, not the engine's. */
  private readonly stopping = new Set<string>();

  constructor(
    private readonly docker: Docker,
    o: DockerRuntimeOptions = {},
  ) {
    this.defaults = {
      memlock: o.memlock ?? memlockLimit(),
      ...(o.limits ?? jobLimitDefaults({})),
      network: o.network ?? 'bridge',
      log: o.log ?? { maxSize: '256m', maxFiles: 4 },
      hostNetwork: o.hostNetwork,
    };
    this.engineGraceMs = o.engineGraceMs ?? 10 * 60_000;
    this.exitSettleMs = o.exitSettleMs ?? 2000;
  }

  async gangNetwork(jobId: string): Promise<string> {
    const net = gangNetworkOf(jobId);
    // Members reach each other (icc) and nothing beyond: no egress, and the host's ports fenced as on the jobs network.
    await ensureJobNetwork(this.docker, { ...net, icc: true, internal: true, labels: { 'berth.job': jobId } });
    return net.name;
  }

  async dropGangNetwork(jobId: string): Promise<void> {
    await removeJobNetwork(this.docker, gangNetworkOf(jobId)).catch(() => {});
  }

  async run(spec: LaunchSpec, hooks: AttemptHooks, from?: LogPosition): Promise<AttemptResult> {
    const container = this.docker.getContainer(spec.name);
    const outage = { seen: false };
    let info = await this.inspectThrough(spec.name, outage);
    if (!info) {
      await this.create(spec);
      info = await this.inspect(spec.name);
      if (!info) throw new LaunchError('INFRA_ERROR', `container ${spec.name} vanished after create`);
    }

    if (info.State.Status === 'created') {
      // Registered before start so even an instant exit is seen; inspect below stays the source of truth.
      const exited = container.wait({ condition: 'next-exit' });
      exited.catch(() => {});
      try {
        await container.start();
      } catch (err) {
        if (statusOf(err) !== 304) throw await this.launchError(err, spec);
      }
    }
    if (info.State.Status === 'created' || info.State.Running) await hooks.onRunning();

    // Docker's follow can stop early: when the engine rotates its log file, when the container exits while the
    // reader is behind (seen on engine 20.10), when the connection is cut or dockerd restarts. So the log is read
    // again from the last message's timestamp until a read that started after the exit has been read to its end;
    // the cursor drops what was already passed on. Only evidence that the container is gone ends the follow early.
    const cursor = new LogCursor(from);
    let state = info.State;
    for (;;) {
      const since = cursor.rewind();
      // A read that begins after the exit is the last one, and does not follow.
      const last = !(state.Running || state.Status === 'created');
      try {
        await this.readLog(spec.name, { follow: !last, since }, cursor, hooks);
      } catch (err) {
        if (err instanceof HookFailed) throw err.inner;
        if (!engineAway(err) && statusOf(err) !== 404) throw err;
        outage.seen ||= engineAway(err);
      }
      const now = (await this.inspectThrough(spec.name, outage))?.State;
      if (!now || last) break;
      // The follow ended: follow again if the container still runs, else one more read to the end.
      state = now;
    }
    const final = (await this.inspectThrough(spec.name, outage))?.State;
    if (!final) throw new LaunchError('INFRA_ERROR', `container ${spec.name} disappeared before its exit was read`);
    if (!outage.seen && final.ExitCode !== 0 && !final.OOMKilled && !this.stopping.has(spec.name)) {
      outage.seen = await this.engineGoes();
    }
    this.stopping.delete(spec.name);
    return {
      exitCode: final.ExitCode,
      oomKilled: final.OOMKilled,
      ...(outage.seen ? { engineOutage: true } : {}),
    };
  }

  /** One read of the container's log (following it or not), its lines handed to the hooks past the cursor. */
  private async readLog(
    name: string,
    o: { follow: boolean; since: string | undefined },
    cursor: LogCursor,
    hooks: AttemptHooks,
  ): Promise<void> {
    const output = async ({ stream, payloads, position }: Run) => {
      try {
        await hooks.onOutput(stream, Buffer.concat(payloads), position);
      } catch (err) {
        throw new HookFailed(err);
      }
    };
    const logs = await this.logStream(name, o);
    const demux = new Demuxer();
    for await (const chunk of logs) {
      // The engine frames each line; the frames of one stream in a chunk go on together, as one write.
      let run: Run | undefined;
      for (const frame of demux.push(chunk)) {
        const payload = cursor.accept(frame.payload);
        if (!payload) continue;
        if (run && run.stream !== frame.stream) {
          await output(run);
          run = undefined;
        }
        run ??= { stream: frame.stream, payloads: [], position: undefined };
        run.payloads.push(payload);
        run.position = cursor.position();
      }
      if (run) await output(run);
    }
  }

  /** True when the engine stops answering within exitSettleMs. */
  private async engineGoes(): Promise<boolean> {
    for (const deadline = Date.now() + this.exitSettleMs; Date.now() < deadline;) {
      const up = await this.docker.ping().then(
        () => true,
        (err: unknown) => !engineAway(err),
      );
      if (!up) return true;
      await new Promise((r) => setTimeout(r, 200));
    }
    return false;
  }

  /**
   * Inspects the container, waiting out an engine that is away (restarting, its socket refusing) for up to
   * engineGraceMs; null when the engine says the container is gone.
   */
  private async inspectThrough(name: string, outage: { seen: boolean }): Promise<Docker.ContainerInspectInfo | null> {
    const deadline = Date.now() + this.engineGraceMs;
    for (let tries = 0; ; tries++) {
      try {
        return await this.inspect(name);
      } catch (err) {
        if (!engineAway(err)) throw err;
        outage.seen = true;
        if (Date.now() > deadline) {
          throw new LaunchError(
            'INFRA_ERROR',
            `the Docker engine did not answer for ${Math.round(this.engineGraceMs / 1000)} s while ${name} ran: ${describe(err)}`,
          );
        }
        await new Promise((r) => setTimeout(r, Math.min(100 * 2 ** tries, 2000)));
      }
    }
  }

  /**
   * The container's log as a stream of multiplexed frames with timestamps. Called through the modem because
   * dockerode buffers a read without follow whole in memory (a 1 GiB log would be 1 GiB of RSS).
   */
  private async logStream(
    name: string,
    o: { follow: boolean; since: string | undefined },
  ): Promise<AsyncIterable<Buffer>> {
    const modem = this.docker.modem as unknown as {
      dial(options: object, callback: (err: unknown, stream: AsyncIterable<Buffer>) => void): void;
    };
    return new Promise((resolve, reject) =>
      modem.dial(
        {
          path: `/containers/${encodeURIComponent(name)}/logs?`,
          method: 'GET',
          isStream: true,
          statusCodes: { 200: true, 404: 'no such container', 500: 'server error' },
          options: {
            follow: o.follow,
            stdout: true,
            stderr: true,
            timestamps: true,
            ...(o.since ? { since: o.since } : {}),
          },
        },
        (err, stream) => (err ? reject(err) : resolve(stream)),
      ),
    );
  }

  /** Waits out an engine that is away (a dockerd restart) rather than failing the attempt that asks. */
  async exists(name: string): Promise<boolean> {
    return (await this.inspectThrough(name, { seen: false })) !== null;
  }

  async stop(name: string, graceSeconds: number): Promise<void> {
    this.stopping.add(name);
    try {
      await this.docker.getContainer(name).stop({ t: graceSeconds });
    } catch (err) {
      // 304: already stopped; 404: already gone. Both are what we wanted.
      if (statusOf(err) !== 304 && statusOf(err) !== 404) throw err;
    }
  }

  async list(prefix: string): Promise<ManagedContainer[]> {
    const found = await this.docker.listContainers({ all: true, filters: { label: [`berth.prefix=${prefix}`] } });
    return found.map((c) => ({
      name: (c.Names[0] ?? '').replace(/^\//, ''),
      job: c.Labels['berth.job'] ?? '',
      attempt: Number(c.Labels['berth.attempt'] ?? 0),
      worker: c.Labels['berth.worker'] ?? '',
      running: c.State === 'running',
      ...(c.Labels['berth.node'] ? { node: Number(c.Labels['berth.node']) } : {}),
    }));
  }

  async remove(name: string): Promise<void> {
    try {
      await this.docker.getContainer(name).remove({ force: true, v: true });
    } catch (err) {
      if (statusOf(err) !== 404 && statusOf(err) !== 409) throw err;
    }
  }

  private async inspect(name: string): Promise<Docker.ContainerInspectInfo | null> {
    try {
      return await this.docker.getContainer(name).inspect();
    } catch (err) {
      if (statusOf(err) === 404) return null;
      throw err;
    }
  }

  private async create(spec: LaunchSpec): Promise<void> {
    try {
      await this.docker.createContainer(createBody(spec, this.defaults));
    } catch (err) {
      // 409: another delivery of this attempt created it first; re-attach to that one.
      if (statusOf(err) !== 409) throw await this.launchError(err, spec);
    }
  }

  private async launchError(err: unknown, spec: LaunchSpec): Promise<Error> {
    // The engine answers 404 for a missing image (at create) and a missing network (at start); the image's presence
    // tells them apart.
    if (statusOf(err) === 404 && (await this.imagePresent(spec.image))) {
      const network = spec.network ?? this.defaults.network;
      return new LaunchError('INFRA_ERROR', `the Docker network ${network} does not exist on this worker's engine`);
    }
    return launchError(err, spec);
  }

  private async imagePresent(image: string): Promise<boolean> {
    try {
      await this.docker.getImage(image).inspect();
      return true;
    } catch (err) {
      if (statusOf(err) === 404) return false;
      throw err;
    }
  }
}

function launchError(err: unknown, spec: LaunchSpec): Error {
  const status = statusOf(err);
  if (status === 404) {
    return new LaunchError('IMAGE_PULL_FAILED', `image ${spec.image} is not present on this worker`);
  }
  if (status === 500 && spec.gpus !== 'none') {
    // The engine answers 500 for every start failure; only its text says the GPU device driver is missing.
    if (/could not select device driver/i.test(describe(err))) {
      return new LaunchError(
        'GPU_RUNTIME_MISSING',
        'this worker cannot give containers GPUs: its Docker engine has no NVIDIA Container Toolkit ' +
          '(nvidia-container-runtime-hook). Install nvidia-container-toolkit on the host and restart dockerd.',
      );
    }
    return new LaunchError(
      'INFRA_ERROR',
      `the Docker engine refused to start the container with GPUs: ${describe(err)}`,
    );
  }
  return err instanceof Error ? err : new Error(String(err));
}

function describe(err: unknown): string {
  const json = (err as { json?: { message?: string } }).json;
  return json?.message ?? (err instanceof Error ? err.message : String(err));
}
