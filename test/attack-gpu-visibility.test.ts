// A GPU host set up the way NVIDIA's docs suggest, `default-runtime: nvidia`, and an NGC-style image whose ENV says
// NVIDIA_VISIBLE_DEVICES=all: a gpus: 0 job must still see no GPU, and a slot job only the GPUs it was given.
// The `nvidia` runtime here is a stand-in (a wrapper that logs its call and execs runc) on a second engine; the
// stand-in GPU hook stays on that engine's PATH so it accepts GPU DeviceRequests as a toolkit host does.
import type Docker from 'dockerode';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BerthWorker } from '../apps/worker/src/worker.js';
import { startBareDockerd, type BareDockerd } from './support/bare-dockerd.js';
import { startTestStack, startTestWorker, submit, waitForEnd, type TestStack } from './support/stack.js';

const IMAGE = 'berth/fixture-nvidia-env:dev';
const dir = mkdtempSync(join(tmpdir(), 'berth-nvidia-default-'));
const wrapperLog = join(dir, 'nvidia-runtime.log');

let bare: BareDockerd;
let stack: TestStack;
let worker: BerthWorker;

beforeAll(async () => {
  const runc = execFileSync('sh', ['-c', 'command -v runc']).toString().trim();
  const wrapper = join(dir, 'nvidia-runtime');
  writeFileSync(wrapper, `#!/bin/sh\necho "$*" >> ${wrapperLog}\nexec ${runc} "$@"\n`);
  chmodSync(wrapper, 0o755);
  bare = await startBareDockerd(['berth/fixture:dev'], {
    dir,
    gpuHook: true,
    bridgeCidr: '10.214.0.1/24',
    daemonConfig: { runtimes: { nvidia: { path: wrapper } }, 'default-runtime': 'nvidia' },
  });
  // What an NGC image carries: every GPU visible unless the launch says otherwise.
  const base = await bare.docker.createContainer({ Image: 'berth/fixture:dev', Cmd: ['true'] });
  const [repo, tag] = IMAGE.split(':') as [string, string];
  await base.commit({ repo, tag, changes: ['ENV NVIDIA_VISIBLE_DEVICES=all'] });
  await base.remove();

  stack = await startTestStack('gpu-visibility', { worker: false });
  worker = startTestWorker(stack.prefix, {
    engine: bare.docker,
    api: stack.workerApi,
    workerId: 'nvidia-default',
    concurrency: 2,
    mode: 'slots',
    gpus: '4',
    retry: { infraRetries: 0, backoffMs: 0 },
  });
  await worker.ready;
}, 90_000);

afterAll(async () => {
  await worker?.close();
  await stack?.close();
  await bare?.stop();
});

/** Runs `env` in the NGC-style image, holding the container long enough to inspect it while it runs. */
async function runEnv(gpus: number): Promise<{ env: string[]; info: Docker.ContainerInspectInfo; given: string[] }> {
  const { status, body } = await submit(stack.alice, {
    manifest: 'custom',
    params: { image: IMAGE, command: ['sh', '-c', 'env; sleep 1'] },
    resources: { gpus },
  });
  expect(status).toBe(201);
  let info: Docker.ContainerInspectInfo | undefined;
  for (let i = 0; i < 400 && !info; i++) {
    info = await bare.docker
      .getContainer(`berth-${body.id}-a1`)
      .inspect()
      .catch(() => undefined);
    if (!info) await new Promise((r) => setTimeout(r, 50));
  }
  const job = await waitForEnd(stack.alice, body.id, 60_000);
  expect({ state: job.state, message: job.message }).toEqual({ state: 'succeeded', message: job.message });
  const log = await (await stack.alice.fetch(`/v1/jobs/${body.id}/logs`)).text();
  const env = log.split('\n').filter((l) => l.startsWith('NVIDIA_VISIBLE_DEVICES='));
  return { env, info: info!, given: job.attempts[0]!.gpus };
}

test('a gpus: 0 job runs under runc and sees NVIDIA_VISIBLE_DEVICES=void, whatever the image and default runtime say', async () => {
  const { env, info } = await runEnv(0);
  // The host's default runtime (the wrapper) must never have seen this container.
  const calls = readFileSync(wrapperLog, { encoding: 'utf8', flag: 'a+' });
  expect({ env, runtime: info.HostConfig.Runtime, viaDefaultRuntime: calls.includes(info.Id) }).toEqual({
    env: ['NVIDIA_VISIBLE_DEVICES=void'],
    runtime: 'runc',
    viaDefaultRuntime: false,
  });
}, 90_000);

test('a 1-GPU slot job sees exactly the device it was given, not the image\u2019s "all"', async () => {
  const { env, info, given } = await runEnv(1);
  expect(given).toHaveLength(1);
  expect(env).toEqual([`NVIDIA_VISIBLE_DEVICES=${given.join(',')}`]);
  // Set by the launch itself, not only by the engine's GPU driver: a runtime that reads the container's own
  // environment (the toolkit's legacy mode) must find the same devices, not the image's "all".
  expect(info.Config.Env.filter((e) => e.startsWith('NVIDIA_VISIBLE_DEVICES='))).toEqual([
    `NVIDIA_VISIBLE_DEVICES=${given.join(',')}`,
  ]);
  expect(info.HostConfig.DeviceRequests).toEqual([expect.objectContaining({ DeviceIDs: given })]);
}, 90_000);
