// Shared by the tests: where the recipes live, and contexts and base params that render every recipe.
import { resolve } from 'node:path';
import type { Manifest } from '../schema.js';
import type { RenderContext } from '../render.js';

export const repoRoot = resolve(__dirname, '../../../..');
export const recipesDir = resolve(repoRoot, 'ngc-manifests');
export const dleArgparseDir = resolve(repoRoot, 'test/fixtures/dle-argparse');
export const payloadDir = resolve(repoRoot, 'payloads/bert');

/** Params a recipe cannot run without (only custom has required params without defaults). */
export function baseParams(m: Manifest): Record<string, unknown> {
  return m.id === 'custom' ? { image: 'alpine:3.20', command: ['true'] } : {};
}

export function contextFor(m: Manifest, gpus: number, overrides: Partial<RenderContext> = {}): RenderContext {
  return {
    gpus: gpus === 0 ? 'none' : Array.from({ length: gpus }, (_, i) => String(i)),
    gpuCount: gpus,
    attempt: 1,
    jobId: 'job_abcdefghijklmnopqrst',
    workerId: 'worker-1',
    resultsDir: '/var/berth/results/job_abcdefghijklmnopqrst/a1',
    dataDir: '/var/berth/datasets/squad',
    initDir: '/var/berth/artifacts/job_bbbbbbbbbbbbbbbbbbbb',
    cpu: false,
    ...overrides,
  };
}
