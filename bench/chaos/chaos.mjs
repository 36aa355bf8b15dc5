// `npm run chaos`: berth started as an operator starts it — redis-server, the built API and one worker as separate
// processes on the local Docker engine — runs real jobs (numbered log lines, one stand-in GPU each) and injects each
// fault several times at a random moment while they run. Per scenario it reports runs, jobs completed, attempts
// used, containers created per attempt, log lines lost and duplicated, GPUs left reserved and the time until every
// job's log moved again; every row's target is 0 lost, 0 duplicated, 1 container and 1 attempt per job, 0 GPUs.
// The table goes to stdout and into bench/RESULTS.md between the chaos markers. Exits 1 when a row misses.
//   node bench/chaos/chaos.mjs [--short] [--runs N] [scenario…]
// --short (the test suite's form): one run of each scenario, shorter jobs, no RESULTS.md.
import { execFileSync, spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import process from 'node:process';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort, outDir, redisCli, redisPing, repo, writeAdminToken } from '../lib/berth.mjs';
import { removeLabelled } from '../lib/engine.mjs';
import { fmt } from '../lib/report.mjs';
import { startDockerd } from '../../scripts/lib/dockerd.mjs';

const args = process.argv.slice(2);
const short = args.includes('--short');
const runsArg = args.indexOf('--runs');
const runs = runsArg === -1 ? (short ? 1 : 3) : Number(args[runsArg + 1]);
const only = args.filter((a, i) => !a.startsWith('--') && args[i - 1] !== '--runs');
/** Jobs per run, and the lines each prints (one every 20 ms). */
const jobsPerRun = 3;
const lines = short ? 150 : 300;
const gpus = ['GPU-c0000000-0000-0000-0000-000000000001', 'GPU-c0000000-0000-0000-0000-000000000002'];

/** A TCP (or unix socket) proxy whose connections can all be cut at once, as a network or an engine drop does. */
async function cuttableProxy(listenOn, target) {
  const open = new Set();
  const server = createServer((client) => {
    const upstream = connect(target);
    // A side that ends is ended on the other after what it sent is passed on (pipe does that); a side that fails
    // takes the other down with it, so a client is never left talking to a proxy whose upstream is gone. Destroying
    // on every close instead dropped the last bytes of answers the engine closes after sending.
    for (const [s, other] of [
      [client, upstream],
      [upstream, client],
    ]) {
      open.add(s);
      s.on('error', () => other.destroy());
      s.on('close', () => open.delete(s));
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise((r) => server.listen(listenOn, r));
  return {
    cut: () => {
      const n = open.size;
      for (const s of open) s.destroy();
      return n;
    },
    // server.close() waits for every connection to end, and an engine may hold its side of one open after the
    // client went (a half-closed follow): what is left is cut first, or the suite waits for ever.
    close: () => {
      const closed = new Promise((r) => server.close(r));
      for (const s of open) s.destroy();
      return closed;
    },
  };
}

/**
 * A Docker engine of the suite's own (its socket, data root and bridge; never the machine's main engine) with
 * live-restore on and the stand-in GPU hook on its PATH, the fixture image loaded: one the suite may restart.
 */
async function startOwnEngine(scratch) {
  return startDockerd({
    dir: join(scratch, 'engine'),
    bridge: `berthc${process.pid % 100000}`,
    bridgeCidr: '10.215.0.1/24',
    namespace: `berth-chaos-${process.pid}`,
    daemonConfig: { 'live-restore': true },
    path: `${join(repo, 'test/support/gpu-hook')}:${process.env.PATH}`,
    log: true,
    images: ['berth/fixture:dev'],
  });
}

/** berth as separate processes that the suite can kill and start again, each with the settings it first had. */
async function startOperator(name, { ownEngine = false } = {}) {
  const { redisArgs } = await import(join(repo, 'apps/stack/dist/redis-args.js'));
  const { keys } = await import(join(repo, 'packages/store/dist/keys.js'));
  const prefix = `chaos-${name}-${Date.now().toString(36)}`;
  const logs = join(outDir, 'chaos', name);
  mkdirSync(logs, { recursive: true });
  const scratch = mkdtempSync(join(tmpdir(), `berth-chaos-${name}-`));
  const redisDir = join(scratch, 'redis');
  const dataDir = join(scratch, 'data');
  mkdirSync(redisDir);
  mkdirSync(dataDir);
  const admin = writeAdminToken(scratch);
  const [redisPort, redisProxyPort, apiPort] = [await freePort(), await freePort(), await freePort()];
  // Worker and API reach Redis through a proxy, and the worker reaches the engine through one: cut on demand.
  const redisProxy = await cuttableProxy(
    { port: redisProxyPort, host: '127.0.0.1' },
    { port: redisPort, host: '127.0.0.1' },
  );
  const dockerSock = join(scratch, 'docker.sock');
  const engine = ownEngine ? await startOwnEngine(scratch) : undefined;
  const engineProxy = await cuttableProxy(dockerSock, engine?.socket ?? '/var/run/docker.sock');
  const url = `http://127.0.0.1:${apiPort}`;
  const redisUrl = `redis://127.0.0.1:${redisPort}`;
  const common = {
    ...process.env,
    REDIS_URL: `redis://127.0.0.1:${redisProxyPort}`,
    BERTH_PREFIX: prefix,
    BERTH_DATA_DIR: dataDir,
    BERTH_MANIFESTS_DIR: join(repo, 'ngc-manifests'),
    LOG_LEVEL: process.env.CHAOS_LOG_LEVEL ?? 'warn',
  };
  const specs = {
    redis: { cmd: 'redis-server', args: redisArgs(redisPort, redisDir), env: process.env },
    api: {
      cmd: process.execPath,
      args: [join(repo, 'apps/api/dist/main.js')],
      env: { ...common, PORT: String(apiPort), HOST: '127.0.0.1', BERTH_BOOTSTRAP_TOKEN_FILE: admin.file },
    },
  };
  const procs = {};
  const spawnOne = (label) => {
    const out = createWriteStream(join(logs, `${label}.log`), { flags: 'a' });
    const { cmd, args: argv, env } = specs[label];
    const proc = spawn(cmd, argv, { cwd: repo, env, stdio: ['ignore', 'pipe', 'pipe'] });
    proc.stdout.pipe(out);
    proc.stderr.pipe(out);
    procs[label] = proc;
  };
  const until = async (check, what, ms = 30_000) => {
    for (const deadline = Date.now() + ms; Date.now() < deadline; await sleep(100)) {
      if (await check().catch(() => false)) return;
    }
    throw new Error(`${what} within ${ms / 1000} s`);
  };
  const workerId = `${prefix}-w`;
  const http = client(() => admin.token);
  const ready = {
    redis: () => until(() => redisPing(redisPort), 'redis-server did not start'),
    api: () =>
      until(async () => (await globalThis.fetch(`${url}/readyz`)).status === 200, 'the API did not become ready'),
    worker: () =>
      until(
        async () => (await http.get(`${url}/v1/workers`)).workers.some((w) => w.id === workerId && w.status === 'live'),
        'the worker did not register',
      ),
  };
  const op = {
    name,
    url,
    http,
    prefix,
    redisUrl,
    workerId,
    keys: keys(prefix),
    redisProxy,
    engineProxy,
    engine,
    /** The docker CLI's arguments for the engine the worker runs its containers on. */
    dockerArgs: engine ? ['-H', `unix://${engine.socket}`] : [],
    async start(label) {
      spawnOne(label);
      await ready[label]();
    },
    /** Sends the signal and waits for the process to exit. */
    async kill(label, signal = 'SIGKILL') {
      const proc = procs[label];
      if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
      await new Promise((r) => {
        proc.once('exit', r);
        proc.kill(signal);
      });
    },
    /** Kills the process (`signal`), waits `awayMs`, and starts it again. */
    async restart(label, awayMs, signal = 'SIGKILL') {
      await op.kill(label, signal);
      await sleep(awayMs);
      await op.start(label);
    },
    async stop() {
      for (const label of ['worker', 'api', 'redis']) await op.kill(label, 'SIGTERM');
      await redisProxy.close();
      await engineProxy.close();
      await removeLabelled(`berth.prefix=${prefix}`).catch(() => 0);
      await engine?.stop();
      rmSync(scratch, { recursive: true, force: true });
    },
  };
  await op.start('redis');
  await op.start('api');
  // The suite is the API's bootstrap admin; the worker gets an account and a token of its own.
  const user = await http.post(`${url}/v1/users`, { name: `${prefix}-worker`, role: 'worker' });
  const { token } = await http.post(`${url}/v1/tokens`, { name: `${prefix}-worker`, user: user.id });
  specs.worker = {
    cmd: process.execPath,
    args: [join(repo, 'apps/worker/dist/main.js')],
    env: {
      ...common,
      BERTH_WORKER_ID: workerId,
      BERTH_GPUS: gpus.join(','),
      BERTH_GPU_MODE: 'slots',
      BERTH_WORKER_CONCURRENCY: String(gpus.length + 1),
      BERTH_WORKER_METRICS_PORT: '0',
      BERTH_HEARTBEAT_MS: '500',
      BERTH_API_URL: url,
      // The engine proxy is for cutting connections to the machine's engine; an engine of the suite's own is
      // restarted itself, and reached directly.
      DOCKER_HOST: `unix://${engine?.socket ?? dockerSock}`,
      BERTH_API_TOKEN: token,
    },
  };
  await op.start('worker');
  return op;
}

/** GET and POST to the API as its admin: JSON answers parsed, text ones (logs) as text. */
function client(token) {
  const headers = () => ({ authorization: `Bearer ${token()}` });
  return {
    async get(url) {
      const res = await globalThis.fetch(url, { headers: headers() });
      if (res.status !== 200) throw new Error(`GET ${url}: ${res.status}`);
      return res.headers.get('content-type')?.includes('json') ? res.json() : res.text();
    },
    async post(url, body) {
      const res = await globalThis.fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers() },
        body: JSON.stringify(body),
      });
      if (res.status >= 300) throw new Error(`POST ${url}: ${res.status} ${await res.text()}`);
      return res.json();
    },
  };
}

/** A fault: what it does to the running stack, and what it costs a job when it is survived. */
const scenarios = [
  {
    name: 'worker-kill9',
    what: 'kill -9 of the worker, started again 1 s later',
    inject: (op) => op.restart('worker', 1000),
  },
  {
    name: 'redis-kill9',
    what: 'kill -9 of redis-server (AOF everysec), started again 2 s later',
    inject: (op) => op.restart('redis', 2000),
  },
  {
    name: 'redis-restart',
    what: 'a clean restart of redis-server (SIGTERM), 2 s away',
    inject: (op) => op.restart('redis', 2000, 'SIGTERM'),
  },
  {
    name: 'redis-full',
    what: 'Redis full (maxmemory below its use, noeviction) for 5 s',
    async inject(op) {
      redisCli(op.redisUrl, 'CONFIG', 'SET', 'maxmemory', '1');
      await sleep(5000);
      redisCli(op.redisUrl, 'CONFIG', 'SET', 'maxmemory', '0');
    },
  },
  {
    name: 'redis-connection-cut',
    what: "every Redis connection of API and worker cut (a TCP proxy's), three times 0.5 s apart",
    async inject(op) {
      for (let i = 0; i < 3; i++) {
        op.redisProxy.cut();
        await sleep(500);
      }
    },
  },
  {
    name: 'api-kill9',
    what: 'kill -9 of the API, started again 3 s later',
    inject: (op) => op.restart('api', 3000),
  },
  {
    name: 'dockerd-restart',
    what: "a restart of the worker's dockerd (its own engine, live-restore on), 1 s away",
    ownEngine: true,
    // Jobs that outlive the restart: what a container prints before it exits while dockerd is down is lost by the
    // engine itself (20.10), before any reader could have it, so that case would measure Docker, not berth.
    longer: 3,
    inject: (op) => op.engine.restart({ awayMs: 1000 }),
  },
  {
    name: 'engine-stream-cut',
    what: "the worker's connections to the Docker engine cut (log follows included), three times 0.5 s apart",
    async inject(op) {
      for (let i = 0; i < 3; i++) {
        op.engineProxy.cut();
        await sleep(500);
      }
    },
  },
];

const jobCommand = (n) => ['sh', '-c', `i=1; while [ $i -le ${n} ]; do echo "line $i"; i=$((i+1)); sleep 0.02; done`];
const numbered = (n) => Array.from({ length: n }, (_, i) => `line ${i + 1}`);

/** Lines of each job stored in Redis now (the live log). */
async function storedLines(op, ids) {
  const out = [];
  for (const id of ids) {
    const n = redisCli(op.redisUrl, 'HGET', op.keys.logCount(id), 'lines')[0];
    out.push(Number(n || 0));
  }
  return out;
}

async function waitForJobs(op, ids, ms = 180_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const jobs = [];
    for (const id of ids) jobs.push(await op.http.get(`${op.url}/v1/jobs/${id}`).catch(() => null));
    if (jobs.every((j) => j && ['succeeded', 'failed', 'cancelled'].includes(j.state))) return jobs;
    if (Date.now() > deadline) throw new Error(`jobs still running after ${ms / 1000} s`);
    await sleep(200);
  }
}

/** Containers the engine created for these jobs since `since` (unix seconds), by job. */
function createdContainers(op, since) {
  const out = execFileSync(
    'docker',
    [
      ...op.dockerArgs,
      'events',
      '--since',
      String(since),
      '--until',
      String(Math.ceil(Date.now() / 1000) + 1),
      '--filter',
      'type=container',
      '--filter',
      'event=create',
      '--filter',
      `label=berth.prefix=${op.prefix}`,
      '--format',
      '{{index .Actor.Attributes "berth.job"}}',
    ],
    { encoding: 'utf8' },
  );
  const counts = new Map();
  for (const job of out.split('\n').filter(Boolean)) counts.set(job, (counts.get(job) ?? 0) + 1);
  return counts;
}

async function runOnce(op, scenario) {
  const jobLines = lines * (scenario.longer ?? 1);
  const expected = numbered(jobLines);
  const since = Math.floor(Date.now() / 1000) - 1;
  const ids = [];
  for (let i = 0; i < jobsPerRun; i++) {
    const spec = {
      manifest: 'custom',
      params: { image: 'berth/fixture:dev', command: jobCommand(jobLines) },
      resources: { gpus: i < gpus.length ? 1 : 0 },
    };
    ids.push((await op.http.post(`${op.url}/v1/jobs`, spec)).id);
  }
  // Every job prints before the fault, which comes at a random moment while they run.
  for (const deadline = Date.now() + 60_000; ; await sleep(50)) {
    if ((await storedLines(op, ids)).every((n) => n > 0)) break;
    if (Date.now() > deadline) throw new Error('the jobs did not start');
  }
  await sleep(200 + Math.random() * (jobLines * 20 * 0.4));
  const before = await storedLines(op, ids).catch(() => ids.map(() => 0));
  // An engine keeps its events in memory: one that restarts has forgotten the creations before it.
  const early = scenario.ownEngine ? createdContainers(op, since) : new Map();
  const faultAt = Date.now();
  await scenario.inject(op);
  const injected = Math.floor(Date.now() / 1000);
  // Recovered: every job that had lines left to print has stored more since the fault, or ended.
  let recoverMs = NaN;
  for (const deadline = Date.now() + 120_000; Date.now() < deadline; await sleep(100)) {
    const now = await storedLines(op, ids).catch(() => null);
    if (now && now.every((n, i) => n > before[i] || n >= jobLines)) {
      recoverMs = Date.now() - faultAt;
      break;
    }
  }
  const jobs = await waitForJobs(op, ids);
  const created = createdContainers(op, scenario.ownEngine ? injected : since);
  for (const [job, n] of early) created.set(job, (created.get(job) ?? 0) + n);
  let lost = 0;
  let duplicated = 0;
  const gaps = [];
  for (const job of jobs) {
    const text = await op.http.get(`${op.url}/v1/jobs/${job.id}/logs?attempt=${job.attempt}`).catch(() => '');
    const got = String(text).split('\n').filter(Boolean);
    const seen = new Set(got);
    const missing = expected.filter((l) => !seen.has(l));
    lost += missing.length;
    duplicated += got.length - seen.size;
    if (missing.length > 0) gaps.push(`${job.id} lost ${missing[0]} … ${missing.at(-1)} (${missing.length})`);
  }
  const workers = (await op.http.get(`${op.url}/v1/workers`)).workers;
  const leaked = workers.flatMap((w) => w.gpus).filter((g) => g.job).length;
  return {
    jobs: jobs.length,
    completed: jobs.filter((j) => j.state === 'succeeded').length,
    attempts: jobs.reduce((n, j) => n + j.attempt, 0),
    containers: [...created.values()].reduce((a, b) => a + b, 0),
    lost,
    duplicated,
    leaked,
    recoverMs,
    failures: [
      ...jobs.filter((j) => j.state !== 'succeeded').map((j) => `${j.id}: ${j.reason} ${j.message ?? ''}`),
      ...gaps,
    ],
  };
}

function sum(rows, key) {
  return rows.reduce((n, r) => n + r[key], 0);
}

async function main() {
  const chosen = scenarios.filter((s) => only.length === 0 || only.includes(s.name));
  const rows = [];
  for (const scenario of chosen) {
    const op = await startOperator(scenario.name, { ownEngine: scenario.ownEngine });
    const results = [];
    try {
      for (let r = 0; r < runs; r++) results.push(await runOnce(op, scenario));
    } finally {
      await op.stop();
    }
    const row = {
      scenario: scenario.name,
      what: scenario.what,
      runs,
      jobs: sum(results, 'jobs'),
      completed: sum(results, 'completed'),
      attempts: sum(results, 'attempts'),
      containers: sum(results, 'containers'),
      lost: sum(results, 'lost'),
      duplicated: sum(results, 'duplicated'),
      leaked: sum(results, 'leaked'),
      recoverMs: Math.max(...results.map((r) => r.recoverMs)),
      failures: results.flatMap((r) => r.failures),
    };
    row.pass =
      row.completed === row.jobs &&
      row.attempts === row.jobs &&
      row.containers === row.attempts &&
      row.lost === 0 &&
      row.duplicated === 0 &&
      row.leaked === 0;
    rows.push(row);
    console.log(
      `${row.pass ? 'PASS' : 'FAIL'} ${row.scenario}: ${row.completed}/${row.jobs} completed, ${row.attempts} attempts, ` +
        `${row.containers} containers, ${row.lost} lost, ${row.duplicated} duplicated, ${row.leaked} GPUs left, ` +
        `recovered in ${fmt(row.recoverMs / 1000, 1)} s${row.failures.length ? `; ${row.failures.join('; ')}` : ''}`,
    );
  }
  const table = [
    '| scenario | fault | runs | jobs completed | attempts | containers / attempt | lines lost | duplicated | GPUs left reserved | recovered in (worst) | |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows.map(
      (r) =>
        `| ${r.scenario} | ${r.what} | ${r.runs} | ${r.completed}/${r.jobs} | ${r.attempts} | ` +
        `${fmt(r.containers / Math.max(1, r.attempts), 2)} | ${r.lost} | ${r.duplicated} | ${r.leaked} | ` +
        `${fmt(r.recoverMs / 1000, 1)} s | ${r.pass ? 'PASS' : 'FAIL'} |`,
    ),
  ].join('\n');
  console.log(`\n${table}`);
  if (!short && only.length === 0) writeResults(table);
  process.exitCode = rows.every((r) => r.pass) ? 0 : 1;
}

const begin = '<!-- bench/chaos/chaos.mjs: generated from here to the end marker -->';
const end = '<!-- bench/chaos/chaos.mjs: end -->';

/** Puts the table between the chaos markers of bench/RESULTS.md, with when and where it ran. */
function writeResults(table) {
  const file = join(repo, 'bench/RESULTS.md');
  const text = readFileSync(file, 'utf8');
  const where = `${cpus().length} CPUs (${cpus()[0]?.model ?? 'unknown'}), ${fmt(totalmem() / 1024 ** 3)} GiB`;
  const section = [
    begin,
    '',
    `### Chaos suite — ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, ${where}`,
    '',
    `Each run: ${jobsPerRun} jobs printing ${lines} numbered lines (one every 20 ms), ${gpus.length} of them on a stand-in GPU; the fault comes at a random moment while they run.`,
    '',
    table,
    '',
    end,
  ].join('\n');
  const from = text.indexOf(begin);
  const to = text.indexOf(end);
  const next =
    from === -1
      ? `${text.trimEnd()}\n\n${section}\n`
      : `${text.slice(0, from)}${section}${text.slice(to + end.length)}`;
  writeFileSync(file, next);
}

await main();
