// What the worker needs from a container engine. Docker is the implementation; Kubernetes or Slurm can follow.
import type { FailureReason } from '@berth/contracts';
import type { RenderedLaunch } from '@berth/manifests';
import type { StreamName } from '../pump/demux.js';

/** One attempt's container, as a recipe renders it (name, image, argv, env, labels, GPUs, mounts, limits). */
export type LaunchSpec = RenderedLaunch;

export interface AttemptHooks {
  /** Called once the container runs (or is found running). */
  onRunning(): Promise<void>;
  /** Output in order; the runtime waits for the promise before reading more. */
  onOutput(stream: StreamName, chunk: Buffer): Promise<void>;
}

export interface AttemptResult {
  exitCode: number;
  oomKilled: boolean;
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

export interface ContainerRuntime {
  /** Creates (or finds) the container, starts it, pumps its output, and returns once it has exited and its output is read. */
  run(spec: LaunchSpec, hooks: AttemptHooks): Promise<AttemptResult>;
  /** Removes the container; a container already gone is success. */
  remove(name: string): Promise<void>;
}
