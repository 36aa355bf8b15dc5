// A job's whole life on the real Docker engine: submit → container → logs → final state.
import { join } from 'node:path';
import { docker, fixtureJob, startTestStack, submit, waitForEnd, type TestStack } from './support/stack.js';

let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack('lifecycle');
});
afterAll(async () => stack.close());

test('a container that prints and exits 0 is recorded as succeeded, with its lines readable', async () => {
  const { status, body } = await submit(stack.alice, fixtureJob(['sh', '-c', 'echo hello; echo world >&2']));
  expect(status).toBe(201);
  expect(body.id).toMatch(/^job_[a-z2-7]{20}$/);
  expect(body.state).toBe('queued');

  const job = await waitForEnd(stack.alice, body.id);
  expect(job).toMatchObject({ state: 'succeeded', exitCode: 0, attempt: 1, container: `berth-${body.id}-a1` });
  expect(job.history.map((h: { state: string }) => h.state)).toEqual([
    'queued',
    'pulling',
    'starting',
    'running',
    'uploading',
    'succeeded',
  ]);
  expect(Date.parse(job.startedAt!)).toBeLessThanOrEqual(Date.parse(job.finishedAt!));

  const text = await (await stack.alice.fetch(`/v1/jobs/${body.id}/logs`)).text();
  expect(text.split('\n').sort()).toEqual(['', 'hello', 'world']);
  const json = await (
    await stack.alice.fetch(`/v1/jobs/${body.id}/logs`, { headers: { accept: 'application/json' } })
  ).json();
  expect(json.ended).toBe(true);
  expect(json.lines).toEqual(
    expect.arrayContaining([
      expect.objectContaining({ stream: 'stdout', text: 'hello', attempt: 1 }),
      expect.objectContaining({ stream: 'stderr', text: 'world', attempt: 1 }),
    ]),
  );

  // Removed only after everything was collected: nothing of it is left on the engine.
  const left = await docker.listContainers({ all: true, filters: { label: [`berth.job=${body.id}`] } });
  expect(left).toHaveLength(0);
});

test('a command exiting 3 fails with EXIT_NONZERO and exit code 3', async () => {
  const { body } = await submit(stack.alice, fixtureJob(['sh', '-c', 'echo about to fail; exit 3']));
  const job = await waitForEnd(stack.alice, body.id);
  expect(job).toMatchObject({ state: 'failed', reason: 'EXIT_NONZERO', exitCode: 3 });
  // Nothing on stderr: the exit code is all there is to say.
  expect(job.message).toBe('the container exited with code 3');
  expect(await (await stack.alice.fetch(`/v1/jobs/${body.id}/logs`)).text()).toBe('about to fail\n');
});

test("a failure's message ends with the container's last five lines on stderr, each cut at 400 characters", async () => {
  const script = [
    'echo progress',
    'for i in 1 2 3 4 5 6; do echo "warning $i" >&2; done',
    `echo "${'x'.repeat(500)}" >&2`,
    'echo "train: error: /init: no model.safetensors" >&2',
    'exit 4',
  ].join('; ');
  const { body } = await submit(stack.alice, fixtureJob(['sh', '-c', script]));
  const job = await waitForEnd(stack.alice, body.id);
  expect(job).toMatchObject({ state: 'failed', reason: 'EXIT_NONZERO', exitCode: 4 });
  expect(job.message).toBe(
    [
      'the container exited with code 4; its last lines on stderr:',
      'warning 4',
      'warning 5',
      'warning 6',
      `${'x'.repeat(400)}…`,
      'train: error: /init: no model.safetensors',
    ].join('\n'),
  );
});

test('containers carry berth labels and the hardening defaults', async () => {
  const { body } = await submit(stack.alice, fixtureJob(['sleep', '5']));
  const name = `berth-${body.id}-a1`;
  let info;
  for (let i = 0; i < 400 && !info; i++) {
    info = await docker
      .getContainer(name)
      .inspect()
      .catch(() => undefined);
    if (!info) await new Promise((r) => setTimeout(r, 50));
  }
  expect(info).toBeDefined();
  expect(info!.Config.Labels).toMatchObject({
    'berth.job': body.id,
    'berth.attempt': '1',
    'berth.worker': stack.workerId,
  });
  expect(info!.HostConfig).toMatchObject({
    Privileged: false,
    CapDrop: ['ALL'],
    SecurityOpt: ['no-new-privileges'],
    PidsLimit: 4096,
    NetworkMode: 'none',
    IpcMode: 'private',
    PidMode: '',
    UsernsMode: '',
    AutoRemove: false,
    RestartPolicy: { Name: 'no', MaximumRetryCount: 0 },
  });
  // Only the worker's own folders are mounted (here /results), never the Docker socket or another host path.
  const sources = info!.Mounts.map((m) => m.Source);
  expect(sources).toHaveLength(1);
  expect(sources[0]).toContain(join('results', body.id, 'a1'));
  expect(info!.Mounts.map((m) => m.Destination)).toEqual(['/results']);
  // A CPU job is told it has no GPU, and runs on plain runc whatever the engine's default runtime.
  expect(info!.Config.Env.filter((e) => e.startsWith('NVIDIA_'))).toEqual(['NVIDIA_VISIBLE_DEVICES=void']);
  expect(info!.HostConfig.Runtime).toBe('runc');
  // Limits on every job, with a read-only root and a writable /tmp (and HOME there).
  expect(info!.HostConfig.Memory).toBeGreaterThan(0);
  expect(info!.HostConfig.NanoCpus).toBeGreaterThan(0);
  expect(info!.HostConfig).toMatchObject({ ReadonlyRootfs: true, Tmpfs: { '/tmp': 'rw,exec,nosuid,nodev' } });
  expect(info!.Config.Env).toContain('HOME=/tmp');
  expect(info!.HostConfig.Devices ?? []).toEqual([]);
  await waitForEnd(stack.alice, body.id);
});

test('no spec reaches the host: mounts, the Docker socket, host namespaces, privileges and NVIDIA_* are refused', async () => {
  const attempts: [Record<string, unknown>, string][] = [
    [{ volumes: ['/var/run/docker.sock:/var/run/docker.sock'] }, 'params.volumes'],
    [{ mounts: [{ source: '/', target: '/host' }] }, 'params.mounts'],
    [{ privileged: true }, 'params.privileged'],
    [{ network: 'host' }, 'params.network'],
    [{ ipc: 'host' }, 'params.ipc'],
    [
      { env: { NVIDIA_VISIBLE_DEVICES: 'all', DOCKER_HOST: 'unix:///var/run/docker.sock' } },
      'params.env.NVIDIA_VISIBLE_DEVICES',
    ],
  ];
  for (const [extra, path] of attempts) {
    const spec = fixtureJob(['true']);
    const res = await submit(stack.alice, { ...spec, params: { ...spec.params, ...extra } });
    const issues = (res.body as unknown as { error: { issues: { path: string }[] } }).error.issues;
    expect({ path, status: res.status, paths: issues.map((i) => i.path) }).toEqual({
      path,
      status: 400,
      paths: expect.arrayContaining([path]),
    });
  }
  const hostLevel = await submit(stack.alice, { ...fixtureJob(['true']), hostConfig: { Privileged: true } });
  expect(hostLevel.status).toBe(400);
});
