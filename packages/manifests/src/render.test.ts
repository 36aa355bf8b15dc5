// renderLaunch: the worker-facing shape, mounts, images and the refusals a caller must handle.
import { loadManifests, parseManifest } from './load.js';
import { validateParams, type ParamValues } from './params.js';
import { renderLaunch, RenderError, parseSize } from './render.js';
import type { Manifest } from './schema.js';
import { contextFor, recipesDir } from './testing/fixtures.js';

const manifests = loadManifests(recipesDir);

function values(m: Manifest, params: Record<string, unknown> = {}): ParamValues {
  const r = validateParams(m, params);
  if (!r.ok) throw new Error(JSON.stringify(r.issues));
  return r.params;
}

const tinyYaml = `
id: tiny
title: Tiny
description: exercises the template language
image: { gpu: { ref: 'registry.example:5000/team/img:1.0', digest: 'sha256:${'a'.repeat(64)}' } }
command: [run, '{{flag:name}}', '--opt={{opt}}', '{{opt}}', '{{flag:on}}', 'job={{job_id}}/{{attempt}}/{{gpus}}']
parameters:
  name: { type: string, description: a name }
  opt: { type: int, description: an option }
  on: { type: bool, default: false, description: a switch }
resources: { gpus: { default: 0, min: 0, max: 2 }, shmSize: 64m, memory: 2g }
env: { FIXED: '1' }
`;
const tiny = parseManifest(tinyYaml, 'tiny.yaml');

describe('renderLaunch', () => {
  it('renders the LaunchSpec fields, labels and mounts', () => {
    const m = manifests.get('bert-finetune-squad')!;
    const launch = renderLaunch(m, values(m, { env: { WANDB_MODE: 'offline' } }), {
      ...contextFor(m, 2),
      attempt: 3,
    });
    expect(launch).toMatchObject({
      name: 'berth-job_abcdefghijklmnopqrst-a3',
      image: 'berth/bert:25.01',
      env: { WANDB_MODE: 'offline' },
      labels: {
        'berth.job': 'job_abcdefghijklmnopqrst',
        'berth.attempt': '3',
        'berth.worker': 'worker-1',
        'berth.manifest': 'bert-finetune-squad',
      },
      gpus: ['0', '1'],
      shmSizeBytes: 1024 ** 3,
    });
    expect(launch.mounts).toEqual([
      { hostPath: '/var/berth/datasets/squad', containerPath: '/data', readOnly: true },
      { hostPath: '/var/berth/artifacts/job_bbbbbbbbbbbbbbbbbbbb', containerPath: '/init', readOnly: true },
      { hostPath: '/var/berth/results/job_abcdefghijklmnopqrst/a1', containerPath: '/results', readOnly: false },
    ]);
  });

  it('renders a read-only root unless the recipe opts out with a reason, and its CPU limit', () => {
    const squad = manifests.get('bert-finetune-squad')!;
    const plain = renderLaunch(squad, values(squad), contextFor(squad, 1));
    expect(plain.readOnlyRootfs).toBe(true);
    // No CPU limit of its own: the worker's default applies.
    expect(plain).not.toHaveProperty('nanoCpus');
    const dle = manifests.get('dle-bert-squad')!;
    expect(dle.container.writableRootfs?.reason).toMatch(/workspace/);
    expect(renderLaunch(dle, values(dle), contextFor(dle, 1)).readOnlyRootfs).toBe(false);
    const limited = parseManifest(
      tinyYaml.replace(
        'memory: 2g }',
        'memory: 2g, cpus: 1.5 }\ncontainer: { writableRootfs: { reason: writes /opt/app state } }',
      ),
      'limited.yaml',
    );
    expect(renderLaunch(limited, values(limited), contextFor(limited, 0))).toMatchObject({
      nanoCpus: 1.5e9,
      readOnlyRootfs: false,
    });
  });

  it('substitutes placeholders, drops unset ones, and pins the digest', () => {
    const ctx = { ...contextFor(tiny, 0), attempt: 2 };
    expect(renderLaunch(tiny, values(tiny), ctx).command).toEqual(['run', 'job=job_abcdefghijklmnopqrst/2/0']);
    const full = renderLaunch(tiny, values(tiny, { name: 'x', opt: 5, on: true }), ctx);
    expect(full.command).toEqual(['run', '--name', 'x', '--opt=5', '5', '--on', 'job=job_abcdefghijklmnopqrst/2/0']);
    expect(full.image).toBe(`registry.example:5000/team/img:1.0@sha256:${'a'.repeat(64)}`);
    expect(full.env).toEqual({ FIXED: '1' });
    expect(full.shmSizeBytes).toBe(64 * 1024 ** 2);
    expect(full.memoryBytes).toBe(2 * 1024 ** 3);
  });

  it('omits optional mounts without a folder and refuses a missing required one', () => {
    const withoutInit = ({ initDir: _none, ...ctx }: ReturnType<typeof contextFor>) => ctx;
    const pre = manifests.get('bert-pretrain')!;
    const launch = renderLaunch(pre, values(pre), withoutInit(contextFor(pre, 1)));
    expect(launch.mounts.map((x) => x.containerPath)).toEqual(['/data', '/results']);
    const squad = manifests.get('bert-finetune-squad')!;
    expect(() => renderLaunch(squad, values(squad), withoutInit(contextFor(squad, 1)))).toThrow(
      new RenderError('bert-finetune-squad needs /init (artifact)'),
    );
  });

  it('refuses a GPU count outside the recipe range and a CPU run without a CPU image', () => {
    const trt = manifests.get('tensorrt-build')!;
    expect(() => renderLaunch(trt, values(trt), contextFor(trt, 2))).toThrow(/runs on 1 to 1 GPUs, not 2/);
    expect(() => renderLaunch(trt, values(trt), contextFor(trt, 0, { cpu: true }))).toThrow(/has no CPU image/);
  });

  it('parses sizes', () => {
    expect(parseSize('1g')).toBe(1024 ** 3);
    expect(parseSize('512m')).toBe(512 * 1024 ** 2);
    expect(parseSize('2GiB')).toBe(2 * 1024 ** 3);
    expect(parseSize(4096)).toBe(4096);
  });
});
