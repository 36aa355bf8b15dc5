// What every log benchmark ends with: its figures as JSON in bench/.bench-out/<name>.json (read by run.mjs),
// and one last line with the measured figure, its ratio to the baseline and PASS/FAIL; a missed target exits 1.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import process from 'node:process';
import { outDir } from './berth.mjs';

export const fixtureImage = 'berth/fixture:dev';

export function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export const fmt = (n, digits = 0) =>
  Number.isFinite(n)
    ? n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
    : String(n);

/**
 * result: { name, figure (text), ratio (number), ratioOf (text: what the ratio compares), target (text),
 * pass (boolean), rows: [{ what, berth, baseline, ratio }], notes: [text] }
 */
export function finish(result, loadBefore = loadavg()) {
  const seconds = (globalThis.performance.now() / 1000).toFixed(1);
  // Other work on the machine skews every figure here: the load averages say how busy it was.
  const load = { before: loadBefore, after: loadavg() };
  const full = { ...result, seconds: Number(seconds), at: new Date().toISOString(), load };
  for (const note of result.notes ?? []) console.log(`${result.name}: ${note}`);
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, `${result.name}.json`), `${JSON.stringify(full, null, 1)}\n`);
  console.log(
    `${result.name}: ${result.figure}; ratio ${fmt(result.ratio, 2)} (${result.ratioOf}; target ${result.target}) ` +
      `${result.pass ? 'PASS' : 'FAIL'} in ${seconds} s`,
  );
  process.exitCode = result.pass ? 0 : 1;
}

/**
 * Runs `main(cleanups)`, which returns the result for finish(); the cleanups it registered run before the last
 * line is printed, also on an error (exit 2) or a signal.
 */
export async function runBench(name, main) {
  const loadBefore = loadavg();
  const cleanups = [];
  const cleanup = async () => {
    for (const fn of cleanups.reverse()) await fn().catch(() => {});
    cleanups.length = 0;
  };
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.once(signal, () => {
      void cleanup().then(() => {
        console.log(`${name}: interrupted by ${signal}; no figure`);
        process.exit(2);
      });
    });
  }
  let result;
  try {
    result = await main(cleanups);
  } catch (err) {
    await cleanup();
    console.log(err instanceof Error ? err.stack : err);
    console.log(`${name}: ERROR ${err instanceof Error ? err.message : String(err)}; no figure`);
    process.exitCode = 2;
    return;
  }
  await cleanup();
  finish(result, loadBefore);
}

/** CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat; NaN once it is gone. */
export function cpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return NaN;
  }
}

/** Resident set size in bytes, from /proc/<pid>/status VmRSS; NaN once it is gone. */
export function rssBytes(pid) {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** The pid of the Docker daemon if it runs on this machine (for CPU accounting), else undefined. */
export function dockerdPid() {
  try {
    return Number(execFileSync('pidof', ['dockerd'], { encoding: 'utf8' }).trim().split(' ')[0]) || undefined;
  } catch {
    return undefined;
  }
}

/** Wall-clock milliseconds since the epoch with sub-millisecond resolution (the clock containers share). */
export const epochMs = () => globalThis.performance.timeOrigin + globalThis.performance.now();

/** Fails when epochMs() has drifted from the wall clock (it is compared with times containers print). */
export function checkClock() {
  const drift = Math.abs(epochMs() - Date.now());
  if (drift > 2) throw new Error(`the high-resolution clock is ${drift} ms off the wall clock`);
}
