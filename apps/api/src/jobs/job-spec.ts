// A submitted JobSpec checked against its recipe: every bad field — spec, parameters, GPUs, inputs — in one list.
import { JobSpec, type JobSpec as JobSpecT } from '@berth/contracts';
import { parseSize, renderLaunch, type Manifest, type ParamValues, type RenderedLaunch } from '@berth/manifests';
import { checkParamsReusingLast } from './last-params-check.js';

export interface ResolvedSpec {
  /** The spec as stored: the recipe's GPU default filled in. */
  spec: JobSpecT;
  manifest: Manifest;
  params: ParamValues;
}

/** The smallest memory limit the Docker engine accepts. */
const MIN_MEMORY = 6 * 1024 * 1024;

const schemas = new WeakMap<ReadonlyMap<string, Manifest>, ReturnType<typeof buildJobSpecSchema>>();

/** The spec schema for this catalog, built once. */
export function jobSpecSchema(manifests: ReadonlyMap<string, Manifest>) {
  let schema = schemas.get(manifests);
  if (!schema) {
    schema = buildJobSpecSchema(manifests);
    schemas.set(manifests, schema);
  }
  return schema;
}

function buildJobSpecSchema(manifests: ReadonlyMap<string, Manifest>) {
  return JobSpec.superRefine((spec, ctx) => {
    const m = manifests.get(spec.manifest);
    if (!m) {
      ctx.addIssue({
        code: 'custom',
        path: ['manifest'],
        message: `unknown manifest; available: ${[...manifests.keys()].join(', ')}`,
      });
      return;
    }
    const checked = checkParamsReusingLast(m, spec.params);
    if (!checked.ok) {
      for (const issue of checked.issues)
        ctx.addIssue({ code: 'custom', path: issue.path.split('.'), message: issue.message });
    }
    const { min, max } = m.resources.gpus;
    const gpus = spec.resources.gpus ?? m.resources.gpus.default;
    if (gpus < 0) return; // already reported by the spec schema
    if (gpus < min || gpus > max) {
      ctx.addIssue({ code: 'custom', path: ['resources', 'gpus'], message: `${m.id} runs on ${min} to ${max} GPUs` });
    } else if (gpus === 0 && !('param' in m.image) && !m.image.cpu) {
      ctx.addIssue({
        code: 'custom',
        path: ['resources', 'gpus'],
        message: `${m.id} has no CPU image: ask for at least 1 GPU`,
      });
    }
    // A memory value that is not a size at all was reported by the spec schema already (refinements still run).
    const memory = spec.resources.memory === undefined ? undefined : sizeOrUndefined(spec.resources.memory);
    if (memory !== undefined && memory < MIN_MEMORY) {
      ctx.addIssue({ code: 'custom', path: ['resources', 'memory'], message: 'the Docker engine needs at least 6m' });
    }
    const given = { dataset: spec.inputs?.dataset !== undefined, initFrom: spec.inputs?.initFrom !== undefined };
    for (const [input, target] of [
      ['dataset', '/data'],
      ['initFrom', '/init'],
    ] as const) {
      const mount = m.mounts.find((x) => x.target === target);
      if (!mount && given[input]) {
        ctx.addIssue({ code: 'custom', path: ['inputs', input], message: `${m.id} takes nothing at ${target}` });
      } else if (mount?.required && !given[input]) {
        ctx.addIssue({
          code: 'custom',
          path: ['inputs', input],
          // Said for the person choosing, with where each field lives for the CLI and REST.
          message:
            input === 'dataset'
              ? `${m.id} needs a dataset at /data: choose one of yours (berth submit --dataset, inputs.dataset)`
              : `${m.id} needs a model to start from at /init: choose a finished job of yours (berth submit --init-from, inputs.initFrom)`,
        });
      }
    }
  });
}

function sizeOrUndefined(size: string | number): number | undefined {
  try {
    return parseSize(size);
  } catch {
    return undefined;
  }
}

/** For a spec that passed jobSpecSchema. */
export function resolveSpec(manifests: ReadonlyMap<string, Manifest>, spec: JobSpecT): ResolvedSpec {
  const manifest = manifests.get(spec.manifest)!;
  const checked = checkParamsReusingLast(manifest, spec.params);
  if (!checked.ok) throw new Error('resolveSpec on an unchecked spec');
  const gpus = spec.resources.gpus ?? manifest.resources.gpus.default;
  return { spec: { ...spec, resources: { ...spec.resources, gpus } }, manifest, params: checked.params };
}

/** What a worker would launch, with host paths and environment values hidden (a dry run shows shape, not secrets). */
export function previewLaunch(r: ResolvedSpec): RenderedLaunch {
  const gpus = r.spec.resources.gpus ?? 0;
  const launch = renderLaunch(r.manifest, r.params, {
    gpus: gpus > 0 ? 'all' : 'none',
    gpuCount: gpus,
    attempt: 1,
    jobId: 'job_dryrun',
    workerId: '(worker)',
    resultsDir: '(host)',
    ...(r.spec.inputs?.dataset ? { dataDir: '(host)' } : {}),
    ...(r.spec.inputs?.initFrom ? { initDir: '(host)' } : {}),
    cpu: gpus === 0,
  });
  return {
    ...launch,
    env: Object.fromEntries(Object.keys(launch.env).map((k) => [k, '(hidden)'])),
    mounts: launch.mounts.map((mnt) => ({ ...mnt, hostPath: '(host)' })),
  };
}
