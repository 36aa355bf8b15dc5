// The Docker bridge network jobs run on, and the host firewall that keeps its containers away from berth itself.
//
// Why rules and not only Docker options: a container reaches the host's own ports (worker metrics, API, Redis, sshd)
// through the host's INPUT chain, whichever host address it dials (its gateway, docker0, eth0), and no Docker network
// option filters INPUT. Traffic to other machines (a cloud metadata service, the LAN, other Docker networks) crosses
// FORWARD, where DOCKER-USER is the chain Docker promises to leave alone. Both rule sets match on the bridge interface,
// so they hold for every container on the network without knowing its addresses. See docs/network.md.
import Docker from 'dockerode';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Destinations no job on a berth network may reach (on top of every address of the host itself, fenced via INPUT). */
export const DEFAULT_BLOCKED_DESTINATIONS: readonly string[] = [
  // Link-local: cloud metadata services (169.254.169.254, AWS 169.254.170.2 for task roles) hand out credentials.
  '169.254.0.0/16',
  // RFC 1918: the LAN, the VPC, other Docker networks and the containers behind host-published ports (DNAT targets).
  '10.0.0.0/8',
  '172.16.0.0/12',
  '192.168.0.0/16',
  // Carrier-grade NAT space, used for cluster-internal services (e.g. Tailscale, some cloud load balancers).
  '100.64.0.0/10',
  // "This network" and multicast: nothing a job needs, and a way to reach local services by other names.
  '0.0.0.0/8',
  '224.0.0.0/4',
];

export interface JobNetworkOptions {
  /** The Docker network's name (config.jobDefaults.network). */
  name: string;
  /** The Linux bridge interface the rules match on; at most 15 characters. Default: the network's name. */
  bridge?: string;
  /**
   * Container-to-container traffic on this network. Default false: the shared jobs network carries many tenants'
   * jobs, which must not reach each other. A multi-node job gets a network of its own with icc on.
   */
  icc?: boolean;
  /** Default DEFAULT_BLOCKED_DESTINATIONS. */
  blockedDestinations?: readonly string[];
  /**
   * Resolvers a job may still query on port 53 although they sit in a blocked range: Docker's embedded DNS forwards
   * from inside the container's namespace, so a private resolver (a VPC's) must stay reachable for port 53 only.
   * Default: the IPv4 nameservers of the host's /etc/resolv.conf.
   */
  dnsServers?: readonly string[];
  /** Extra labels on the network. */
  labels?: Record<string, string>;
  /**
   * No way out at all (Docker's internal network): a multi-node job's members reach each other and nothing else.
   * Default false.
   */
  internal?: boolean;
}

export interface JobNetwork {
  name: string;
  id: string;
  bridge: string;
  gateway: string | undefined;
  /** True when this call created the network (false: it existed with the settings berth wants). */
  created: boolean;
  /** False where ip6tables is missing or IPv6 is off in the kernel (then there is no IPv6 path to fence). */
  ipv6Fenced: boolean;
}

export type JobNetworkErrorCode = 'JOB_NETWORK_CONFLICT' | 'JOB_NETWORK_FIREWALL';

/** The jobs network could not be set up; the worker must not take jobs (they would run unfenced). */
export class JobNetworkError extends Error {
  override readonly name = 'JobNetworkError';
  constructor(
    readonly code: JobNetworkErrorCode,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

const LABEL = 'berth.network';
const BRIDGE_NAME = /^[A-Za-z0-9_.-]{1,15}$/;
const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;

function statusOf(err: unknown): number | undefined {
  return typeof err === 'object' && err !== null ? (err as { statusCode?: number }).statusCode : undefined;
}

function bridgeOf(options: Pick<JobNetworkOptions, 'name' | 'bridge'>): string {
  const bridge = options.bridge ?? options.name;
  if (!BRIDGE_NAME.test(bridge)) {
    throw new JobNetworkError(
      'JOB_NETWORK_CONFLICT',
      `bridge interface name "${bridge}" is not 1-15 letters, digits, '.', '_' or '-'; pass a bridge name`,
      { network: options.name, bridge },
    );
  }
  return bridge;
}

/** Chain names carry the bridge name, so several berth networks (and parallel tests) keep separate rules. */
export function chainNames(bridge: string): { input: string; forward: string } {
  return { input: `BERTH-I-${bridge}`, forward: `BERTH-F-${bridge}` };
}

/** The host's IPv4 resolvers, which Docker's embedded DNS forwards to from inside the job's namespace. */
export function hostNameservers(resolvConf = '/etc/resolv.conf'): string[] {
  let text: string;
  try {
    text = readFileSync(resolvConf, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .map((line) => /^\s*nameserver\s+(\S+)/.exec(line)?.[1])
    .filter((ip): ip is string => ip !== undefined && IPV4.test(ip) && !ip.startsWith('127.'));
}

/** The iptables-restore payload that (re)defines both chains in one transaction: no moment with half the rules. */
export function ruleSet(bridge: string, blocked: readonly string[], dnsServers: readonly string[]): string {
  const { input, forward } = chainNames(bridge);
  const tag = `-m comment --comment berth-jobs:${bridge}`;
  const lines = [
    '*filter',
    // Declaring a chain under --noflush creates it or empties it, so a re-run replaces rather than appends.
    `:${input} - [0:0]`,
    `:${forward} - [0:0]`,
    // Replies to connections the host opened (the worker or an operator reaching into a job) still come back.
    `-A ${input} -m conntrack --ctstate ESTABLISHED,RELATED ${tag} -j RETURN`,
    // Everything else a job sends to any address of the host: refused at once, so a probe fails fast and loudly.
    `-A ${input} -p tcp ${tag} -j REJECT --reject-with tcp-reset`,
    `-A ${input} ${tag} -j REJECT --reject-with icmp-port-unreachable`,
    // Traffic between containers on this bridge is Docker's to decide (the network's enable_icc).
    `-A ${forward} -o ${bridge} ${tag} -j RETURN`,
    ...dnsServers.flatMap((ns) => [
      `-A ${forward} -d ${ns}/32 -p udp --dport 53 ${tag} -j RETURN`,
      `-A ${forward} -d ${ns}/32 -p tcp --dport 53 ${tag} -j RETURN`,
    ]),
    ...blocked.map((cidr) => `-A ${forward} -d ${cidr} ${tag} -j REJECT --reject-with icmp-net-prohibited`),
    `-A ${forward} ${tag} -j RETURN`,
    'COMMIT',
    '',
  ];
  return lines.join('\n');
}

async function iptables(binary: string, args: string[]): Promise<boolean> {
  try {
    await run(binary, ['-w', '5', ...args]);
    return true;
  } catch {
    return false;
  }
}

async function restore(binary: string, payload: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const child = execFile(binary, ['-w', '5', '--noflush'], (err, _stdout, stderr) => {
      if (err) reject(new Error(`${binary} failed: ${stderr.trim() || err.message}`));
      else resolve();
    });
    child.stdin?.end(payload);
  });
}

/**
 * Adds `<match> -j chain` (`-i <bridge>`, say) at the top of `parent` unless it is there. Two workers racing may both
 * add it; a duplicate jump runs the same rules twice and is harmless, and removal takes every copy.
 */
async function ensureJump(binary: string, parent: string, match: string[], chain: string): Promise<void> {
  const rule = [...match, '-j', chain];
  if (await iptables(binary, ['-C', parent, ...rule])) return;
  if (!(await iptables(binary, ['-I', parent, '1', ...rule]))) {
    throw new JobNetworkError('JOB_NETWORK_FIREWALL', `could not add the ${chain} jump to ${parent}`, {
      match: match.join(' '),
      parent,
    });
  }
}

async function dropJumps(binary: string, parent: string, match: string[], chain: string): Promise<void> {
  const rule = [...match, '-j', chain];
  for (let i = 0; i < 16 && (await iptables(binary, ['-D', parent, ...rule])); i++);
}

/**
 * Installs (or re-installs, idempotently) the fence for one bridge: INPUT from it refused, FORWARD from it to the
 * blocked ranges refused. Run at every worker start: rules do not survive a reboot, and this is cheap.
 */
export async function applyJobNetworkRules(
  bridge: string,
  options: Pick<JobNetworkOptions, 'blockedDestinations' | 'dnsServers'> = {},
): Promise<{ ipv6Fenced: boolean }> {
  if (!BRIDGE_NAME.test(bridge)) throw new JobNetworkError('JOB_NETWORK_CONFLICT', `bad bridge name "${bridge}"`);
  const blocked = options.blockedDestinations ?? DEFAULT_BLOCKED_DESTINATIONS;
  // With systemd-resolved the host's file names only 127.0.0.53 and dockerd uses the upstream list instead.
  const dns =
    options.dnsServers ??
    (hostNameservers().length > 0 ? hostNameservers() : hostNameservers('/run/systemd/resolve/resolv.conf'));
  const { input, forward } = chainNames(bridge);
  // DOCKER-USER exists once dockerd has started with iptables on; without it Docker is not filtering at all.
  if (!(await iptables('iptables', ['-S', 'DOCKER-USER']))) {
    throw new JobNetworkError(
      'JOB_NETWORK_FIREWALL',
      'the DOCKER-USER chain is missing: is dockerd running with --iptables=true, and is this the same iptables backend (nft/legacy) it uses?',
      { bridge },
    );
  }
  try {
    await restore('iptables-restore', ruleSet(bridge, blocked, dns));
  } catch (err) {
    throw new JobNetworkError('JOB_NETWORK_FIREWALL', (err as Error).message, { bridge });
  }
  await ensureJump('iptables', 'INPUT', ['-i', bridge], input);
  await ensureJump('iptables', 'DOCKER-USER', ['-i', bridge], forward);
  // Docker turns IPv6 off inside containers of a network without IPv6, but the bridge still has a link-local
  // address: refuse IPv6 to the host too, where the kernel has IPv6 at all.
  let ipv6Fenced = false;
  if (await iptables('ip6tables', ['-S', 'INPUT'])) {
    const payload = [
      '*filter',
      `:${input} - [0:0]`,
      `-A ${input} -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN`,
      `-A ${input} -j REJECT`,
      'COMMIT',
      '',
    ].join('\n');
    try {
      await restore('ip6tables-restore', payload);
      await ensureJump('ip6tables', 'INPUT', ['-i', bridge], input);
      ipv6Fenced = true;
    } catch {
      ipv6Fenced = false;
    }
  }
  return { ipv6Fenced };
}

/** Takes the fence for one bridge away again (jumps first, so no packet meets a missing chain). */
export async function removeJobNetworkRules(bridge: string): Promise<void> {
  const { input, forward } = chainNames(bridge);
  await dropJumps('iptables', 'INPUT', ['-i', bridge], input);
  await dropJumps('iptables', 'DOCKER-USER', ['-i', bridge], forward);
  for (const chain of [input, forward]) {
    await iptables('iptables', ['-F', chain]);
    await iptables('iptables', ['-X', chain]);
  }
  await dropJumps('ip6tables', 'INPUT', ['-i', bridge], input);
  await iptables('ip6tables', ['-F', input]);
  await iptables('ip6tables', ['-X', input]);
}

/**
 * The cgroup every member on the host's network runs under (CgroupParent), named relative to the cgroup v2 root.
 * Its sockets are what the host-network fence matches: a container on the host's network has no interface of its
 * own for a rule to match on.
 */
export const hostNetworkCgroup = 'berth-hostnet';
const hostNetworkChain = 'BERTH-HOSTNET';

/** The cgroup v2 hierarchy: the whole tree on a cgroup v2 host, its `unified` part on a hybrid one; none on pure v1. */
export function cgroup2Root(base = '/sys/fs/cgroup'): string | undefined {
  if (existsSync(join(base, 'cgroup.controllers'))) return base;
  return existsSync(join(base, 'unified', 'cgroup.procs')) ? join(base, 'unified') : undefined;
}

/**
 * The host-network fence's rules: berth's own TCP ports (Redis, the API, the worker's metrics, a TCP Docker engine)
 * refused on every address, the host's included, and link-local (cloud metadata) refused. What members need, each
 * other's rendezvous and NCCL's connections on ephemeral ports, stays open.
 */
export function hostNetworkRuleSet(ports: readonly number[], v6 = false): string {
  const tag = `-m comment --comment berth-hostnet`;
  const lines = ['*filter', `:${hostNetworkChain} - [0:0]`];
  // multiport takes at most 15 ports a rule.
  for (let i = 0; i < ports.length; i += 15) {
    const some = ports.slice(i, i + 15).join(',');
    lines.push(`-A ${hostNetworkChain} -p tcp -m multiport --dports ${some} ${tag} -j REJECT --reject-with tcp-reset`);
  }
  lines.push(`-A ${hostNetworkChain} -d ${v6 ? 'fe80::/10' : '169.254.0.0/16'} ${tag} -j REJECT`, 'COMMIT', '');
  return lines.join('\n');
}

/**
 * Fences the members of multi-node jobs that run on the host's network, before any does: it makes their parent
 * cgroup and sends every socket in it through the rules above (OUTPUT, `-m cgroup --path`, which also matches the
 * containers' cgroups under it). Returns the CgroupParent those members must be given. Refused where the host has
 * no cgroup v2 hierarchy (the match needs one): such a worker runs no member on the host's network. Refused too
 * where the engine's cgroup driver is systemd (`docker info`'s CgroupDriver): a parent there must be a slice that
 * systemd makes and may remove while empty, and a rule matching a removed cgroup would no longer match its next
 * members, so berth does not fence one it cannot keep.
 */
export async function ensureHostNetworkFence(
  ports: readonly number[],
  root = cgroup2Root(),
  cgroupDriver = 'cgroupfs',
): Promise<{ cgroupParent: string }> {
  if (cgroupDriver !== 'cgroupfs') {
    throw new JobNetworkError(
      'JOB_NETWORK_FIREWALL',
      `the engine's cgroup driver is ${cgroupDriver}: members on the host network are fenced by a cgroup berth ` +
        'makes, which needs the cgroupfs driver (dockerd --exec-opt native.cgroupdriver=cgroupfs)',
    );
  }
  if (!root) {
    throw new JobNetworkError(
      'JOB_NETWORK_FIREWALL',
      'no cgroup v2 hierarchy (/sys/fs/cgroup or /sys/fs/cgroup/unified): members on the host network cannot be fenced',
    );
  }
  if (ports.length === 0 || ports.some((p) => !Number.isInteger(p) || p < 1 || p > 65_535)) {
    throw new JobNetworkError('JOB_NETWORK_FIREWALL', `bad ports for the host-network fence: ${ports.join(',')}`);
  }
  mkdirSync(join(root, hostNetworkCgroup), { recursive: true });
  const match = ['-m', 'cgroup', '--path', hostNetworkCgroup];
  try {
    await restore('iptables-restore', hostNetworkRuleSet(ports));
  } catch (err) {
    throw new JobNetworkError('JOB_NETWORK_FIREWALL', (err as Error).message);
  }
  await ensureJump('iptables', 'OUTPUT', match, hostNetworkChain);
  if (await iptables('ip6tables', ['-S', 'OUTPUT'])) {
    await restore('ip6tables-restore', hostNetworkRuleSet(ports, true));
    await ensureJump('ip6tables', 'OUTPUT', match, hostNetworkChain);
  }
  return { cgroupParent: `/${hostNetworkCgroup}` };
}

function mismatch(net: Docker.NetworkInspectInfo, bridge: string, icc: boolean, internal: boolean): string | undefined {
  const opts = net.Options ?? {};
  if (net.Driver !== 'bridge') return `driver is ${net.Driver}, not bridge`;
  if (net.Internal && !internal) return 'it is internal (no egress for jobs that declare it)';
  if (!net.Internal && internal) return 'it is not internal (its members would have a way out)';
  if (opts['com.docker.network.bridge.name'] !== bridge)
    return `its bridge is ${opts['com.docker.network.bridge.name'] ?? 'a generated br-… name'}, not ${bridge} (the rules match on it)`;
  const actualIcc = (opts['com.docker.network.bridge.enable_icc'] ?? 'true') === 'true';
  if (actualIcc !== icc) return `enable_icc is ${String(actualIcc)}, not ${String(icc)}`;
  if (net.Labels?.[LABEL] !== 'jobs') return `it lacks the label ${LABEL}=jobs (not created by berth)`;
  return undefined;
}

async function inspectByName(docker: Docker, name: string): Promise<Docker.NetworkInspectInfo[]> {
  // The name filter matches substrings: keep exact names only.
  const found = await docker.listNetworks({ filters: { name: [name] } });
  return found.filter((n) => n.Name === name);
}

/**
 * Makes sure the jobs network exists with berth's settings and is fenced. Safe to race: a second creator's 409 is
 * taken as "it exists", and what exists is checked. A network of that name with other settings is refused, never
 * reused or replaced, because containers may be on it.
 */
export async function ensureJobNetwork(docker: Docker, options: JobNetworkOptions): Promise<JobNetwork> {
  const bridge = bridgeOf(options);
  const icc = options.icc ?? false;
  let created = false;
  let matches = await inspectByName(docker, options.name);
  if (matches.length === 0) {
    try {
      await docker.createNetwork({
        Name: options.name,
        Driver: 'bridge',
        CheckDuplicate: true,
        Internal: options.internal ?? false,
        Attachable: false,
        EnableIPv6: false,
        Labels: { ...options.labels, [LABEL]: 'jobs' },
        Options: {
          'com.docker.network.bridge.name': bridge,
          'com.docker.network.bridge.enable_icc': String(icc),
          // Egress jobs leave through the host's address, as on the default bridge.
          'com.docker.network.bridge.enable_ip_masquerade': 'true',
        },
      });
      created = true;
    } catch (err) {
      // A racing worker's network makes ours fail with 409 (same name) or, more often, 403 (same bridge name, which
      // the engine checks first); either way, what exists is checked below.
      const status = statusOf(err);
      if ((status !== 409 && status !== 403) || (await inspectByName(docker, options.name)).length === 0) {
        throw new JobNetworkError('JOB_NETWORK_CONFLICT', `could not create network ${options.name}: ${String(err)}`, {
          network: options.name,
          statusCode: statusOf(err),
        });
      }
    }
    matches = await inspectByName(docker, options.name);
  }
  if (matches.length !== 1) {
    throw new JobNetworkError(
      'JOB_NETWORK_CONFLICT',
      `${matches.length} Docker networks are named ${options.name}; remove the extra ones (docker network ls)`,
      { network: options.name, ids: matches.map((n) => n.Id) },
    );
  }
  const net = matches[0]!;
  const why = mismatch(net, bridge, icc, options.internal ?? false);
  if (why !== undefined) {
    throw new JobNetworkError(
      'JOB_NETWORK_CONFLICT',
      `Docker network ${options.name} exists with other settings: ${why}; remove it or set BERTH_JOB_NETWORK to another name`,
      { network: options.name, id: net.Id },
    );
  }
  // Rules before the first job: the network is useless to jobs until the worker hands out its name.
  const { ipv6Fenced } = await applyJobNetworkRules(bridge, options);
  return {
    name: options.name,
    id: net.Id,
    bridge,
    gateway: net.IPAM?.Config?.[0]?.Gateway,
    created,
    ipv6Fenced,
  };
}

/** Removes the network and its rules (tests, and an operator turning berth off a host). */
export async function removeJobNetwork(
  docker: Docker,
  options: Pick<JobNetworkOptions, 'name' | 'bridge'>,
): Promise<void> {
  const bridge = bridgeOf(options);
  for (const net of await inspectByName(docker, options.name)) {
    await docker
      .getNetwork(net.Id)
      .remove()
      .catch((err: unknown) => {
        if (statusOf(err) !== 404) throw err;
      });
  }
  await removeJobNetworkRules(bridge);
}
