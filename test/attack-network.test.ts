// Attack suite, issue 19 item 2: from inside real job containers, probe the host's ports (by every host address), the
// cloud metadata address and private ranges; on Docker's default bridge they answer, on the berth jobs network they
// must not, while a public address stays reachable for egress jobs and members of an icc network reach each other.
// Needs root (iptables, ip netns) and the main engine with iptables on; every network, rule, link and namespace made
// here has a test-unique name and is removed afterwards.
import Docker from 'dockerode';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  chainNames,
  ensureJobNetwork,
  removeJobNetwork,
  JobNetworkError,
  type JobNetwork,
} from '../apps/worker/src/executor/job-network.js';

const docker = new Docker({ socketPath: '/var/run/docker.sock' });
const IMAGE = 'berth/fixture:dev';
const id = process.pid % 100000;
const jobsNet = { name: `berth-jobs-t${id}`, bridge: `bj${id}` };
const iccNet = { name: `berth-job-t${id}-icc`, bridge: `bjc${id}`, icc: true };
const conflictNet = `berth-jobs-t${id}-other`;
const raceNet = `berth-jobs-t${id}-race`;
// A stand-in for "the rest of the world": a network namespace behind a veth, holding the metadata address
// 169.254.169.254 and a public address (TEST-NET-2) that egress jobs must still reach. Traffic to both is routed
// (FORWARD), as it is to a real metadata service or the internet.
const ns = `berthns${id}`;
const vethHost = `bmh${id}`;
const vethNs = `bmn${id}`;
const PUBLIC_IP = '198.51.100.7';
const METADATA_IP = '169.254.169.254';

const sh = (cmd: string): string =>
  execFileSync('sh', ['-c', cmd], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
const quiet = (cmd: string): void => {
  try {
    execFileSync('sh', ['-c', cmd], { stdio: 'ignore' });
  } catch {
    // Cleanup of something that may not exist.
  }
};

function ipv4Of(iface: string): string {
  const m = /inet (\d+\.\d+\.\d+\.\d+)/.exec(sh(`ip -4 addr show dev ${iface}`));
  if (!m?.[1]) throw new Error(`no IPv4 address on ${iface}`);
  return m[1];
}

let hostListener: Server;
let published: Docker.Container | undefined;
let publishedPort = 0;
let hostPort = 0;
let outside: ChildProcess | undefined;
const hostIps = { docker0: '', primary: '' };

async function listen(server: Server, host: string): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return (server.address() as AddressInfo).port;
}

/** Runs `script` in a fixture container on `network` and returns its output (a tty: no stream framing). */
async function runIn(network: string, script: string): Promise<string> {
  const container = await docker.createContainer({
    Image: IMAGE,
    Cmd: ['sh', '-c', script],
    Tty: true,
    Labels: { 'berth.test': 'attack-network' },
    HostConfig: { NetworkMode: network, AutoRemove: false },
  });
  try {
    await container.start();
    await container.wait();
    return (await container.logs({ stdout: true, stderr: true })).toString();
  } finally {
    await container.remove({ force: true });
  }
}

interface Target {
  name: string;
  host: string;
  port: number;
}

/** One line "name=open" or "name=closed" per target: open means the berth probe page answered. */
function probeScript(targets: Target[]): string {
  return targets
    .map(
      (t) =>
        // busybox nc, not wget: the fixture's static wget crashes (SIGSEGV) on any fetch.
        `if printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 ${t.host} ${t.port} 2>/dev/null | grep -q berth-probe-ok; ` +
        `then echo ${t.name}=open; else echo ${t.name}=closed; fi`,
    )
    .join('; ');
}

function parse(output: string): Record<string, string> {
  return Object.fromEntries(
    [...output.matchAll(/^(\w+)=(open|closed)/gm)].map((m) => [m[1]!, m[2]!] as [string, string]),
  );
}

function hostTargets(gateway: string): Target[] {
  return [
    // The worker's metrics, the API, a Redis published on the host: all a listener on 0.0.0.0, by every address.
    { name: 'gateway', host: gateway, port: hostPort },
    { name: 'docker0', host: hostIps.docker0, port: hostPort },
    { name: 'primary', host: hostIps.primary, port: hostPort },
    { name: 'metadata', host: METADATA_IP, port: 80 },
    // A service container publishing a port on the host (the compose stack's API or Redis): reached through DNAT.
    { name: 'published', host: hostIps.primary, port: publishedPort },
  ];
}

beforeAll(async () => {
  hostListener = createServer((_req, res) => res.end('berth-probe-ok\n'));
  hostPort = await listen(hostListener, '0.0.0.0');
  hostIps.docker0 = ipv4Of('docker0');
  hostIps.primary = /src (\d+\.\d+\.\d+\.\d+)/.exec(sh('ip -4 route get 1.1.1.1'))?.[1] ?? '';
  if (!hostIps.primary) throw new Error('no primary host address');

  published = await docker.createContainer({
    Image: IMAGE,
    Cmd: ['sh', '-c', 'mkdir -p /w && echo berth-probe-ok > /w/index.html && httpd -f -p 7000 -h /w'],
    Labels: { 'berth.test': 'attack-network' },
    ExposedPorts: { '7000/tcp': {} },
    HostConfig: { NetworkMode: 'bridge', PortBindings: { '7000/tcp': [{ HostIp: '0.0.0.0', HostPort: '' }] } },
  });
  await published.start();
  publishedPort = Number((await published.inspect()).NetworkSettings.Ports['7000/tcp']?.[0]?.HostPort);
  if (!publishedPort) throw new Error('the published port has no host port');

  sh(`ip netns add ${ns}`);
  sh(`ip link add ${vethHost} type veth peer name ${vethNs}`);
  sh(`ip link set ${vethNs} netns ${ns}`);
  sh(`ip addr add 198.51.100.1/24 dev ${vethHost} && ip link set ${vethHost} up`);
  sh(
    `ip netns exec ${ns} sh -c 'ip link set lo up; ip addr add ${PUBLIC_IP}/24 dev ${vethNs}; ` +
      `ip addr add ${METADATA_IP}/32 dev ${vethNs}; ip link set ${vethNs} up; ip route add default via 198.51.100.1'`,
  );
  sh(`ip route add ${METADATA_IP}/32 via ${PUBLIC_IP} dev ${vethHost}`);
  outside = spawn(
    'ip',
    [
      'netns',
      'exec',
      ns,
      process.execPath,
      '-e',
      "require('http').createServer((q,s)=>s.end('berth-probe-ok\\n')).listen(80,'0.0.0.0')",
    ],
    { stdio: 'ignore' },
  );
  for (let i = 0; ; i++) {
    if (sh(`ip netns exec ${ns} sh -c 'cat /proc/net/tcp'`).includes(':0050 00000000:0000 0A')) break;
    if (i > 40) throw new Error('the outside listener did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
}, 60_000);

afterAll(async () => {
  hostListener?.close();
  outside?.kill('SIGTERM');
  await published?.remove({ force: true }).catch(() => {});
  for (const net of [jobsNet, { name: iccNet.name, bridge: iccNet.bridge }]) {
    await removeJobNetwork(docker, net).catch(() => {});
  }
  await removeJobNetwork(docker, { name: raceNet, bridge: `bjr${id}` }).catch(() => {});
  await docker
    .getNetwork(conflictNet)
    .remove()
    .catch(() => {});
  quiet(`ip route del ${METADATA_IP}/32`);
  quiet(`ip link del ${vethHost}`);
  quiet(`ip netns del ${ns}`);
}, 60_000);

describe('jobs cannot reach berth (issue 19 item 2)', () => {
  test('the old setup: on the default bridge a job reaches the host by every address, and the metadata address', async () => {
    const gateway = ipv4Of('docker0');
    const out = parse(await runIn('bridge', probeScript(hostTargets(gateway))));
    // What today's NetworkMode 'bridge' gives every job: this is the attack the berth network must stop.
    expect(out).toEqual({ gateway: 'open', docker0: 'open', primary: 'open', metadata: 'open', published: 'open' });
  });

  let net: JobNetwork;
  test('the berth jobs network: every host address and the metadata address refused, a public address still open', async () => {
    net = await ensureJobNetwork(docker, jobsNet);
    expect(net.gateway).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    if (net.ipv6Fenced)
      expect(sh('ip6tables -S INPUT')).toContain(`-i ${jobsNet.bridge} -j ${chainNames(jobsNet.bridge).input}`);
    const redisPort = Number(new URL(process.env.BERTH_TEST_REDIS_URL ?? 'redis://127.0.0.1:6391').port);
    const targets = [...hostTargets(net.gateway!), { name: 'egress', host: PUBLIC_IP, port: 80 }];
    const redisProbe =
      `if printf 'PING\\r\\n' | nc -w 2 ${net.gateway!} ${redisPort} 2>/dev/null | grep -q PONG; ` +
      'then echo redis=open; else echo redis=closed; fi';
    const started = Date.now();
    const out = parse(await runIn(jobsNet.name, `${probeScript(targets)}; ${redisProbe}`));
    expect(out).toEqual({
      gateway: 'closed',
      docker0: 'closed',
      primary: 'closed',
      metadata: 'closed',
      published: 'closed',
      redis: 'closed',
      egress: 'open',
    });
    // Refused, not dropped: a job that probes learns nothing slowly, and one that needs the host fails at once.
    expect(Date.now() - started).toBeLessThan(15_000);
  });

  test('ensureJobNetwork is idempotent and safe to race: one network, one jump per chain, same rules', async () => {
    const { input, forward } = chainNames(jobsNet.bridge);
    const before = sh(`iptables -S ${input}; iptables -S ${forward}`);
    const again = await Promise.all([ensureJobNetwork(docker, jobsNet), ensureJobNetwork(docker, jobsNet)]);
    expect(again.map((n) => n.id)).toEqual([net.id, net.id]);
    expect(again.every((n) => !n.created)).toBe(true);
    expect(sh(`iptables -S ${input}; iptables -S ${forward}`)).toBe(before);
    // Both racers may add a jump; a duplicate is harmless, but a sequential re-run must not add one.
    await ensureJobNetwork(docker, jobsNet);
    const jumps = (chain: string, parent: string): number =>
      sh(`iptables -S ${parent}`)
        .split('\n')
        .filter((l) => l.includes(`-j ${chain}`)).length;
    expect(jumps(input, 'INPUT')).toBeGreaterThanOrEqual(1);
    expect(jumps(input, 'INPUT')).toBeLessThanOrEqual(2);
    expect(jumps(forward, 'DOCKER-USER')).toBeGreaterThanOrEqual(1);
  });

  test('workers racing to create the network all succeed on the one network', async () => {
    // Two workers starting together both find no network and both create it; the engine refuses the loser (403: same
    // bridge name), which must read as "it exists", not as a failed start.
    const race = { name: raceNet, bridge: `bjr${id}` };
    try {
      const nets = await Promise.all([1, 2, 3].map(() => ensureJobNetwork(docker, race)));
      expect(new Set(nets.map((n) => n.id)).size).toBe(1);
      expect(nets.filter((n) => n.created)).toHaveLength(1);
    } finally {
      await removeJobNetwork(docker, race);
    }
  });

  test('a network of that name with other settings is refused, not reused', async () => {
    await docker.createNetwork({ Name: conflictNet, Driver: 'bridge' });
    const err = await ensureJobNetwork(docker, { name: conflictNet, bridge: `bjx${id}` }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(JobNetworkError);
    expect((err as JobNetworkError).code).toBe('JOB_NETWORK_CONFLICT');
    expect((err as Error).message).toMatch(/exists with other settings/);
  });

  /** Serves the probe page from one container and probes it from another, by address or (embedded DNS) by name. */
  const serveAndProbe = async (network: string, byName = false): Promise<string> => {
    const name = `berth-t${id}-peer`;
    const server = await docker.createContainer({
      name,
      Image: IMAGE,
      Cmd: ['sh', '-c', 'mkdir -p /w && echo berth-probe-ok > /w/index.html && httpd -f -p 7000 -h /w'],
      Labels: { 'berth.test': 'attack-network' },
      HostConfig: { NetworkMode: network },
    });
    try {
      await server.start();
      const ip = (await server.inspect()).NetworkSettings.Networks[network]?.IPAddress;
      if (!ip) throw new Error('the server container has no address');
      const host = byName ? name : ip;
      return parse(await runIn(network, `sleep 0.5; ${probeScript([{ name: 'peer', host, port: 7000 }])}`)).peer!;
    } finally {
      await server.remove({ force: true });
    }
  };

  test('jobs on the shared network cannot reach each other (tenants), members of an icc network can', async () => {
    expect(await serveAndProbe(jobsNet.name)).toBe('closed');
    const icc = await ensureJobNetwork(docker, iccNet);
    expect(icc.bridge).toBe(iccNet.bridge);
    expect(await serveAndProbe(iccNet.name)).toBe('open');
    // Docker's embedded DNS answers inside the container's namespace, so the INPUT fence leaves names working.
    expect(await serveAndProbe(iccNet.name, true)).toBe('open');
    // The icc network is fenced like the shared one.
    const out = parse(await runIn(iccNet.name, probeScript(hostTargets(icc.gateway!))));
    expect(out).toEqual({
      gateway: 'closed',
      docker0: 'closed',
      primary: 'closed',
      metadata: 'closed',
      published: 'closed',
    });
  });

  test('removeJobNetwork takes the network and every rule away', async () => {
    await removeJobNetwork(docker, { name: iccNet.name, bridge: iccNet.bridge });
    const { input, forward } = chainNames(iccNet.bridge);
    expect(sh('iptables -S')).not.toContain(input);
    expect(sh('iptables -S')).not.toContain(forward);
    expect(sh('ip6tables -S 2>/dev/null || true')).not.toContain(input);
    expect(await docker.listNetworks({ filters: { name: [iccNet.name] } })).toEqual([]);
  });
});
