// The README's quick start, run as it is written: pretrain on the demo corpus, fine-tune from it for QA, pull the
// model. Only the login differs (the test's own API and a member's token instead of var/admin-token), and `npx
// berth` is this checkout's CLI. The block runs in a scratch folder that sees the repository's payloads/.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startTestStack, type TestStack } from './support/stack.js';

const root = resolve(__dirname, '..');
const cli = join(root, 'apps/cli/bin/berth.js');

let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack('readme');
});
afterAll(async () => stack?.close());

/** The first ```sh block after the heading that starts with `heading`. */
function block(markdown: string, heading: string): string {
  const at = markdown.indexOf(`\n## ${heading}`);
  const open = markdown.indexOf('```sh\n', at);
  return markdown.slice(open + '```sh\n'.length, markdown.indexOf('\n```', open));
}

test('the quick start pretrains, fine-tunes from it with --init-from, and pulls the model', async () => {
  const quickStart = block(readFileSync(join(root, 'README.md'), 'utf8'), 'Quick start');
  const lines = quickStart.split('\n');
  expect(lines[0]).toMatch(/^npx berth login /);
  const script = [
    'set -euo pipefail',
    `npx() { [ "$1" = berth ] && shift; node ${JSON.stringify(cli)} "$@"; }`,
    ...lines.slice(1),
    // What the last steps left behind, for the checks below.
    'echo "jobs $pre $ft"',
  ].join('\n');
  const work = mkdtempSync(join(tmpdir(), 'berth-readme-'));
  symlinkSync(join(root, 'payloads'), join(work, 'payloads'));
  const run = spawn('bash', ['-c', script], {
    cwd: work,
    env: { PATH: process.env.PATH, HOME: work, BERTH_URL: stack.url, BERTH_TOKEN: stack.alice.token },
  });
  let stdout = '';
  let stderr = '';
  run.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  run.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise((done) => run.on('close', done));
  expect({ code, stderr: code === 0 ? '' : stderr }).toEqual({ code: 0, stderr: '' });

  const [, pre, ft] = /jobs (job_\w+) (job_\w+)/.exec(stdout)!;
  // Both logs read as a training tool prints them: steps out of their total, then the results.
  expect(stdout).toMatch(/^step 60\/60 {2}loss \S+/m);
  expect(stdout).toMatch(/^step 30\/30 {2}loss \S+/m);
  expect(stdout).toMatch(/^ {2}F1 +\d+(\.\d+)?%$/m);
  expect(stdout).not.toContain('DLLL {');
  expect(stderr).toContain(`${pre} succeeded\n`);
  expect(stderr).toContain(`${ft} succeeded\n`);
  expect(stderr).toContain('model.tar is a tar of the folder model/');
  const files = execFileSync('tar', ['-tf', join(work, 'model.tar')], { encoding: 'utf8' }).split('\n');
  expect(files).toEqual(expect.arrayContaining(['model/config.json', 'model/model.safetensors']));
}, 600_000);
