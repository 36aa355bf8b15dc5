// The chaos suite's short form, as part of the test suite: one run of every scenario (worker, Redis and API killed
// or restarted, Redis full, Redis and engine connections cut, the engine restarted) against berth's built processes.
// Every row must be at target: every job succeeds in one attempt with one container, no log line lost or stored
// twice, no GPU left held.
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';

const root = resolve(__dirname, '..');

test(
  'every chaos scenario is survived: one attempt and one container a job, no line lost or twice, no GPU held',
  () => {
    const run = spawnSync(process.execPath, [join(root, 'bench/chaos/chaos.mjs'), '--short'], {
      cwd: root,
      encoding: 'utf8',
      timeout: 20 * 60_000,
    });
    const rows = run.stdout.split('\n').filter((l) => /^(PASS|FAIL) /.test(l));
    expect({
      code: run.status,
      failed: rows.filter((l) => l.startsWith('FAIL')),
      stderr: run.stderr.slice(-2000),
    }).toEqual({ code: 0, failed: [], stderr: '' });
    expect(rows).toHaveLength(8);
  },
  20 * 60_000,
);
