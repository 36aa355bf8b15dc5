// A `berth` command starts without loading the API's schemas (zod) or the YAML parser: both are most of a command's
// start-up, and the CLI runs once a call in scripts and in this suite. yaml is loaded when a spec file is read.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(__dirname, '..');
const cli = join(root, 'apps/cli/bin/berth.js');
const trace = join(root, 'test/fixtures/module-trace/register.mjs');

/** How a CLI run exited, what it said on stderr, and the packages under node_modules it resolved. */
function run(args: string[]): { status: number | null; stderr: string; packages: Set<string> } {
  const ran = spawnSync(process.execPath, ['--import', trace, cli, ...args], {
    encoding: 'utf8',
    // A port nothing listens on: neither command gets as far as the network.
    env: {
      PATH: process.env.PATH,
      HOME: mkdtempSync(join(tmpdir(), 'berth-startup-')),
      BERTH_URL: 'http://127.0.0.1:9',
    },
  });
  const packages = new Set(
    [...ran.stderr.matchAll(/^module file:\/\/.*?\/node_modules\/((?:@[^/]+\/)?[^/]+)\//gm)].map((m) => m[1]!),
  );
  return { status: ran.status, stderr: ran.stderr.replace(/^module .*\n/gm, ''), packages };
}

test('berth --help loads commander and none of zod or yaml', () => {
  const { status, packages } = run(['--help']);
  expect(status).toBe(0);
  expect(packages).toContain('commander');
  expect(packages).not.toContain('zod');
  expect(packages).not.toContain('yaml');
});

test('a spec file loads yaml when it is read, and is refused with its code when it does not parse', () => {
  const spec = join(mkdtempSync(join(tmpdir(), 'berth-startup-')), 'bad.yaml');
  writeFileSync(spec, 'manifest: [unclosed\n');
  const { status, stderr, packages } = run(['submit', '-f', spec]);
  expect([status, stderr]).toEqual([1, expect.stringMatching(/^berth: SPEC_FILE_INVALID: /)]);
  expect(packages).toContain('yaml');
});
