// The recipe format: one YAML file per recipe in ngc-manifests/, validated by this schema when loaded.
import { ArtifactKind, FailureReason } from '@berth/contracts';
import { z } from 'zod';

// registry/repo[:tag] — the docker reference grammar (as in contracts' CustomParams), digest kept apart.
export const IMAGE_REF =
  /^(?:[a-zA-Z0-9.-]+(?::[0-9]+)?\/)?[a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*(?::[\w][\w.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$/;
const imageRef = z.string().max(255).regex(IMAGE_REF, 'not a valid image reference (registry/repository:tag)');

export const ImageVariant = z.strictObject({
  ref: imageRef,
  digest: z
    .string()
    .regex(/^sha256:[a-f0-9]{64}$/, 'a digest is sha256: followed by 64 hex digits')
    .optional(),
});
export type ImageVariant = z.infer<typeof ImageVariant>;

/** Either a fixed image (GPU, and optionally an offline CPU variant) or one chosen by a parameter of type image. */
export const ManifestImage = z.union([
  z.strictObject({ gpu: ImageVariant, cpu: ImageVariant.optional() }),
  z.strictObject({ param: z.string() }),
]);
export type ManifestImage = z.infer<typeof ManifestImage>;

const paramName = z.string().regex(/^[a-z][a-z0-9_]{0,62}$/, 'parameter names are lowercase letters, digits and _');
const cliFlag = z.string().regex(/^--?[A-Za-z][A-Za-z0-9_-]*$/, 'a flag looks like --name or -n');

/** What a string parameter may hold unless the recipe narrows it: no spaces, quotes or shell metacharacters. */
export const SAFE_STRING = '^[A-Za-z0-9_][A-Za-z0-9_./:=@+,-]*$';

const paramBase = {
  description: z.string().min(1),
  required: z.boolean().default(false),
  /** The CLI flag `{{flag:name}}` renders; default `--<name>`. */
  flag: cliFlag.optional(),
  /** Values of other parameters implied by this one's value (keyed by the value as text), unless the user set them. */
  implies: z.record(z.string(), z.record(paramName, z.union([z.string(), z.number(), z.boolean()]))).optional(),
};

export const Param = z.discriminatedUnion('type', [
  z.strictObject({
    ...paramBase,
    type: z.literal('int'),
    default: z.number().int().optional(),
    min: z.number().int().optional(),
    max: z.number().int().optional(),
  }),
  z.strictObject({
    ...paramBase,
    type: z.literal('number'),
    default: z.number().optional(),
    min: z.number().optional(),
    max: z.number().optional(),
  }),
  z.strictObject({
    ...paramBase,
    type: z.literal('string'),
    default: z.string().optional(),
    pattern: z.string().default(SAFE_STRING),
    maxLength: z.number().int().min(1).max(4096).default(1024),
  }),
  z.strictObject({ ...paramBase, type: z.literal('bool'), default: z.boolean().optional() }),
  z.strictObject({
    ...paramBase,
    type: z.literal('enum'),
    values: z.array(z.string().regex(new RegExp(SAFE_STRING), 'enum values are plain words')).min(1),
    default: z.string().optional(),
  }),
  /** An image reference (the custom recipe). */
  z.strictObject({ ...paramBase, type: z.literal('image'), default: z.string().optional() }),
  /** A list of arguments spliced in place of a token that is exactly `{{name}}` (the custom recipe). */
  z.strictObject({ ...paramBase, type: z.literal('argv'), default: z.array(z.string()).optional() }),
]);
export type Param = z.infer<typeof Param>;
export type ParamType = Param['type'];

const size = z.union([
  z.number().int().min(0),
  z.string().regex(/^[0-9]+(?:\.[0-9]+)?\s*[kmgt]?i?b?$/i, 'a size looks like 512m, 1g or 2GiB'),
]);

export const ManifestResources = z.strictObject({
  gpus: z.strictObject({
    default: z.number().int().min(0).max(64),
    min: z.number().int().min(0).max(64).default(0),
    max: z.number().int().min(0).max(64).default(64),
  }),
  shmSize: size.default('1g'),
  /** The container's memory limit unless the job sets one; unset: the worker's default (BERTH_JOB_MEMORY_DEFAULT). */
  memory: size.optional(),
  /** The container's CPU limit in CPUs (fractions allowed); unset: the worker's default (BERTH_JOB_CPUS_DEFAULT). */
  cpus: z.number().positive().max(1024).optional(),
});

export const Mount = z.strictObject({
  target: z.enum(['/data', '/init', '/results']),
  /** dataset: a dataset folder; artifact: another job's artifacts; results: this attempt's results folder. */
  source: z.enum(['dataset', 'artifact', 'results']),
  readOnly: z.boolean(),
  required: z.boolean().default(false),
  description: z.string().optional(),
});
export type Mount = z.infer<typeof Mount>;

const metricSource = {
  /** stdout (and stderr) of the container, or a file under /results. */
  file: z
    .string()
    .regex(/^\/results\/[A-Za-z0-9_./-]+$/, 'metric files live under /results')
    .optional(),
};

const scoreScale = {
  /**
   * How the source prints F1 / accuracy / exact match: `percent` (0–100, SQuAD; the default) or `fraction` (0–1,
   * GLUE). berth reports them on 0–100, so fractions are multiplied by 100.
   */
  scores: z.enum(['fraction', 'percent']).optional(),
};

export const MetricRule = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('dllogger-json'),
    prefix: z.string().default('DLLL '),
    ...metricSource,
    ...scoreScale,
  }),
  z.strictObject({ kind: z.literal('dllogger-text'), ...metricSource, ...scoreScale }),
  z.strictObject({ kind: z.literal('jsonl'), ...metricSource, ...scoreScale }),
  z.strictObject({
    kind: z.literal('regex'),
    ...metricSource,
    ...scoreScale,
    pattern: z.string().min(1),
    /** Metric name → named group of the pattern holding its value. */
    metrics: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), z.string()),
    /** Multiply the value by this int/number parameter (e.g. queries/s × batch = sentences/s). */
    multiplyBy: z.record(z.string(), paramName).optional(),
  }),
]);
export type MetricRule = z.infer<typeof MetricRule>;

export const SuccessRule = z.strictObject({
  exitCodes: z.array(z.number().int().min(0).max(255)).min(1).default([0]),
  /** DLE wrappers exit 0 after a crash: a run succeeds only if one of these final metrics was reported. */
  requireMetric: z.array(z.string()).min(1).optional(),
  /** Globs under /results of which each must match a file. */
  requireFiles: z.array(z.string().min(1)).optional(),
});
export type SuccessRule = z.infer<typeof SuccessRule>;

export const ArtifactRule = z.strictObject({
  glob: z.string().min(1),
  kind: ArtifactKind,
});

export const RetryHints = z.strictObject({
  maxAttempts: z.number().int().min(1).max(10).default(1),
  /** Exit codes worth another attempt (75: stopped by SIGTERM after a checkpoint). */
  onExitCodes: z.array(z.number().int().min(0).max(255)).default([]),
  onReasons: z.array(FailureReason).default([]),
  /** A retry resumes from the last checkpoint in /results rather than starting over. */
  resumes: z.boolean().default(false),
});

/**
 * How the container's own filesystem is set up. Jobs get a read-only root with a writable tmpfs /tmp (and /results,
 * /dev/shm): an image cannot be altered for the next run on this host, and a job cannot fill the engine's disk
 * through its writable layer. A recipe whose image must write elsewhere opts out and says why.
 */
/**
 * What a job may reach over the network. `none` (the default): its own loopback only, no interface at all. `egress`:
 * the worker's fenced jobs network (BERTH_JOB_NETWORK), outbound to public addresses, never to the host or private
 * ranges (docs/network.md). Declared by recipes that must download at run time.
 */
export const NetworkPolicy = z.enum(['none', 'egress']);
export type NetworkPolicy = z.infer<typeof NetworkPolicy>;

export const ContainerPolicy = z.strictObject({
  writableRootfs: z.strictObject({ reason: z.string().min(10, 'say why this image needs a writable root') }).optional(),
  network: NetworkPolicy.default('none'),
});
export type ContainerPolicy = z.infer<typeof ContainerPolicy>;

export const Launcher = z.enum(['none', 'torchrun', 'torch-distributed-launch']);
export type Launcher = z.infer<typeof Launcher>;

const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'environment variable names are letters, digits and _');

export const Manifest = z.strictObject({
  id: z.string().regex(/^[a-z][a-z0-9-]{1,62}$/, 'ids are lowercase letters, digits and -'),
  title: z.string().min(1).max(120),
  description: z.string().min(1),
  image: ManifestImage,
  /** Argument array; never run through a shell. */
  command: z.array(z.string()).min(1),
  /** How several GPUs get one process each: the command must start with python/python3. */
  launcher: Launcher.default('none'),
  parameters: z.record(paramName, Param).default({}),
  resources: ManifestResources,
  container: ContainerPolicy.default({ network: 'none' }),
  mounts: z.array(Mount).default([]),
  env: z.record(envName, z.string()).default({}),
  metrics: z.array(MetricRule).default([]),
  success: SuccessRule.default({ exitCodes: [0] }),
  artifacts: z.array(ArtifactRule).default([]),
  retry: RetryHints.default({ maxAttempts: 1, onExitCodes: [], onReasons: [], resumes: false }),
});
export type Manifest = z.infer<typeof Manifest>;
export type ManifestInput = z.input<typeof Manifest>;
