// Artifact download benchmark (berth issue 7, item 7): how fast the built API serves a 1 GiB artifact compared
// with `cat` of the same stored blob, and how much its memory grows while ten clients download it at once.
//
//   npm run build && node bench/download.mjs
//
// The bench owns everything it runs: a private redis-server (no persistence) and `node apps/api/dist/main.js` on
// free ports, with a temporary BERTH_DATA_DIR, and a worker that runs a sleeping fixture job: the API accepts an
// upload only from the attempt that owns a running job, so the artifact is stored as that attempt's.
// Steps:
//   1. upload 1 GiB (a 4 MiB random buffer repeated, streamed with backpressure) and check the sha256 the API returns;
//   2. throughput: one untimed warm-up of each, then 5 rounds (BENCH_DL_ROUNDS), each taking the artifact once through
//      every path below in turn; medians in MB/s (10^6 bytes). The target is judged on C readers on both sides:
//      `curl -o /dev/null` of the download against `cat <blob> | cat > /dev/null` of the blob the API stored
//      (<BERTH_DATA_DIR>/artifacts/<jobId>/<sha256>): each hands every byte to a reader in another process that
//      discards it, one over a loopback socket, one through a pipe, and neither reader costs more than the kernel's
//      copy. With a Node reader instead (node:http here, counting and discarding, against `cat` into a pipe read by
//      this process) the reader itself binds on a socket: it spends ~1.5x the kernel time per byte that it spends
//      on a pipe and runs 90 % busy, so that pair measures the bench's client; it is printed as a reference, as are
//      `cat <blob> > /dev/null` (the page cache's read speed: nothing handed to anyone) and the Node client against
//      a bare node:http server that pipes a read stream of the blob into the response with Node's defaults (the
//      plain way; berth's store reads 1 MiB chunks into two reused buffers, the next read overlapping the last
//      write).
//   3. memory: ten parallel full downloads, each sha256-verified, while the API's VmRSS (/proc/<pid>/status) is
//      sampled every 100 ms; growth = peak during - baseline just before (MiB).
// The timed downloads count bytes without hashing them: SHA-256 in this process runs at about the speed of the
// download itself and would measure the bench, not berth (cat hashes nothing either). Every byte is still verified:
// the warm-up download and all ten parallel ones are hashed and compared (the warm-up's speed is printed too).
// The last line is the summary; a missed target exits 1, an error 2. Environment: BENCH_DL_MIB (artifact size,
// default 1024), BENCH_DL_ROUNDS (default 5), BENCH_DL_BUDGET_S (abort after, default 115).
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, rmSync, statSync } from 'node:fs';
import { request } from 'node:http';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import process from 'node:process';
import { performance } from 'node:perf_hooks';
import { clearInterval, clearTimeout, setInterval, setTimeout } from 'node:timers';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { freePort, redisPing, writeAdminToken } from './lib/berth.mjs';
import { removeLabelled, requireImage } from './lib/engine.mjs';
import { finish, median, rssBytes } from './lib/report.mjs';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const apiMain = join(repo, 'apps/api/dist/main.js');
const workerMain = join(repo, 'apps/worker/dist/main.js');

const MiB = 1024 * 1024;
const SIZE = Number(process.env.BENCH_DL_MIB ?? 1024) * MiB;
const BLOCK = 4 * MiB;
// Five rounds, not three: on a 2-core VM one transfer runs anywhere from 0.6x to 1.5x its median (where the reader and
// the sender land relative to each other moves the reader's kernel time by 2x).
const ROUNDS = Number(process.env.BENCH_DL_ROUNDS ?? 5);
const PARALLEL = 10;
const SAMPLE_MS = 100;
const BUDGET_S = Number(process.env.BENCH_DL_BUDGET_S ?? 115);
const TARGET_RATIO = 0.7;
const TARGET_GROWTH_MIB = 64;
const PREFIX = 'bench-dl';
/** The Authorization header of the API's bootstrap admin (set once the scratch folder exists). */
let bearer = {};
const ARTIFACT_PATH = 'bench/blob.bin';

const t0 = performance.now();
const loadBefore = loadavg();
const elapsed = () => ((performance.now() - t0) / 1000).toFixed(1);
const log = (line) => console.log(`[${elapsed().padStart(5)} s] ${line}`);
const mbps = (bytes, ms) => bytes / 1e6 / (ms / 1000);
const f0 = (n) => n.toFixed(0);

// ---------- processes and clean-up ----------

const cleanups = [];
let cleaning;
function cleanup() {
  cleaning ??= (async () => {
    for (const fn of cleanups.reverse())
      await Promise.resolve()
        .then(fn)
        .catch(() => {});
  })();
  return cleaning;
}

/** Spawns a child whose output is kept (last 8 KiB) for the error message if it dies; clean-up ends it. */
function spawnOwned(label, cmd, args, options) {
  const proc = spawn(cmd, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
  let tail = '';
  const keep = (d) => (tail = (tail + d).slice(-8192));
  proc.stdout.on('data', keep);
  proc.stderr.on('data', keep);
  const owned = { label, proc, stopping: false, tail: () => tail };
  owned.exited = new Promise((res) => proc.once('exit', (code, signal) => res({ code, signal })));
  owned.died = owned.exited.then(({ code, signal }) => {
    if (!owned.stopping) throw new Error(`${label} exited (${code ?? signal}) early:\n${tail}`);
  });
  owned.died.catch(() => {});
  proc.once('error', (err) => keep(`\n${err.message}`));
  cleanups.push(async () => {
    owned.stopping = true;
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill('SIGTERM');
    const done = await Promise.race([owned.exited.then(() => true), sleep(5000).then(() => false)]);
    if (!done) {
      proc.kill('SIGKILL');
      await owned.exited;
    }
  });
  return owned;
}

async function waitFor(what, check, owned, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await Promise.race([check().catch(() => false), owned.died])) return;
    await sleep(50);
  }
  throw new Error(`${what} within ${timeoutMs / 1000} s:\n${owned.tail()}`);
}

// ---------- HTTP ----------

/** One request; resolves with status and parsed JSON body. `write(req)` sends the body and ends the request. */
function httpJson(url, { method = 'GET', headers = {}, body, write } = {}) {
  return new Promise((res, rej) => {
    const req = request(url, { method, headers: { ...bearer, ...headers }, agent: false }, (r) => {
      let text = '';
      r.setEncoding('utf8');
      r.on('data', (d) => (text += d));
      r.on('end', () => {
        try {
          res({ status: r.statusCode, body: text ? JSON.parse(text) : undefined });
        } catch {
          res({ status: r.statusCode, body: text });
        }
      });
      r.on('error', rej);
    });
    req.on('error', rej);
    if (write) write(req).catch((err) => req.destroy(err));
    else req.end(body);
  });
}

/** Downloads the whole artifact, discarding the bytes: { bytes, ms, sha256 (when hashed) }. */
function download(url, { hash = false } = {}) {
  return new Promise((res, rej) => {
    const start = performance.now();
    const req = request(url, { agent: false, headers: bearer }, (r) => {
      if (r.statusCode !== 200) {
        r.resume();
        rej(new Error(`GET ${url}: ${r.statusCode}`));
        return;
      }
      readAll(r, start, hash).then(res, rej);
    });
    req.on('error', rej);
    req.end();
  });
}

/** Reads a stream to its end, counting (and with `hash`, hashing) the bytes: { bytes, ms since start, sha256 }. */
function readAll(stream, start, hash = false) {
  return new Promise((res, rej) => {
    const h = hash ? createHash('sha256') : undefined;
    let bytes = 0;
    stream.on('data', (chunk) => {
      bytes += chunk.length;
      h?.update(chunk);
    });
    stream.on('end', () => res({ bytes, ms: performance.now() - start, sha256: h?.digest('hex') }));
    stream.on('error', rej);
  });
}

/** `cat <file>` into a pipe that this process reads to the end, like a download: { bytes, ms } from spawn. */
function catToReader(file) {
  const start = performance.now();
  const proc = spawn('cat', [file], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise((res, rej) => {
    proc.once('error', rej);
    proc.once('exit', (code) => (code === 0 ? res() : rej(new Error(`cat exited with ${code}`))));
  });
  return Promise.all([readAll(proc.stdout, start), exited]).then(([read]) => read);
}

/** `cat <file> > /dev/null` as a child process; wall time from spawn to exit. */
function catToNull(file) {
  return new Promise((res, rej) => {
    const devNull = openSync('/dev/null', 'w');
    const start = performance.now();
    const proc = spawn('cat', [file], { stdio: ['ignore', devNull, 'inherit'] });
    proc.once('error', (err) => {
      closeSync(devNull);
      rej(err);
    });
    proc.once('exit', (code) => {
      const ms = performance.now() - start;
      closeSync(devNull);
      if (code === 0) res({ ms });
      else rej(new Error(`cat exited with ${code}`));
    });
  });
}

/** `curl -o /dev/null <url>`: wall time from spawn to exit, and the bytes curl says it received. */
function curlToNull(url) {
  return new Promise((res, rej) => {
    const start = performance.now();
    const args = ['-sS', '-f', '-o', '/dev/null', '-w', '%{size_download}'];
    if (bearer.authorization) args.push('-H', `authorization: ${bearer.authorization}`);
    const proc = spawn('curl', [...args, url], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    proc.stdout.on('data', (d) => (out += d));
    proc.stderr.on('data', (d) => (out += d));
    proc.once('error', rej);
    proc.once('exit', (code) => {
      const ms = performance.now() - start;
      if (code === 0) res({ bytes: Number(out.trim()), ms });
      else rej(new Error(`curl ${url} exited with ${code}: ${out.trim()}`));
    });
  });
}

/** `cat <file> | cat > /dev/null`: wall time from spawn to exit (the shell's start, ~1 ms, included). */
function catToCat(file) {
  return new Promise((res, rej) => {
    const start = performance.now();
    const proc = spawn('sh', ['-c', 'set -e; cat "$0" | cat > /dev/null', file], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    proc.once('error', rej);
    proc.once('exit', (code) => {
      const ms = performance.now() - start;
      if (code === 0) res({ ms });
      else rej(new Error(`cat | cat exited with ${code}`));
    });
  });
}

// A bare node:http server streaming one file the plain way: createReadStream (64 KiB reads) piped into the response.
const bareServer = `
const { createServer } = require('node:http');
const { createReadStream, statSync } = require('node:fs');
const file = process.env.FILE;
const size = statSync(file).size;
createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size });
  createReadStream(file).pipe(res);
}).listen(Number(process.env.PORT), '127.0.0.1', () => console.log('listening'));
`;

// ---------- the bench ----------

async function main() {
  if (!existsSync(apiMain)) throw new Error(`${apiMain} is missing: run npm run build first`);
  const scratch = mkdtempSync(join(tmpdir(), 'berth-bench-dl-'));
  cleanups.push(() => rmSync(scratch, { recursive: true, force: true }));
  const dataDir = join(scratch, 'data');
  const redisDir = join(scratch, 'redis');
  mkdirSync(dataDir);
  mkdirSync(redisDir);
  // The API's first admin gets this token; every request here sends it (the bare server ignores it).
  const admin = writeAdminToken(scratch);
  bearer = { authorization: `Bearer ${admin.token}` };

  // redis-server, private and without persistence.
  const redisPort = await freePort();
  const redis = spawnOwned(
    'redis-server',
    'redis-server',
    ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', redisDir],
    { cwd: redisDir },
  );
  await waitFor('redis-server did not answer PING', () => redisPing(redisPort), redis);

  // The built API.
  const port = await freePort();
  const api = spawnOwned('the API', process.execPath, [apiMain], {
    cwd: repo,
    env: {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      REDIS_URL: `redis://127.0.0.1:${redisPort}`,
      BERTH_PREFIX: PREFIX,
      BERTH_DATA_DIR: dataDir,
      BERTH_MANIFESTS_DIR: join(repo, 'ngc-manifests'),
      BERTH_BOOTSTRAP_TOKEN_FILE: admin.file,
      // This Redis is thrown away after the run and has no AOF on purpose (no disk writes beside the downloads
      // measured), so the API is told to start on it anyway.
      BERTH_ALLOW_UNSAFE_REDIS: '1',
      LOG_LEVEL: 'warn',
    },
  });
  const base = `http://127.0.0.1:${port}`;
  await waitFor('the API did not become ready', async () => (await httpJson(`${base}/readyz`)).status === 200, api);
  log(`redis-server :${redisPort} (pid ${redis.proc.pid}), API ${base} (pid ${api.proc.pid}), data ${dataDir}`);
  // From here on, any early exit of the API or Redis fails the bench.
  const owned = [api, redis];
  const guard = (p) => Promise.race([p, ...owned.map((o) => o.died)]);

  // 1. A running job and its 1 GiB artifact, uploaded as the job's attempt 1.
  await requireImage('berth/fixture:dev');
  const post = async (path, body) => {
    const r = await guard(
      httpJson(`${base}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      }),
    );
    if (r.status !== 201 && r.status !== 200) throw new Error(`POST ${path}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  };
  const workerUser = await post('/v1/users', { name: `${PREFIX}-worker`, role: 'worker' });
  const workerToken = (await post('/v1/tokens', { name: `${PREFIX}-worker`, user: workerUser.id })).token;
  const worker = spawnOwned('the worker', process.execPath, [workerMain], {
    cwd: repo,
    env: {
      ...process.env,
      REDIS_URL: `redis://127.0.0.1:${redisPort}`,
      BERTH_PREFIX: PREFIX,
      BERTH_DATA_DIR: join(scratch, 'worker'),
      BERTH_MANIFESTS_DIR: join(repo, 'ngc-manifests'),
      BERTH_API_URL: base,
      BERTH_API_TOKEN: workerToken,
      BERTH_WORKER_ID: `${PREFIX}-w`,
      BERTH_GPUS: '0',
      BERTH_WORKER_METRICS_PORT: '0',
      // The same throwaway Redis without AOF as the API's above.
      BERTH_ALLOW_UNSAFE_REDIS: '1',
      LOG_LEVEL: 'warn',
    },
  });
  cleanups.push(() => removeLabelled(`berth.prefix=${PREFIX}`));
  owned.push(worker);
  const jobId = (
    await post('/v1/jobs', { manifest: 'custom', params: { image: 'berth/fixture:dev', command: ['sleep', '3600'] } })
  ).id;
  await waitFor(
    'the sleeping job did not run',
    async () => (await httpJson(`${base}/v1/jobs/${jobId}`)).body.state === 'running',
    worker,
    60_000,
  );
  const block = randomBytes(BLOCK);
  const mine = createHash('sha256');
  const artifactUrl = `${base}/v1/jobs/${jobId}/artifacts/${ARTIFACT_PATH}`;
  let upMs = performance.now();
  const uploaded = await guard(
    httpJson(artifactUrl, {
      method: 'PUT',
      headers: {
        'content-type': 'application/octet-stream',
        'content-length': String(SIZE),
        'x-berth-attempt': '1',
        'x-berth-kind': 'model',
      },
      // The same 4 MiB block again and again, never more than the socket's buffer held in memory.
      write: async (req) => {
        for (let sent = 0; sent < SIZE; sent += BLOCK) {
          const chunk = sent + BLOCK <= SIZE ? block : block.subarray(0, SIZE - sent);
          mine.update(chunk);
          if (!req.write(chunk)) {
            await new Promise((res, rej) => {
              const onDrain = () => {
                req.off('error', rej);
                res();
              };
              req.once('drain', onDrain);
              req.once('error', rej);
            });
          }
        }
        req.end();
      },
    }),
  );
  upMs = performance.now() - upMs;
  const sha256 = mine.digest('hex');
  if (uploaded.status !== 201) throw new Error(`upload: ${uploaded.status} ${JSON.stringify(uploaded.body)}`);
  if (uploaded.body.sha256 !== sha256 || uploaded.body.size !== SIZE) {
    throw new Error(
      `upload stored ${uploaded.body.size} bytes, sha256 ${uploaded.body.sha256}; sent ${SIZE}, ${sha256}`,
    );
  }
  const blob = join(dataDir, 'artifacts', jobId, sha256);
  if (statSync(blob).size !== SIZE) throw new Error(`${blob} is not ${SIZE} bytes`);
  log(
    `job ${jobId}: uploaded ${SIZE / MiB} MiB in ${(upMs / 1000).toFixed(1)} s (${f0(mbps(SIZE, upMs))} MB/s), sha256 matches`,
  );

  // The reference server, started only now that the blob exists.
  const barePort = await freePort();
  const bare = spawnOwned('the bare node:http server', process.execPath, ['-e', bareServer], {
    env: { ...process.env, FILE: blob, PORT: String(barePort) },
  });
  const bareUrl = `http://127.0.0.1:${barePort}/`;
  await waitFor('the bare node:http server did not start', async () => bare.tail().includes('listening'), bare);
  owned.push(bare);

  // 2. Throughput. Warm-up: the page cache (cat) and the API's code paths (a hashed download, checked).
  await guard(catToNull(blob));
  const warm = await guard(download(artifactUrl, { hash: true }));
  if (warm.bytes !== SIZE || warm.sha256 !== sha256)
    throw new Error(`warm-up download: ${warm.bytes} bytes, ${warm.sha256}`);
  log(`warm-up: download + sha256 in this process ${f0(mbps(SIZE, warm.ms))} MB/s, bytes verified`);
  const bareWarm = await guard(download(bareUrl));
  if (bareWarm.bytes !== SIZE) throw new Error(`bare server: ${bareWarm.bytes} of ${SIZE} bytes`);
  const curlWarm = await guard(curlToNull(artifactUrl));
  if (curlWarm.bytes !== SIZE) throw new Error(`curl warm-up: ${curlWarm.bytes} of ${SIZE} bytes`);
  await guard(catToCat(blob));
  const runs = { curl: [], catCat: [], node: [], catReader: [], bare: [], catNull: [] };
  for (let i = 0; i < ROUNDS; i++) {
    const got = (what, r) => {
      if (r.bytes !== undefined && r.bytes !== SIZE)
        throw new Error(`${what}, round ${i + 1}: ${r.bytes} of ${SIZE} bytes`);
      return mbps(SIZE, r.ms);
    };
    runs.curl.push(got('curl', await guard(curlToNull(artifactUrl))));
    runs.catCat.push(got('cat | cat', await guard(catToCat(blob))));
    runs.node.push(got('node:http download', await guard(download(artifactUrl))));
    runs.catReader.push(got('cat into a reader', await guard(catToReader(blob))));
    runs.bare.push(got('bare server', await guard(download(bareUrl))));
    runs.catNull.push(got('cat > /dev/null', await guard(catToNull(blob))));
    log(
      `round ${i + 1}: curl from berth ${f0(runs.curl[i])} MB/s, cat | cat ${f0(runs.catCat[i])} MB/s; ` +
        `node:http from berth ${f0(runs.node[i])} MB/s, cat into a node reader ${f0(runs.catReader[i])} MB/s; ` +
        `bare node:http ${f0(runs.bare[i])} MB/s, cat > /dev/null ${f0(runs.catNull[i])} MB/s`,
    );
  }
  const med = Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, median(v)]));
  const ratio = med.curl / med.catCat;

  // 3. Memory: ten parallel full downloads, each verified, the API's RSS sampled every 100 ms.
  const pid = api.proc.pid;
  const before = [];
  for (let i = 0; i < 5; i++) {
    before.push(rssBytes(pid));
    await sleep(SAMPLE_MS);
  }
  const baseline = median(before);
  const samples = [];
  let lastAt = performance.now();
  let maxGap = 0;
  const sampler = setInterval(() => {
    const now = performance.now();
    maxGap = Math.max(maxGap, now - lastAt);
    lastAt = now;
    samples.push(rssBytes(pid));
  }, SAMPLE_MS);
  let parMs = performance.now();
  let results;
  try {
    results = await guard(Promise.all(Array.from({ length: PARALLEL }, () => download(artifactUrl, { hash: true }))));
  } finally {
    clearInterval(sampler);
  }
  parMs = performance.now() - parMs;
  samples.push(rssBytes(pid));
  for (const [i, r] of results.entries()) {
    if (r.bytes !== SIZE || r.sha256 !== sha256)
      throw new Error(`parallel download ${i + 1}: ${r.bytes} bytes, ${r.sha256}`);
  }
  const peak = Math.max(...samples.filter(Number.isFinite));
  const growthMiB = (peak - baseline) / MiB;
  const aggregate = mbps(SIZE * PARALLEL, parMs);
  log(
    `${PARALLEL} parallel: ${(parMs / 1000).toFixed(1)} s, ${f0(aggregate)} MB/s together, all verified; ` +
      `${samples.length} RSS samples, largest gap ${f0(maxGap)} ms`,
  );

  return {
    runs,
    med,
    ratio,
    warmMbps: mbps(SIZE, warm.ms),
    baselineMiB: baseline / MiB,
    peakMiB: peak / MiB,
    growthMiB,
    aggregate,
    samples: samples.length,
  };
}

function report(r) {
  const { med, runs } = r;
  const passThroughput = r.ratio >= TARGET_RATIO;
  const passMemory = r.growthMiB < TARGET_GROWTH_MIB;
  const list = (xs) => xs.map(f0).join(' / ');
  const x = (a, b) => `${(a / b).toFixed(2)}x`;
  const nodeRatio = med.node / med.catReader;
  const rows = [
    ['measure', 'berth', 'baseline', 'ratio / target'],
    [
      `download ${SIZE / MiB} MiB, median of ${ROUNDS} (MB/s)`,
      `${f0(med.curl)} (curl)`,
      `${f0(med.catCat)} (cat | cat)`,
      `${x(med.curl, med.catCat)} (>= ${TARGET_RATIO}) ${passThroughput ? 'PASS' : 'FAIL'}`,
    ],
    ['  runs (MB/s)', list(runs.curl), list(runs.catCat), ''],
    [
      '  with node readers (MB/s)',
      `${f0(med.node)} (node:http)`,
      `${f0(med.catReader)} (cat | node)`,
      `${x(med.node, med.catReader)} (reference)`,
    ],
    ['  runs (MB/s)', list(runs.node), list(runs.catReader), ''],
    [
      '  curl vs cat > /dev/null (MB/s)',
      f0(med.curl),
      `${f0(med.catNull)} (cat)`,
      `${x(med.curl, med.catNull)} (reference)`,
    ],
    ['  runs (MB/s)', '', list(runs.catNull), ''],
    [
      '  node:http vs a bare node:http server (MB/s)',
      f0(med.node),
      `${f0(med.bare)} (bare)`,
      `${x(med.node, med.bare)} (reference)`,
    ],
    ['  runs (MB/s)', '', list(runs.bare), ''],
    ['  download + client sha256 (MB/s, warm-up)', f0(r.warmMbps), '', ''],
    [`API RSS, ${PARALLEL} parallel downloads (MiB)`, `${f0(r.baselineMiB)} -> ${f0(r.peakMiB)}`, '', ''],
    ['  growth (MiB)', `+${f0(r.growthMiB)}`, '', `< ${TARGET_GROWTH_MIB} ${passMemory ? 'PASS' : 'FAIL'}`],
    [`  ${PARALLEL} parallel, together (MB/s)`, f0(r.aggregate), '', ''],
  ];
  const widths = rows[0].map((_, c) => Math.max(...rows.map((row) => row[c].length)));
  console.log('');
  for (const [i, row] of rows.entries()) {
    console.log(row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  '));
    if (i === 0) console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  }
  console.log('');
  finish(
    {
      name: 'download',
      figure:
        `curl from berth ${f0(med.curl)} MB/s, cat | cat ${f0(med.catCat)} MB/s; with node readers ` +
        `${f0(med.node)} vs ${f0(med.catReader)} MB/s (${nodeRatio.toFixed(2)}x); API RSS +${f0(r.growthMiB)} MiB ` +
        `during ${PARALLEL} parallel downloads (${f0(r.baselineMiB)} -> ${f0(r.peakMiB)} MiB)`,
      ratio: r.ratio,
      ratioOf: 'curl from berth / cat | cat',
      target: `≥ ${TARGET_RATIO} and RSS growth < ${TARGET_GROWTH_MIB} MiB`,
      pass: passThroughput && passMemory,
      rows: [
        {
          what: `download ${SIZE / MiB} MiB, curl vs cat | cat (MB/s)`,
          berth: med.curl,
          baseline: med.catCat,
          ratio: r.ratio,
        },
        {
          what: `download ${SIZE / MiB} MiB, node readers, reference (MB/s)`,
          berth: med.node,
          baseline: med.catReader,
          ratio: nodeRatio,
        },
        {
          what: `download ${SIZE / MiB} MiB vs cat > /dev/null, reference (MB/s)`,
          berth: med.curl,
          baseline: med.catNull,
          ratio: med.curl / med.catNull,
        },
        {
          what: `API RSS growth, ${PARALLEL} parallel downloads (MiB)`,
          berth: r.growthMiB,
          ratio: r.growthMiB / TARGET_GROWTH_MIB,
          ratioNote: `/ ${TARGET_GROWTH_MIB} MiB`,
        },
      ],
      notes: [],
      berth: {
        curl: runs.curl,
        node: runs.node,
        warmMbps: r.warmMbps,
        aggregate: r.aggregate,
        rssMiB: [r.baselineMiB, r.peakMiB],
      },
      baseline: { catCat: runs.catCat, catReader: runs.catReader, catNull: runs.catNull, bareNode: runs.bare },
    },
    loadBefore,
  );
}

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    void cleanup().then(() => {
      console.log(`download: interrupted by ${signal}; no figures`);
      process.exit(2);
    });
  });
}
const watchdog = setTimeout(() => {
  void cleanup().then(() => {
    console.log(`download: ERROR over the ${BUDGET_S} s budget; no figures`);
    process.exit(2);
  });
}, BUDGET_S * 1000);
watchdog.unref();

try {
  const result = await main();
  await cleanup();
  report(result);
} catch (err) {
  await cleanup();
  console.log(err instanceof Error ? (err.stack ?? err.message) : String(err));
  console.log(`download: ERROR ${err instanceof Error ? err.message.split('\n')[0] : String(err)}; no figures`);
  process.exitCode = 2;
}
clearTimeout(watchdog);
