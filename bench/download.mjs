// Artifact download benchmark (berth issue 7, item 7): how fast the built API serves a 1 GiB artifact compared
// with `cat` of the same stored blob, and how much its memory grows while ten clients download it at once.
//
//   npm run build && node bench/download.mjs
//
// The bench owns everything it runs: a private redis-server (no persistence) and `node apps/api/dist/main.js` on
// free ports, with a temporary BERTH_DATA_DIR. No worker runs: the job the artifact belongs to just stays queued.
// Steps:
//   1. upload 1 GiB (a 4 MiB random buffer repeated, streamed with backpressure) and check the sha256 the API returns;
//   2. throughput: one untimed warm-up of each, then 3 rounds alternating a download over node:http (bytes counted
//      and discarded) with `cat <blob>` into a pipe read by the same kind of reader in this process (bytes counted
//      and discarded), on the blob the API stored, <BERTH_DATA_DIR>/artifacts/<jobId>/<sha256>; medians in MB/s
//      (10^6 bytes), ratio berth / cat. Both sides hand every byte to a reader in another process; the target
//      is judged on that. For reference only (no target): `cat <blob> > /dev/null`, which hands the bytes to no
//      one (the page cache's read speed: ~6 GB/s here, 2.5-3x what any reader of a pipe or socket in Node takes
//      in), and the same client against a bare node:http server in its own process that pipes a read stream of
//      the blob into the response with Node's defaults (the plain way; berth's store reads 1 MiB chunks into two
//      reused buffers, the next read overlapping the last write).
//   3. memory: ten parallel full downloads, each sha256-verified, while the API's VmRSS (/proc/<pid>/status) is
//      sampled every 100 ms; growth = peak during - baseline just before (MiB).
// The timed downloads count bytes without hashing them: SHA-256 in this process runs at about the speed of the
// download itself and would measure the bench, not berth (cat hashes nothing either). Every byte is still verified:
// the warm-up download and all ten parallel ones are hashed and compared (the warm-up's speed is printed too).
// The last line is the summary; a missed target exits 1, an error 2. Environment: BENCH_DL_MIB (artifact size,
// default 1024), BENCH_DL_BUDGET_S (abort after, default 115).
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
import { finish, median, rssBytes } from './lib/report.mjs';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const apiMain = join(repo, 'apps/api/dist/main.js');

const MiB = 1024 * 1024;
const SIZE = Number(process.env.BENCH_DL_MIB ?? 1024) * MiB;
const BLOCK = 4 * MiB;
const ROUNDS = 3;
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
      LOG_LEVEL: 'warn',
    },
  });
  const base = `http://127.0.0.1:${port}`;
  await waitFor('the API did not become ready', async () => (await httpJson(`${base}/readyz`)).status === 200, api);
  log(`redis-server :${redisPort} (pid ${redis.proc.pid}), API ${base} (pid ${api.proc.pid}), data ${dataDir}`);
  // From here on, any early exit of the API or Redis fails the bench.
  const owned = [api, redis];
  const guard = (p) => Promise.race([p, ...owned.map((o) => o.died)]);

  // 1. The job and its 1 GiB artifact.
  const created = await guard(
    httpJson(`${base}/v1/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ manifest: 'custom', params: { image: 'berth/fixture:dev', command: ['true'] } }),
    }),
  );
  if (created.status !== 201 && created.status !== 200) {
    throw new Error(`POST /v1/jobs: ${created.status} ${JSON.stringify(created.body)}`);
  }
  const jobId = created.body.id;
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
  const berthRuns = [];
  const bareRuns = [];
  const catRuns = [];
  const catNullRuns = [];
  for (let i = 0; i < ROUNDS; i++) {
    const d = await guard(download(artifactUrl));
    if (d.bytes !== SIZE) throw new Error(`download ${i + 1}: ${d.bytes} of ${SIZE} bytes`);
    berthRuns.push(mbps(SIZE, d.ms));
    const b = await guard(download(bareUrl));
    if (b.bytes !== SIZE) throw new Error(`bare server ${i + 1}: ${b.bytes} of ${SIZE} bytes`);
    bareRuns.push(mbps(SIZE, b.ms));
    const c = await guard(catToReader(blob));
    if (c.bytes !== SIZE) throw new Error(`cat ${i + 1}: ${c.bytes} of ${SIZE} bytes`);
    catRuns.push(mbps(SIZE, c.ms));
    catNullRuns.push(mbps(SIZE, (await guard(catToNull(blob))).ms));
    log(
      `round ${i + 1}: berth ${f0(berthRuns[i])} MB/s, cat into a reader ${f0(catRuns[i])} MB/s; ` +
        `reference: bare node:http ${f0(bareRuns[i])} MB/s, cat > /dev/null ${f0(catNullRuns[i])} MB/s`,
    );
  }
  const berthMed = median(berthRuns);
  const catMed = median(catRuns);
  const ratio = berthMed / catMed;
  const bareMed = median(bareRuns);
  const catNullMed = median(catNullRuns);

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
    berthRuns,
    bareRuns,
    catRuns,
    catNullRuns,
    bareMed,
    berthMed,
    catMed,
    catNullMed,
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
  const passThroughput = r.ratio >= TARGET_RATIO;
  const passMemory = r.growthMiB < TARGET_GROWTH_MIB;
  const runs = (xs) => xs.map(f0).join(' / ');
  const rows = [
    ['measure', 'berth', 'baseline', 'ratio / target'],
    [
      `download ${SIZE / MiB} MiB, median of ${ROUNDS} (MB/s)`,
      f0(r.berthMed),
      `${f0(r.catMed)} (cat | reader)`,
      `${r.ratio.toFixed(2)}x (>= ${TARGET_RATIO}) ${passThroughput ? 'PASS' : 'FAIL'}`,
    ],
    ['  runs (MB/s)', runs(r.berthRuns), runs(r.catRuns), ''],
    [
      '  same, cat > /dev/null (MB/s)',
      f0(r.berthMed),
      `${f0(r.catNullMed)} (cat)`,
      `${(r.berthMed / r.catNullMed).toFixed(2)}x (reference)`,
    ],
    ['  runs (MB/s)', '', runs(r.catNullRuns), ''],
    [
      '  same, bare node:http server (MB/s)',
      f0(r.berthMed),
      `${f0(r.bareMed)} (node)`,
      `${(r.berthMed / r.bareMed).toFixed(2)}x (reference)`,
    ],
    ['  runs (MB/s)', '', runs(r.bareRuns), ''],
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
        `berth ${f0(r.berthMed)} MB/s, cat into a reader ${f0(r.catMed)} MB/s (cat > /dev/null ${f0(r.catNullMed)}, ` +
        `${(r.berthMed / r.catNullMed).toFixed(2)}x); API RSS +${f0(r.growthMiB)} MiB during ${PARALLEL} parallel ` +
        `downloads (${f0(r.baselineMiB)} -> ${f0(r.peakMiB)} MiB)`,
      ratio: r.ratio,
      ratioOf: 'berth / cat into a reader',
      target: `≥ ${TARGET_RATIO} and RSS growth < ${TARGET_GROWTH_MIB} MiB`,
      pass: passThroughput && passMemory,
      rows: [
        { what: `download ${SIZE / MiB} MiB (MB/s)`, berth: r.berthMed, baseline: r.catMed, ratio: r.ratio },
        {
          what: `download ${SIZE / MiB} MiB vs cat > /dev/null, reference (MB/s)`,
          berth: r.berthMed,
          baseline: r.catNullMed,
          ratio: r.berthMed / r.catNullMed,
        },
        {
          what: `API RSS growth, ${PARALLEL} parallel downloads (MiB)`,
          berth: r.growthMiB,
          ratio: r.growthMiB / TARGET_GROWTH_MIB,
          ratioNote: `/ ${TARGET_GROWTH_MIB} MiB`,
        },
      ],
      notes: [],
      berth: { runs: r.berthRuns, warmMbps: r.warmMbps, aggregate: r.aggregate, rssMiB: [r.baselineMiB, r.peakMiB] },
      baseline: { catReader: r.catRuns, catNull: r.catNullRuns, bareNode: r.bareRuns },
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
