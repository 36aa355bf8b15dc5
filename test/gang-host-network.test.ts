// Members of a multi-node job across hosts run on the host's network, fenced from berth's own ports by their
// cgroup. Here two workers that each give an address (127.0.0.1, as two hosts would give theirs) run a 2-node
// pretraining job over the host's loopback; and a container made exactly as berth makes such a member probes
// Redis and the API (refused) and a port of someone else's (answered). Needs root, iptables' cgroup match and a
// cgroup v2 hierarchy (the unified one of a hybrid host does).
import type { Dataset, JobRecord } from '@berth/contracts';
import Docker from 'dockerode';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { berthPorts } from '../apps/worker/src/assemble.js';
import { createBody, type ContainerDefaults } from '../apps/worker/src/executor/docker-runtime.js';
import { memlockLimit } from '../apps/worker/src/executor/host-limits.js';
import { ensureHostNetworkFence } from '../apps/worker/src/executor/job-network.js';
import type { BerthWorker } from '../apps/worker/src/worker.js';
import {
  startTestStack,
  startTestWorker,
  submit,
  testWorkerConfig,
  uploadDemoCorpus,
  waitForEnd,
  type TestStack,
} from './support/stack.js';

const docker = new Docker();
let stack: TestStack;
const workers: BerthWorker[] = [];
let corpus: Dataset;
let fence: { cgroupParent: string };
let ports: number[];
beforeAll(async () => {
  stack = await startTestStack('gang-host', { worker: false });
  const options = (n: number) => ({
    workerId: `w${n}-${stack.prefix}`,
    api: stack.workerApi,
    dataDir: join(tmpdir(), 'berth-test-data', `${stack.prefix}-w${n}`),
    config: { address: '127.0.0.1' },
  });
  // What main.ts does before it assembles a worker with an address: the fence, from the ports of its own config.
  ports = berthPorts(testWorkerConfig(stack.prefix, options(1)));
  fence = await ensureHostNetworkFence(ports);
  for (const n of [1, 2]) workers.push(startTestWorker(stack.prefix, { ...options(n), hostNetwork: fence }));
  await Promise.all(workers.map((w) => w.ready));
  corpus = await uploadDemoCorpus(stack.alice);
}, 120_000);
afterAll(async () => {
  for (const w of workers) await w.close();
  await stack?.close();
});

test('the fence covers Redis and the API: the ports of the worker config', () => {
  expect(ports).toEqual(
    [Number(new URL(testWorkerConfig('x').redisUrl).port), Number(new URL(stack.url).port)].sort((a, b) => a - b),
  );
});

test('a 2-node run on the host network: both members on it, in the fenced cgroup, one world of 2', async () => {
  const { body } = await submit(stack.alice, {
    manifest: 'bert-pretrain',
    inputs: { dataset: corpus.id },
    params: { train_file: 'corpus.txt', model_config: 'tiny', max_steps: 20, batch_size: 8, precision: 'fp32' },
    resources: { gpus: 0, nodes: 2 },
  });
  let seen: Docker.ContainerInspectInfo[] = [];
  for (let i = 0; i < 600 && seen.length < 2; i++) {
    const listed = await docker.listContainers({ filters: { label: [`berth.job=${body.id}`] } });
    if (listed.length === 2) seen = await Promise.all(listed.map((c) => docker.getContainer(c.Id).inspect()));
    else await new Promise((r) => setTimeout(r, 200));
  }
  expect(seen.map((c) => [c.HostConfig.NetworkMode, c.HostConfig.CgroupParent])).toEqual([
    ['host', fence.cgroupParent],
    ['host', fence.cgroupParent],
  ]);
  const done: JobRecord = await waitForEnd(stack.alice, body.id, 300_000);
  expect([done.state, done.message]).toEqual(['succeeded', undefined]);
  expect(done.attempts[0]!.members!.map((m) => m.address)).toEqual(['127.0.0.1', '127.0.0.1']);
  const log = await (await stack.alice.fetch(`/v1/jobs/${body.id}/logs`)).text();
  expect(log).toMatch(/"world_size": 2/);
}, 400_000);

test("a member on the host network reaches someone else's port, but not Redis or the API", async () => {
  const other: Server = createServer((_req, res) => res.end('open'));
  await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
  const open = (other.address() as AddressInfo).port;
  const probe = (port: number) =>
    `if wget -T 3 -qO- http://127.0.0.1:${port}/ >/dev/null 2>&1 || nc -w 3 127.0.0.1 ${port} </dev/null; then echo "${port} reached"; else echo "${port} refused"; fi`;
  const defaults: ContainerDefaults = {
    memlock: memlockLimit(),
    memoryBytes: 512 * 1024 ** 2,
    nanoCpus: 1e9,
    network: 'bridge',
    log: { maxSize: '10m', maxFiles: 1 },
    hostNetwork: fence,
  };
  const body = createBody(
    {
      name: `berth-hostnet-probe-${process.pid}`,
      image: 'berth/fixture:dev',
      command: ['sh', '-c', [...ports, open].map(probe).join('; ')],
      env: {},
      labels: { 'berth.test': 'gang-host-network' },
      gpus: 'none',
      shmSizeBytes: 64 * 1024 ** 2,
      readOnlyRootfs: true,
      resultsDir: tmpdir(),
      mounts: [],
      network: 'host',
    },
    defaults,
  );
  /** What a container of `create` said of each port it probed. */
  const probed = async (create: Docker.ContainerCreateOptions): Promise<string[]> => {
    const container = await docker.createContainer({ ...create, Tty: true });
    try {
      await container.start();
      await container.wait();
      const said = (await container.logs({ stdout: true, stderr: true })).toString();
      return said.split(/\r?\n/).filter((l) => /^\d+ (reached|refused)$/.test(l));
    } finally {
      await container.remove({ force: true });
    }
  };
  try {
    expect(await probed(body)).toEqual([...ports.map((p) => `${p} refused`), `${open} reached`]);
    // The same container outside the fenced cgroup reaches them all: the refusals above are the fence's.
    const { CgroupParent: _fenced, ...unfenced } = body.HostConfig!;
    expect(await probed({ ...body, HostConfig: unfenced })).toEqual([...ports, open].map((p) => `${p} reached`));
  } finally {
    other.close();
  }
}, 60_000);

test('a runtime without the fence refuses a launch on the host network', () => {
  const launch = {
    name: 'x',
    image: 'berth/fixture:dev',
    command: ['true'],
    env: {},
    labels: {},
    gpus: 'none' as const,
    shmSizeBytes: 0,
    readOnlyRootfs: true,
    resultsDir: tmpdir(),
    mounts: [],
    network: 'host',
  };
  const unfenced = { memlock: 0, memoryBytes: 1, nanoCpus: 1, network: 'bridge', log: { maxSize: '1m', maxFiles: 1 } };
  expect(() => createBody(launch, unfenced)).toThrow(/no fence for members on the host network/);
});
