// exitOnSignals in a real child process (it calls process.exit): a signal closes and exits 0, a second signal does
// not close twice, and a close that outlasts the grace exits 1.
import { spawn } from 'node:child_process';
import { join } from 'node:path';

const built = join(__dirname, '..', 'dist', 'shutdown.js');

/** Runs a child that installs exitOnSignals with a close that logs and takes `closeMs`; signals it when ready. */
function run(closeMs: number, signals: NodeJS.Signals[]): Promise<{ code: number | null; out: string }> {
  const script =
    `const { exitOnSignals } = await import(${JSON.stringify(built)});` +
    `exitOnSignals(() => { process.stdout.write('close\\n'); return new Promise((r) => setTimeout(r, ${closeMs})); }, 300);` +
    `process.stdout.write('ready\\n'); setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    if (out === 'ready\n') for (const s of signals) child.kill(s);
  });
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, out })));
}

describe('exitOnSignals', () => {
  it('closes once and exits 0 on SIGTERM, whatever follows', async () => {
    expect(await run(50, ['SIGTERM', 'SIGINT', 'SIGTERM'])).toEqual({ code: 0, out: 'ready\nclose\n' });
  });

  it('exits 0 on SIGINT too', async () => {
    expect(await run(0, ['SIGINT'])).toEqual({ code: 0, out: 'ready\nclose\n' });
  });

  it('exits 1 when the close outlasts the grace', async () => {
    expect(await run(5_000, ['SIGTERM'])).toEqual({ code: 1, out: 'ready\nclose\n' });
  });
});
