// `npm run bench`: runs every benchmark under bench/ one after another (each bench/*.mjs, and gpu-bert.sh where
// a GPU answers nvidia-smi), prints a table of their figures and ratios, and writes them into bench/RESULTS.md
// between the generated-section markers (the hand-written sections around them are left as they are).
// Exits 1 if any benchmark missed its target or failed.
//   node bench/run.mjs [name…]   only the named benchmarks (e.g. log-latency)
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import process from 'node:process';
import { clearTimeout, setTimeout } from 'node:timers';
import { outDir, repo } from './lib/berth.mjs';
import { fmt } from './lib/report.mjs';

const benchDir = join(repo, 'bench');
const resultsFile = join(benchDir, 'RESULTS.md');
const begin = '<!-- bench/run.mjs: generated from here to the end marker; edit bench/run.mjs, not this text -->';
const end = '<!-- bench/run.mjs: end -->';
/**
 * Seconds a benchmark may run before it is stopped: the GPU one compiles BERT-Large and runs its reference; the
 * trainer runs the whole CPU demo (about 5 minutes on 2 idle cores, 9 under load); every other one bounds itself
 * to about 2 minutes.
 */
const limitS = { script: 300, gpu: 1200, trainer: 1200 };

/** The benchmarks in the order of the table (issue 10's list, with issue 23's gang); any other bench/*.mjs runs after them. */
const order = [
  'submit',
  'dispatch',
  'log-throughput',
  'log-latency',
  'log-memory',
  'download',
  'upload',
  'list-scale',
  'sse-scale',
  'packing',
  'gang',
  'trainer',
];
const rank = (n) => (order.includes(n) ? order.indexOf(n) : order.length);

const only = process.argv.slice(2);
const scriptBenches = readdirSync(benchDir)
  .filter((f) => f.endsWith('.mjs') && f !== 'run.mjs')
  .map((f) => f.slice(0, -'.mjs'.length))
  .filter((n) => only.length === 0 || only.includes(n))
  .sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));

function sh(cmd, args, { raw = false } = {}) {
  try {
    const out = execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    return raw ? out : out.trim();
  } catch {
    return undefined;
  }
}

function machine() {
  const lscpu = sh('lscpu') ?? '';
  const field = (k) => new RegExp(`^${k}:\\s*(.+)$`, 'm').exec(lscpu)?.[1]?.trim();
  const dirty = (sh('git', ['-C', repo, 'status', '--porcelain'], { raw: true }) ?? '')
    .split('\n')
    .filter((l) => l && !l.slice(3).startsWith('bench/')).length;
  return {
    cpu: field('Model name') ?? cpus()[0]?.model ?? 'unknown CPU',
    cores: field('CPU\\(s\\)') ?? String(cpus().length),
    memGiB: totalmem() / 2 ** 30,
    node: process.version,
    docker: sh('docker', ['version', '--format', '{{.Server.Version}}']) ?? 'unknown',
    redis: /v=(\S+)/.exec(sh('redis-server', ['--version']) ?? '')?.[1] ?? 'unknown',
    commit: sh('git', ['-C', repo, 'rev-parse', '--short', 'HEAD']) ?? 'unknown',
    dirty,
    date: new Date()
      .toISOString()
      .replace(/:\d\d\.\d+Z$/, ' UTC')
      .replace('T', ' '),
  };
}

/**
 * Runs one benchmark with its output on this terminal; resolves with its exit code (null: killed) and the last
 * line it printed (every benchmark here ends with its figure on the last line).
 */
function runChild(cmd, args, { env = process.env, limit = limitS.script } = {}) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: repo, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let last = '';
    let partial = '';
    child.stdout.on('data', (d) => {
      process.stdout.write(d);
      const lines = (partial + d).split('\n');
      partial = lines.pop();
      last = lines.filter((l) => l.trim()).at(-1) ?? last;
    });
    child.stderr.on('data', (d) => process.stderr.write(d));
    // Past the limit: SIGTERM lets the bench clean up its containers and processes; SIGKILL 20 s later.
    const term = setTimeout(() => child.kill('SIGTERM'), limit * 1000);
    const kill = setTimeout(() => child.kill('SIGKILL'), (limit + 20) * 1000);
    const started = Date.now();
    child.on('close', (code) => {
      clearTimeout(term);
      clearTimeout(kill);
      resolve({ code, seconds: (Date.now() - started) / 1000, last: (partial.trim() || last).trim() });
    });
  });
}

async function runScriptBench(name) {
  const json = join(outDir, `${name}.json`);
  rmSync(json, { force: true });
  console.log(`\n=== ${name}`);
  const { code, seconds, last } = await runChild(process.execPath, [join(benchDir, `${name}.mjs`)], {
    limit: limitS[name] ?? limitS.script,
  });
  if (existsSync(json)) return { ...JSON.parse(readFileSync(json, 'utf8')), seconds };
  // A benchmark that does not write bench/.bench-out/<name>.json: its last line and exit code (0 met, 1 missed).
  if (code === 0 || code === 1) return { name, seconds, figure: last, pass: code === 0, rows: [], notes: [] };
  return { name, seconds, error: `exited ${code ?? 'killed'}: ${last}`, rows: [] };
}

async function runGpuBench() {
  const gpu = sh('nvidia-smi', ['-L']);
  if (!gpu) {
    console.log(
      '\n=== gpu-bert: skipped — no GPU here (nvidia-smi -L does not answer); see the GPU section of RESULTS.md',
    );
    return { name: 'gpu-bert', skipped: 'no GPU (nvidia-smi -L does not answer)', rows: [] };
  }
  console.log(`\n=== gpu-bert on ${gpu.split('\n')[0]}`);
  const out = join(outDir, 'gpu');
  rmSync(join(out, 'summary.json'), { force: true });
  const { code, seconds } = await runChild(join(benchDir, 'gpu-bert.sh'), [], {
    env: { ...process.env, OUT: out },
    limit: limitS.gpu,
  });
  const summary = join(out, 'summary.json');
  if (!existsSync(summary))
    return { name: 'gpu-bert', seconds, error: `exited ${code} without summary.json`, rows: [] };
  const s = JSON.parse(readFileSync(summary, 'utf8'));
  const rows = s.rows.map((r) => ({ what: `${r.what} (seq/s)`, berth: r.ours, baseline: r.reference, ratio: r.ratio }));
  return {
    name: 'gpu-bert',
    seconds,
    figure: `${rows.length} workloads on ${s.device} vs the Hugging Face reference`,
    target: 'none (reported)',
    // gpu-bert.sh goes on past a failed part (so one failure loses no other figure): judge by what it measured.
    pass: code === 0 && rows.length > 0 && rows.every((r) => Number.isFinite(r.berth)),
    ratioOf: 'ours / reference',
    rows,
    notes: rows.length > 0 ? [] : [`no figures: see ${out}`],
  };
}

function verdict(r) {
  if (r.skipped) return `skipped: ${r.skipped}`;
  if (r.error) return `ERROR: ${r.error}`;
  return r.pass ? 'PASS' : 'FAIL';
}

const cell = (n, digits) => (n === undefined || n === null ? '—' : fmt(n, digits));
/** Text for a Markdown table cell: a `|` in it (`cat | cat`) would end the cell. */
const md = (text) => String(text).replaceAll('|', '\\|');
const digitsFor = (n) => (Math.abs(n) >= 100 ? 0 : 1);

function tables(results) {
  const summary = [
    '| benchmark | figure | ratio | target | result | time |',
    '| --- | --- | ---: | --- | --- | ---: |',
    ...results.map(
      (r) =>
        `| ${r.name} | ${md(r.figure ?? '—')} | ${r.ratio === undefined ? '—' : `**${fmt(r.ratio, 2)}** (${md(r.ratioOf)})`} | ` +
        `${md(r.target ?? '—')} | ${verdict(r)} | ${r.seconds === undefined ? '—' : `${fmt(r.seconds)} s`} |`,
    ),
  ];
  const rows = results.flatMap((r) => r.rows ?? []);
  const detail =
    rows.length === 0
      ? []
      : [
          '| measure | berth | baseline | ratio |',
          '| --- | ---: | ---: | ---: |',
          ...rows.map(
            (x) =>
              `| ${md(x.what)} | ${cell(x.berth, digitsFor(x.berth ?? 0))} | ${cell(x.baseline, digitsFor(x.baseline ?? 0))} | ` +
              `${x.ratio === undefined ? '—' : `${fmt(x.ratio, 2)}${x.ratioNote ? ` (${x.ratioNote})` : ''}`} |`,
          ),
        ];
  return { summary, detail };
}

function section(m, results, loads) {
  const { summary, detail } = tables(results);
  const notes = results.flatMap((r) => (r.notes ?? []).map((n) => `- ${r.name}: ${n}`));
  return [
    begin,
    '',
    `## \`npm run bench\` (${m.date})`,
    '',
    `Machine: ${m.cpu}, ${m.cores} CPUs, ${fmt(m.memGiB, 0)} GiB; Node ${m.node}, Docker ${m.docker}, ` +
      `redis-server ${m.redis}. Commit \`${m.commit}\`` +
      `${m.dirty ? ` with ${m.dirty} uncommitted file${m.dirty > 1 ? 's' : ''} outside bench/ in the working tree` : ''}. ` +
      `Load average (1 min) ${fmt(loads.before, 2)} before, ${fmt(loads.after, 2)} after: every process shares these ` +
      'cores with the container, dockerd and the client, so other load on the machine lowers the berth figures most.',
    '',
    ...summary,
    ...(detail.length ? ['', ...detail] : []),
    ...(notes.length ? ['', 'What failed besides the targets:', '', ...notes] : []),
    '',
    'Each benchmark starts its own redis-server and berth processes (the built API, and a worker where jobs must ' +
      'run; as its bootstrap admin where the API asks for a token, with a worker-role token for the worker), ' +
      'talks to them over loopback only, removes its containers, and leaves its raw figures in ' +
      '`bench/.bench-out/<name>.json`. Medians are over the rounds a benchmark runs, alternating berth and its ' +
      'baseline where it has one (submit, dispatch, log throughput, downloads); submit and list-scale load the API ' +
      'with autocannon and no worker, so no job launches; the trainer’s GPU rows are copied from the GPU section ' +
      'at the top, not measured here.',
    '',
    end,
  ].join('\n');
}

function writeResults(text) {
  const old = existsSync(resultsFile) ? readFileSync(resultsFile, 'utf8') : '';
  const from = old.indexOf(begin);
  const to = old.indexOf(end);
  const next =
    from !== -1 && to > from
      ? `${old.slice(0, from)}${text}${old.slice(to + end.length)}`
      : `${old.trimEnd()}\n\n${text}\n`;
  writeFileSync(resultsFile, next);
}

const unknown = only.filter((n) => n !== 'gpu-bert' && !scriptBenches.includes(n));
if (unknown.length > 0) {
  console.error(`bench: no benchmark named ${unknown.join(', ')} in bench/`);
  process.exit(2);
}
const m = machine();
const loadBefore = loadavg()[0];
console.log(
  `bench: ${m.cpu}, ${m.cores} CPUs; commit ${m.commit}; load ${fmt(loadBefore, 2)}; ${scriptBenches.join(', ')}`,
);
const results = [];
for (const name of scriptBenches) results.push(await runScriptBench(name));
if (only.length === 0 || only.includes('gpu-bert')) results.push(await runGpuBench());
const loads = { before: loadBefore, after: loadavg()[0] };

const { summary, detail } = tables(results);
console.log(
  `\n${[summary, detail]
    .filter((t) => t.length)
    .map((t) => t.join('\n'))
    .join('\n\n')}`,
);
writeResults(section(m, results, loads));
console.log(`\nbench: figures written to ${resultsFile}`);
const failed = results.filter((r) => !r.skipped && (r.error || !r.pass)).map((r) => r.name);
console.log(failed.length ? `bench: ${failed.join(', ')} missed the target or failed` : 'bench: every target met');
process.exitCode = failed.length ? 1 : 0;
