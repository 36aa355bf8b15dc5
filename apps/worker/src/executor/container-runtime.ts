// What the worker needs from a container engine. Docker is the implementation; Kubernetes or Slurm can follow.
import type { FailureReason } from '@berth/contracts';
import type { StreamName } from '../pump/demux.js';

export interface LaunchSpec {
  /** Deterministic per attempt (`berth-<job>-a<attempt>`): a second delivery finds and re-attaches to it. */
  name: string;
  image: string;
  command: string[];
  env: Record<string, string>;
  labels: Record<string, string>;
  /** 'all' for whole-host mode, device ids for slot mode, none for CPU jobs. */
  gpus: 'all' | string[] | 'none';
  shmSizeBytes: number;
  /** Host folder for /results; created by the worker before the launch. */
  resultsDir: string;
  /** Host paths (the Docker engine resolves them) bound at /data, /init and /results. */
  mounts: { hostPath: string; containerPath: string; readOnly: boolean }[];
  memoryBytes?: number;
}

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
