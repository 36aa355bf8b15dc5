import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DEFAULT_BLOCKED_DESTINATIONS,
  ensureHostNetworkFence,
  hostNameservers,
  JobNetworkError,
  ruleSet,
} from './job-network.js';

test('hostNameservers keeps IPv4 resolvers that are not loopback', () => {
  const file = join(mkdtempSync(join(tmpdir(), 'berth-resolv-')), 'resolv.conf');
  writeFileSync(file, '# x\nnameserver 10.0.0.2\nnameserver 127.0.0.53\nnameserver fe80::1\n  nameserver 1.1.1.1\n');
  expect(hostNameservers(file)).toEqual(['10.0.0.2', '1.1.1.1']);
  expect(hostNameservers(join(file, 'missing'))).toEqual([]);
});

test('ruleSet lets DNS and same-bridge traffic through before the blocks, and ends in RETURN', () => {
  const lines = ruleSet('bj1', DEFAULT_BLOCKED_DESTINATIONS, ['10.0.0.2']).split('\n');
  const forward = lines.filter((l) => l.startsWith('-A BERTH-F-bj1'));
  expect(forward[0]).toContain('-o bj1');
  expect(forward[1]).toContain('-d 10.0.0.2/32 -p udp --dport 53');
  expect(forward.findIndex((l) => l.includes('-d 10.0.0.0/8'))).toBeGreaterThan(2);
  expect(forward.at(-1)).toMatch(/-j RETURN$/);
  const input = lines.filter((l) => l.startsWith('-A BERTH-I-bj1'));
  expect(input.at(-1)).toContain('-j REJECT');
  expect(lines).toContain(':BERTH-I-bj1 - [0:0]');
  expect(lines.at(-2)).toBe('COMMIT');
});

test('the host-network fence is refused, before it touches the host, where the engine uses the systemd cgroup driver', async () => {
  const root = mkdtempSync(join(tmpdir(), 'berth-cgroup-'));
  const made = ensureHostNetworkFence([6379], root, 'systemd');
  await expect(made).rejects.toBeInstanceOf(JobNetworkError);
  await expect(made).rejects.toThrow(/cgroup driver is systemd.*native\.cgroupdriver=cgroupfs/);
  // Nothing was made: no cgroup under the root (the rules come after it).
  expect(existsSync(join(root, 'berth-hostnet'))).toBe(false);
});
