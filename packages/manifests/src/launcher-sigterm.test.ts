// The shell in front of a distributed launcher, run for real: sent SIGTERM, it passes the signal on, waits for the
// launcher to finish (its training processes checkpoint meanwhile), and exits 75 where torchrun itself exits 1; a
// launcher that ends on its own gives its own exit code.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { contextFor, recipesDir } from './testing/fixtures.js';
import { loadManifests } from './load.js';
import { renderLaunch } from './render.js';
import { validateParams } from './params.js';

const m = loadManifests(recipesDir).get('bert-finetune-squad')!;
const checked = validateParams(m, {});
if (!checked.ok) throw new Error('the recipe has required parameters');
/** The shell part of a 2-GPU launch (`sh -c <script> berth-launch`), before the launcher's own argv. */
const shell = renderLaunch(m, checked.params, contextFor(m, 2)).command.slice(0, 4);

/**
 * Runs the shell with a stand-in launcher that behaves as torchrun does on SIGTERM: it notes the signal, takes a
 * moment (its workers checkpoint), and exits 1. Ends with the shell's exit code and what the launcher noted.
 */
function run(launcher: string, signalAfterMs?: number): Promise<{ code: number | null; noted: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'berth-launch-'));
  const child = spawn(shell[0]!, [...shell.slice(1), 'sh', '-c', launcher], { cwd: dir });
  if (signalAfterMs !== undefined) setTimeout(() => child.kill('SIGTERM'), signalAfterMs);
  return new Promise((done) =>
    child.on('exit', (code) => {
      let noted = '';
      try {
        noted = readFileSync(join(dir, 'noted'), 'utf8');
      } catch {
        // The launcher noted nothing.
      }
      done({ code, noted });
    }),
  );
}

const torchrunLike = 'trap "sleep 0.3; echo got TERM > noted; exit 1" TERM; sleep 30 & wait $!';

test('the launch of a multi-GPU recipe starts with the shell', () => {
  expect(shell.slice(0, 2)).toEqual(['sh', '-c']);
  expect(shell[3]).toBe('berth-launch');
});

test('SIGTERM reaches the launcher, the shell waits for it to finish, and exits 75', async () => {
  expect(await run(torchrunLike, 300)).toEqual({ code: 75, noted: 'got TERM\n' });
});

test('a launcher that ends on its own gives its exit code, success or not', async () => {
  expect((await run('exit 0')).code).toBe(0);
  expect((await run('echo done > noted; exit 3')).code).toBe(3);
});
