// Every recipe's rendered create body is accepted by the real Docker engine, and inspect shows the hardening.
// The recipe's image is swapped for the local fixture (NGC images can't be pulled here); the rest is as rendered.
import { loadManifests, renderLaunch, validateParams } from '@berth/manifests';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createBody, DockerRuntime } from '../apps/worker/src/executor/docker-runtime.js';
import { jobLimitDefaults, memlockLimit } from '../apps/worker/src/executor/host-limits.js';
import { docker, manifestsDir } from './support/stack.js';

const manifests = [...loadManifests(manifestsDir).values()];
const host = mkdtempSync(join(tmpdir(), 'berth-recipes-'));
const defaults = {
  memlock: memlockLimit(),
  ...jobLimitDefaults({}),
  network: 'bridge',
  log: { maxSize: '256m', maxFiles: 4 },
};

const cases = manifests.flatMap((m) => {
  const gpus = Math.max(m.resources.gpus.min, 1);
  const variants = [{ m, gpus, cpu: false }];
  if (m.resources.gpus.min === 0 && ('param' in m.image || m.image.cpu)) variants.push({ m, gpus: 0, cpu: true });
  return variants;
});

test.each(cases.map((c) => [`${c.m.id} on ${c.cpu ? 'the CPU' : `${c.gpus} GPU(s)`}`, c] as const))(
  '%s',
  async (_, { m, gpus, cpu }) => {
    const params = validateParams(m, m.id === 'custom' ? { image: 'berth/fixture:dev', command: ['true'] } : {});
    if (!params.ok) throw new Error(JSON.stringify(params.issues));
    const jobId = `job_${m.id
      .replace(/[^a-z]/g, '')
      .padEnd(20, 'a')
      .slice(0, 20)}`;
    const launch = renderLaunch(m, params.params, {
      gpus: cpu ? 'none' : Array.from({ length: gpus }, (_, i) => String(i)),
      gpuCount: gpus,
      attempt: cpu ? 2 : 1,
      jobId,
      workerId: 'engine-test',
      resultsDir: join(host, 'results'),
      dataDir: join(host, 'data'),
      initDir: join(host, 'init'),
      cpu,
    });
    const body = createBody({ ...launch, image: 'berth/fixture:dev' }, defaults);
    const container = await docker.createContainer(body);
    try {
      const info = await container.inspect();
      expect(info.Name).toBe(`/${launch.name}`);
      expect(info.Config.Cmd).toEqual(launch.command);
      expect(info.Config.Labels).toMatchObject({ 'berth.job': jobId, 'berth.manifest': m.id });
      const hc = info.HostConfig;
      expect(hc).toMatchObject({
        Privileged: false,
        CapDrop: ['ALL'],
        SecurityOpt: ['no-new-privileges'],
        AutoRemove: false,
      });
      expect(hc.RestartPolicy?.Name).toBe('no');
      expect(hc.NetworkMode).not.toBe('host');
      expect(hc.IpcMode).not.toBe('host');
      expect(hc.PidMode ?? '').not.toBe('host');
      expect(hc.PidsLimit).toBeGreaterThan(0);
      expect(hc.ShmSize).toBe(launch.shmSizeBytes);
      expect(hc.Ulimits).toEqual(expect.arrayContaining([{ Name: 'stack', Soft: 67108864, Hard: 67108864 }]));
      for (const bind of hc.Binds ?? []) {
        expect(bind).not.toMatch(/docker\.sock/);
        if (/:\/(data|init):/.test(bind)) expect(bind.endsWith(':ro')).toBe(true);
      }
      expect(hc.Binds).toContain(`${join(host, 'results')}:/results:rw`);
      // Every recipe gets limits: its own or the worker's defaults.
      expect(hc.Memory).toBe(m.resources.memory !== undefined ? launch.memoryBytes : defaults.memoryBytes);
      expect(hc.MemorySwap).toBe(hc.Memory);
      expect(hc.NanoCpus).toBe(launch.nanoCpus ?? defaults.nanoCpus);
      // A read-only root unless the recipe says why not (only NVIDIA's DLE scripts do).
      expect(hc.ReadonlyRootfs ?? false).toBe(m.container.writableRootfs === undefined);
      if (m.container.writableRootfs) expect(m.id).toMatch(/^dle-/);
      const visible = info.Config.Env.filter((e) => e.startsWith('NVIDIA_VISIBLE_DEVICES='));
      if (cpu) {
        expect(hc.DeviceRequests ?? []).toEqual([]);
        expect(hc.Runtime).toBe('runc');
        expect(visible).toEqual(['NVIDIA_VISIBLE_DEVICES=void']);
      } else {
        expect(hc.DeviceRequests).toEqual([
          expect.objectContaining({ DeviceIDs: launch.gpus, Capabilities: [['gpu']] }),
        ]);
        expect(visible).toEqual([`NVIDIA_VISIBLE_DEVICES=${(launch.gpus as string[]).join(',')}`]);
      }
      expect(Object.keys(launch.env).filter((k) => /^(NVIDIA_|BERTH_)|^LD_/.test(k))).toEqual([]);
    } finally {
      await container.remove({ force: true });
    }
  },
);

test('a launch onto a network the engine lacks fails as INFRA_ERROR naming the network, not as a missing image', async () => {
  const runtime = new DockerRuntime(docker, { network: `berth-missing-${process.pid}` });
  const m = loadManifests(manifestsDir).get('custom')!;
  const params = validateParams(m, { image: 'berth/fixture:dev', command: ['true'] });
  if (!params.ok) throw new Error(JSON.stringify(params.issues));
  const launch = renderLaunch(m, params.params, {
    gpus: 'none',
    gpuCount: 0,
    attempt: 1,
    jobId: 'job_missingnetworkaaaaa',
    workerId: 'engine-test',
    resultsDir: join(host, 'results'),
    cpu: true,
  });
  const hooks = { onRunning: async () => {}, onOutput: async () => {} };
  try {
    await expect(runtime.run(launch, hooks)).rejects.toMatchObject({
      name: 'LaunchError',
      reason: 'INFRA_ERROR',
      message: expect.stringContaining(`berth-missing-${process.pid}`),
    });
  } finally {
    await runtime.remove(launch.name);
  }
  // The image really is missing: still IMAGE_PULL_FAILED.
  await expect(runtime.run({ ...launch, image: 'berth/not-here:none' }, hooks)).rejects.toMatchObject({
    reason: 'IMAGE_PULL_FAILED',
  });
});
