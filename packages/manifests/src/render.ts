// Turns a recipe and validated values into what the worker's ContainerRuntime launches (its LaunchSpec).
import type { ParamValue, ParamValues } from './params.js';
import type { Manifest } from './schema.js';
import { parseToken, substitute } from './template.js';

export interface RenderContext {
  /** 'all' for whole-host mode, device ids for slot mode, 'none' for CPU jobs. */
  gpus: 'all' | string[] | 'none';
  /** GPUs the job asked for: one process each when above 1. */
  gpuCount: number;
  attempt: number;
  jobId: string;
  workerId: string;
  /** Host folders: the Docker engine resolves them. */
  resultsDir: string;
  dataDir?: string;
  initDir?: string;
  /** Use the recipe's offline CPU image. */
  cpu: boolean;
  /** This container's place in a job spanning several hosts (absent for a job on one host). */
  gang?: GangPlace | undefined;
}

/** Where one member of a multi-node job stands: the rendezvous every member is told (static, as NVIDIA's scripts). */
export interface GangPlace {
  nodeRank: number;
  /** Every member's address, the head (rank 0, MASTER_ADDR) first. */
  addresses: readonly string[];
  masterPort: number;
}

export interface RenderedMount {
  hostPath: string;
  containerPath: '/data' | '/init' | '/results';
  readOnly: boolean;
}

/** One attempt's container: the worker's LaunchSpec. Host paths are the Docker engine's to resolve. */
export interface RenderedLaunch {
  name: string;
  image: string;
  command: string[];
  env: Record<string, string>;
  labels: Record<string, string>;
  gpus: 'all' | string[] | 'none';
  shmSizeBytes: number;
  memoryBytes?: number;
  /** The CPU limit in billionths of a CPU (Docker's NanoCpus), when the recipe sets one. */
  nanoCpus?: number;
  /** False only where the recipe opts out of the read-only root (container.writableRootfs). */
  readOnlyRootfs: boolean;
  resultsDir: string;
  mounts: RenderedMount[];
}

export class RenderError extends Error {
  override readonly name = 'RenderError';
}

const UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

export function parseSize(size: number | string): number {
  if (typeof size === 'number') return size;
  const m = /^([0-9]+(?:\.[0-9]+)?)\s*([kmgt]?)i?b?$/i.exec(size);
  if (!m) throw new RenderError(`not a size: ${size}`);
  return Math.round(Number(m[1]) * UNITS[m[2]!.toLowerCase()]!);
}

function asText(value: ParamValue): string {
  if (Array.isArray(value)) return value.join(' ');
  return String(value);
}

/** The command array: placeholders substituted token by token; nothing is ever joined into a shell string. */
export function renderCommand(m: Manifest, values: Record<string, ParamValue>, ctx: RenderContext): string[] {
  const builtins: Record<string, string> = {
    gpus: String(ctx.gpuCount),
    job_id: ctx.jobId,
    attempt: String(ctx.attempt),
  };
  const lookup = (name: string): string | undefined => {
    if (name in builtins) return builtins[name];
    const v = values[name];
    return v === undefined ? undefined : asText(v);
  };
  const out: string[] = [];
  for (const raw of m.command) {
    const token = parseToken(raw);
    switch (token.kind) {
      case 'literal':
        out.push(token.text);
        break;
      case 'flag': {
        const v = values[token.name];
        const flag = m.parameters[token.name]?.flag ?? `--${token.name}`;
        if (v === undefined || v === false) break;
        if (v === true) out.push(flag);
        else if (Array.isArray(v)) out.push(flag, ...v);
        else out.push(flag, String(v));
        break;
      }
      case 'whole': {
        const v = token.name in builtins ? builtins[token.name] : values[token.name];
        if (v === undefined) break;
        if (Array.isArray(v)) out.push(...v);
        else out.push(String(v));
        break;
      }
      case 'mixed': {
        if (token.names.some((n) => lookup(n) === undefined)) break;
        out.push(substitute(token.text, (n) => lookup(n)!));
        break;
      }
    }
  }
  return withLauncher(m, out, processesOf(ctx), ctx.gang);
}

/** Processes one container runs: one per GPU, one on CPU. */
const processesOf = (ctx: RenderContext): number => (ctx.cpu ? 1 : Math.max(1, ctx.gpuCount));

function withLauncher(m: Manifest, command: string[], processes: number, gang?: GangPlace): string[] {
  // One process per member needs no launcher: it joins the rendezvous itself from RANK and WORLD_SIZE (gangEnv).
  if (m.launcher === 'none' || processes <= 1) return command;
  const rest = command.slice(1);
  // Static rendezvous across hosts: every member is told the node count, its rank and the head's address.
  const nodes = gang
    ? [
        `--nnodes=${gang.addresses.length}`,
        `--node_rank=${gang.nodeRank}`,
        `--master_addr=${gang.addresses[0]}`,
        `--master_port=${gang.masterPort}`,
      ]
    : [];
  if (m.launcher === 'torchrun') {
    return passingOnSigterm(['torchrun', ...nodes, '--nproc_per_node', String(processes), ...rest]);
  }
  // NVIDIA's DLE scripts take --local_rank, which torch.distributed.launch passes (torchrun passes --local-rank).
  return passingOnSigterm([
    command[0]!,
    '-m',
    'torch.distributed.launch',
    ...nodes,
    `--nproc_per_node=${processes}`,
    ...rest,
  ]);
}

/**
 * The script in front of a launcher. Sent SIGTERM (a drained or preempted host), torchrun passes it on to the training
 * processes, which checkpoint and exit 75, and then exits 1 itself: the recipe's retry rule (exit 75) would not see a
 * stop it can resume from. This shell, the container's first process, passes SIGTERM on, waits for the launcher to
 * finish, and exits 75; otherwise it exits with the launcher's code.
 */
const sigtermPassingScript =
  'trap \'kill -TERM "$pid" 2>/dev/null; wait "$pid"; exit 75\' TERM; "$@" & pid=$!; wait "$pid"';

function passingOnSigterm(launch: string[]): string[] {
  return ['sh', '-c', sigtermPassingScript, 'berth-launch', ...launch];
}

/**
 * The environment a multi-node member gets, as NVIDIA's and Determined's launchers set it. A member of one process
 * runs without a launcher, so it is also given what torchrun would set: its global rank and local rank.
 */
function gangEnv(gang: GangPlace, processes: number): Record<string, string> {
  const single: Record<string, string> =
    processes === 1 ? { RANK: String(gang.nodeRank), LOCAL_RANK: '0', LOCAL_WORLD_SIZE: '1' } : {};
  return {
    ...single,
    MASTER_ADDR: gang.addresses[0]!,
    MASTER_PORT: String(gang.masterPort),
    NNODES: String(gang.addresses.length),
    NODE_RANK: String(gang.nodeRank),
    NPROC_PER_NODE: String(processes),
    WORLD_SIZE: String(gang.addresses.length * processes),
    BERTH_NODE_ADDRS: gang.addresses.join(','),
  };
}

/** The image a launch runs: the recipe's CPU or GPU variant (pinned by digest when it names one), or a parameter. */
export function imageOf(m: Manifest, values: Record<string, ParamValue>, cpu: boolean): string {
  if ('param' in m.image) {
    const v = values[m.image.param];
    if (typeof v !== 'string') throw new RenderError(`parameter ${m.image.param} (the image) is not set`);
    return v;
  }
  const variant = cpu ? m.image.cpu : m.image.gpu;
  if (!variant) throw new RenderError(`${m.id} has no CPU image`);
  return variant.digest ? `${variant.ref.replace(/@sha256:[a-f0-9]+$/, '')}@${variant.digest}` : variant.ref;
}

function gpuCountOf(ctx: RenderContext): number {
  if (ctx.cpu || ctx.gpus === 'none') return 0;
  return Array.isArray(ctx.gpus) ? ctx.gpus.length : ctx.gpuCount;
}

export function renderLaunch(m: Manifest, params: ParamValues, ctx: RenderContext): RenderedLaunch {
  const gpuCount = gpuCountOf(ctx);
  const g = m.resources.gpus;
  if (!ctx.cpu && (gpuCount < g.min || gpuCount > g.max)) {
    throw new RenderError(`${m.id} runs on ${g.min} to ${g.max} GPUs, not ${gpuCount}`);
  }
  const mounts: RenderedMount[] = [];
  for (const mount of m.mounts) {
    const hostPath = { '/data': ctx.dataDir, '/init': ctx.initDir, '/results': ctx.resultsDir }[mount.target];
    if (hostPath === undefined) {
      if (mount.required) throw new RenderError(`${m.id} needs ${mount.target} (${mount.source})`);
      continue;
    }
    mounts.push({ hostPath, containerPath: mount.target, readOnly: mount.readOnly });
  }
  const env: Record<string, string> = {
    ...params.env,
    ...m.env,
    ...(ctx.gang ? gangEnv(ctx.gang, processesOf({ ...ctx, gpuCount })) : {}),
  };
  const member = ctx.gang && ctx.gang.nodeRank > 0 ? `-n${ctx.gang.nodeRank}` : '';
  return {
    name: `berth-${ctx.jobId}-a${ctx.attempt}${member}`,
    image: imageOf(m, params.values, ctx.cpu),
    command: renderCommand(m, params.values, { ...ctx, gpuCount }),
    env,
    labels: {
      'berth.job': ctx.jobId,
      'berth.attempt': String(ctx.attempt),
      'berth.worker': ctx.workerId,
      'berth.manifest': m.id,
      ...(ctx.gang ? { 'berth.node': String(ctx.gang.nodeRank) } : {}),
    },
    gpus: ctx.cpu ? 'none' : ctx.gpus,
    shmSizeBytes: parseSize(m.resources.shmSize),
    ...(m.resources.memory !== undefined ? { memoryBytes: parseSize(m.resources.memory) } : {}),
    ...(m.resources.cpus !== undefined ? { nanoCpus: Math.round(m.resources.cpus * 1e9) } : {}),
    readOnlyRootfs: m.container.writableRootfs === undefined,
    resultsDir: ctx.resultsDir,
    mounts,
  };
}
