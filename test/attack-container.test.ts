// CIS Docker Benchmark, section 5 (container runtime), checked against a real job's running container: the worker
// runs the job as it would any tenant's, and each case below reads the engine's inspect data the way the benchmark's
// audit step describes it. Numbers are those docker-bench-security prints in its container_runtime group.
import type Docker from 'dockerode';
import { existsSync } from 'node:fs';
import { docker, fixtureJob, startTestStack, submit, waitForEnd, type TestStack } from './support/stack.js';

let stack: TestStack;
let jobId: string;
let info: Docker.ContainerInspectInfo;

// Folders whose mount would hand a job the host (CIS 5.5 lists these by name), and trees nothing may come from.
const SENSITIVE = ['/', '/boot', '/dev', '/etc', '/lib', '/proc', '/sys', '/usr', '/var', '/run', '/root', '/home'];
const NEVER_UNDER = ['/boot', '/dev', '/etc', '/proc', '/sys', '/run', '/root'];
const hasAppArmor = existsSync('/sys/kernel/security/apparmor');

beforeAll(async () => {
  stack = await startTestStack('cis');
  const { status, body } = await submit(stack.alice, fixtureJob(['sleep', '300']));
  if (status !== 201) throw new Error(`submit: ${status} ${JSON.stringify(body)}`);
  jobId = body.id;
  const name = `berth-${jobId}-a1`;
  for (let i = 0; i < 600; i++) {
    const found = await docker
      .getContainer(name)
      .inspect()
      .catch(() => undefined);
    if (found?.State.Running) {
      info = found;
      break;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  if (!info) throw new Error(`container ${name} never ran`);
}, 60_000);

afterAll(async () => {
  if (jobId) await stack.alice.fetch(`/v1/jobs/${jobId}/cancel`, { method: 'POST' });
  await stack?.close();
  if (info)
    await docker
      .getContainer(info.Id)
      .remove({ force: true })
      .catch(() => {});
});

const hc = () => info.HostConfig;

// The engine applies its docker-default profile by itself where AppArmor is enabled; the job must not opt out.
const withAppArmor = hasAppArmor ? test : test.skip; // skipped where the host has no AppArmor: no profile can exist
withAppArmor('5.2 an AppArmor profile is applied', () => {
  expect(info.AppArmorProfile).not.toBe('unconfined');
  expect(info.AppArmorProfile).not.toBe('');
});

test('5.3 Linux capabilities are dropped (all, none added)', () => {
  expect(hc().CapDrop).toEqual(['ALL']);
  expect(hc().CapAdd ?? []).toEqual([]);
});

test('5.4 the container is not privileged', () => {
  expect(hc().Privileged).toBe(false);
});

test('5.5 no sensitive host folder is mounted; the only mount is this attempt\u2019s /results', () => {
  for (const m of info.Mounts) {
    expect(SENSITIVE).not.toContain(m.Source);
    for (const dir of NEVER_UNDER) expect(m.Source.startsWith(`${dir}/`)).toBe(false);
  }
  expect(info.Mounts.map((m) => m.Destination)).toEqual(['/results']);
  expect(info.Mounts[0]!.Source).toContain(`/results/${jobId}/a1`);
});

test.skip('5.6 sshd does not run in containers', () => {}); // N/A: berth starts no sshd; the job's command is the only process

test('5.7/5.8 no ports are published, privileged or not', () => {
  expect(hc().PortBindings ?? {}).toEqual({});
  expect(hc().PublishAllPorts ?? false).toBe(false);
  expect(Object.values(info.NetworkSettings.Ports ?? {}).filter(Boolean)).toEqual([]);
});

test('5.9 the host network namespace is not shared', () => {
  expect(hc().NetworkMode).not.toBe('host');
});

test('5.11 memory is limited, with no swap beyond it', () => {
  expect(hc().Memory).toBeGreaterThan(0);
  expect(hc().MemorySwap).toBe(hc().Memory);
});

test('5.12 CPU is limited: a CPU quota, and a CPU weight other than the default', () => {
  // docker-bench reads CpuShares (0 or 1024 is "not set"); a hard cap needs NanoCpus.
  expect(hc().NanoCpus ?? 0).toBeGreaterThan(0);
  expect([0, 1024]).not.toContain(hc().CpuShares ?? 0);
});

test('5.13 the root filesystem is read-only, /tmp a tmpfs', () => {
  expect(hc().ReadonlyRootfs).toBe(true);
  expect(Object.keys(hc().Tmpfs ?? {})).toEqual(['/tmp']);
});

test('5.14 incoming traffic is bound to a host interface (none: no ports at all)', () => {
  expect(Object.keys(hc().PortBindings ?? {})).toEqual([]);
});

test('5.15 the restart policy is no (the worker decides about retries)', () => {
  expect(hc().RestartPolicy).toMatchObject({ Name: 'no' });
});

test('5.16 the host PID namespace is not shared', () => {
  expect(hc().PidMode ?? '').toBe('');
});

test('5.17 the host IPC namespace is not shared', () => {
  expect(hc().IpcMode).toBe('private');
});

test('5.18 no host devices are passed in, nor GPUs to a CPU job', () => {
  expect(hc().Devices ?? []).toEqual([]);
  expect(hc().DeviceRequests ?? []).toEqual([]);
});

test('5.19 ulimits are overridden only where NGC images need it', () => {
  // Informational in CIS: berth sets memlock (NGC's -1, or the host's cap) and a 64 MiB stack, nothing else.
  expect((hc().Ulimits ?? []).map((u) => u.Name).sort()).toEqual(['memlock', 'stack']);
});

test('5.20 mount propagation is not shared', () => {
  for (const m of info.Mounts) expect(m.Propagation ?? '').not.toMatch(/^r?shared$/);
});

test('5.21 the host UTS namespace is not shared', () => {
  expect(hc().UTSMode ?? '').toBe('');
});

test('5.22 the default seccomp profile is not disabled', () => {
  expect((hc().SecurityOpt ?? []).filter((o: string) => /^seccomp[=:]/.test(o))).toEqual([]);
});

test.skip('5.23/5.24 docker exec with privileged or root user', () => {}); // N/A: berth never execs into job containers

test('5.25 the cgroup parent is the engine default', () => {
  expect(hc().CgroupParent ?? '').toBe('');
});

test('5.26 processes cannot gain new privileges', () => {
  expect(hc().SecurityOpt).toContain('no-new-privileges');
});

test.skip('5.27 container health is checked at runtime', () => {}); // N/A: a batch job is judged by its exit code and metrics

test('5.29 the pids cgroup limit is set', () => {
  expect(hc().PidsLimit).toBeGreaterThan(0);
});

test('5.30 the job is on the network the worker was configured with, and only on it', () => {
  // A recipe without `network: egress` gets Docker's `none`; egress jobs get the worker's fenced jobs network.
  expect(Object.keys(info.NetworkSettings.Networks ?? {})).toEqual([hc().NetworkMode]);
});

test('5.31 the host user namespace is not shared', () => {
  expect(hc().UsernsMode ?? '').toBe('');
});

test('5.32 the Docker socket is not mounted', () => {
  for (const m of info.Mounts) expect(m.Source).not.toMatch(/docker\.sock$/);
  expect((hc().Binds ?? []).join(' ')).not.toMatch(/docker\.sock/);
});

test('inside the job: the image cannot be changed, /tmp and /results can be written, HOME is on /tmp', async () => {
  const script =
    'if touch /bin/planted 2>/dev/null; then echo root=writable; else echo root=read-only; fi; ' +
    'echo x > /tmp/t && echo tmp=ok; echo x > /results/r && echo results=ok; echo "home=$HOME"';
  const { body } = await submit(stack.alice, fixtureJob(['sh', '-c', script]));
  const job = await waitForEnd(stack.alice, body.id, 60_000);
  const log = await (await stack.alice.fetch(`/v1/jobs/${body.id}/logs`)).text();
  expect({ state: job.state, log }).toEqual({
    state: 'succeeded',
    log: 'root=read-only\ntmp=ok\nresults=ok\nhome=/tmp\n',
  });
}, 90_000);
