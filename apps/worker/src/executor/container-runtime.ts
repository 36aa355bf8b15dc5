// What the worker needs from a container engine. Docker is the implementation; Kubernetes or Slurm can follow.
import type { FailureReason } from '@berth/contracts';
import type { RenderedLaunch } from '@berth/manifests';
import type { StreamName } from '../pump/demux.js';
import type { LogPosition } from '../pump/log-cursor.js';

/**
 * One attempt's container, as a recipe renders it (name, image, argv, env, labels, GPUs, mounts, limits). Limits the
 * recipe and job leave unset are the runtime's defaults (DockerRuntimeOptions).
 */
export type LaunchSpec = RenderedLaunch & {
  /** The Docker network to attach to (HostConfig.NetworkMode); the runtime's default network when unset. */
  network?: string;
};

export interface AttemptHooks {
  /** Called once the container runs (or is found running). */
  onRunning(): Promise<void>;
  /**
   * Output in order; the runtime waits for the promise before reading more. `position` is where the container's log
   * stands after this chunk, for a reader that must go on from there later.
   */
  onOutput(stream: StreamName, chunk: Buffer, position?: LogPosition): Promise<void>;
}

export interface AttemptResult {
  exitCode: number;
  oomKilled: boolean;
  /**
   * The engine was away (restarted, unreachable) while the container ran: a container that died then most likely
   * died with the engine, not of its own job.
   */
  engineOutage?: boolean;
}

/** A launch that failed for a reason the user should see (image missing, GPU runtime missing…). */
export class LaunchError extends Error {
  override readonly name = 'LaunchError';
  constructor(
    readonly reason: FailureReason,
    message: string,
  ) {
    super(message);
  }
}

/** A berth container found on the engine, by its labels. */
export interface ManagedContainer {
  name: string;
  job: string;
  attempt: number;
  worker: string;
  running: boolean;
  /** A multi-node job's member: its node rank (0 is the head). */
  node?: number;
}

export interface ContainerRuntime {
  /**
   * Creates (or finds) the container, starts it, pumps its output (from `from` on, when given: where an earlier
   * reader stored it had got to), and returns once it has exited and its output is read.
   */
  run(spec: LaunchSpec, hooks: AttemptHooks, from?: LogPosition): Promise<AttemptResult>;
  /** True when a container of that name exists, running or not. */
  exists(name: string): Promise<boolean>;
  /** SIGTERM, then SIGKILL after `graceSeconds`; a container already stopped or gone is success. */
  stop(name: string, graceSeconds: number): Promise<void>;
  /** Removes the container; a container already gone is success. */
  remove(name: string): Promise<void>;
  /** Every container carrying `berth.prefix=<prefix>`. */
  list(prefix: string): Promise<ManagedContainer[]>;
  /**
   * Makes the network the members of one multi-node job share on this engine: they reach each other on it, and,
   * fenced as the jobs network is, nothing of berth. Absent where members cannot share an engine.
   */
  gangNetwork?(jobId: string): Promise<string>;
  /** Removes that network once no member is left on it; one still in use stays. */
  dropGangNetwork?(jobId: string): Promise<void>;
}

/** The network of a multi-node job's members, and its bridge (at most 15 characters). */
export function gangNetworkOf(jobId: string): { name: string; bridge: string } {
  return { name: `berth-gang-${jobId}`, bridge: `bg${jobId.slice(4, 17)}` };
}

/** Pull progress, summed over the image's layers; bytes are compressed download bytes. */
export interface PullProgress {
  layers: number;
  layersDone: number;
  bytesDone: number;
  bytesTotal: number;
}

/** Makes an image present on the engine before its container is created. */
export interface ImageSource {
  /** 'present' when nothing had to be pulled. An aborted pull throws an error named AbortError. */
  ensure(image: string, onProgress: (p: PullProgress) => void, signal?: AbortSignal): Promise<'present' | 'pulled'>;
}
