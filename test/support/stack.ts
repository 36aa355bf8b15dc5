// The API and a worker built in-process on real Redis and the real Docker engine, isolated by a key prefix.
import type { Dataset, GpuMode, JobRecord, Quotas, User } from '@berth/contracts';
import { parseEvents, type SseEvent } from '@berth/contracts';
import type { ApiTarget } from '../../apps/worker/src/api-client.js';
import type { RetryPolicy, StreamCaps } from '@berth/store';
import type { GpuTelemetry } from '../../apps/worker/src/gpu/telemetry.js';
import type { ResultsBudget } from '../../apps/worker/src/artifacts/results-tree.js';
import { loadManifests } from '@berth/manifests';
import Docker from 'dockerode';
import type { FastifyInstance } from 'fastify';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { buildApp } from '../../apps/api/src/app.js';
import { loadApiConfig, type ApiConfig } from '../../apps/api/src/env.js';
import { assembleWorker } from '../../apps/worker/src/assemble.js';
import { loadWorkerConfig, type WorkerConfig } from '../../apps/worker/src/env.js';
import type { ImageSource } from '../../apps/worker/src/executor/container-runtime.js';
import { configInventory } from '../../apps/worker/src/gpu/inventory.js';
import type { BerthWorker, WorkerTimings } from '../../apps/worker/src/worker.js';
import { testPrefix, testRedisUrl } from './env.js';

export const docker = new Docker({ socketPath: '/var/run/docker.sock' });
export const manifestsDir = join(__dirname, '../../ngc-manifests');

export interface TestStack {
  app: FastifyInstance;
  url: string;
  prefix: string;
  workerId: string;
  dataDir: string;
  worker: BerthWorker | undefined;
  /** The first admin (the bootstrap token), and two members who must not see each other's things. */
  admin: TestClient;
  alice: TestClient;
  bob: TestClient;
  /** The API as a worker account reaches it: for workers started beside the stack's own. */
  workerApi: ApiTarget;
  close(): Promise<void>;
}

/** One user's way into the API: their token, added to every request. */
export interface TestClient {
  url: string;
  token: string;
  user: User;
  /** fetch(url + path) with `Authorization: Bearer <token>` (unless the init sets its own). */
  fetch(path: string, init?: RequestInit): Promise<Response>;
}

export function testClient(url: string, token: string, user: User): TestClient {
  return {
    url,
    token,
    user,
    fetch: (path, init = {}) =>
      fetch(`${url}${path}`, { ...init, headers: { authorization: `Bearer ${token}`, ...(init.headers as object) } }),
  };
}

export interface TestWorkerOptions {
  /** The API the worker uploads artifacts to, as its worker account (startTestStack fills it in). */
  api?: ApiTarget;
  workerId?: string;
  concurrency?: number;
  mode?: GpuMode;
  /** BERTH_GPUS form: a count or device ids. */
  gpus?: string;
  maxBypass?: number;
  retry?: RetryPolicy;
  timings?: Partial<WorkerTimings>;
  /** The worker's image puller; one try, no credentials by default. */
  images?: ImageSource;
  /** The Docker engine the worker runs containers on (default: the machine's own). */
  engine?: Docker;
  /** Recipes folder (default ngc-manifests/). */
  manifestsDir?: string;
  caps?: StreamCaps;
  gpuTelemetry?: GpuTelemetry;
  /** What one attempt may leave under /results (default: 1 GiB, 10,000 entries). */
  resultsBudget?: ResultsBudget;
  /** How long the API may be away before an upload or input fetch fails (default 3 s: tests rarely stop it). */
  apiGraceMs?: number;
  /** The worker's data dir (default: the stack's, under the prefix); a second worker of a stack needs its own. */
  dataDir?: string;
  /** How long multi-node members hold their GPUs while their gang forms. */
  gangReservationMs?: number;
  /** The host-network fence main.ts makes where config.address is set (ensureHostNetworkFence). */
  hostNetwork?: { cgroupParent: string };
  /** What the environment would set (BERTH_JOB_MEMORY_DEFAULT…, as WorkerConfig), over everything above. */
  config?: Partial<WorkerConfig>;
}

export interface TestStackOptions extends TestWorkerOptions {
  /** API settings to change (quotas, rate limit, image allowlist…). */
  apiConfig?: Partial<ApiConfig>;
  redisUrl?: string;
  worker?: boolean;
  prefix?: string;
  lostAfterMs?: number;
  /** The API's data dir (artifacts, datasets); a fresh temp folder by default. */
  apiDataDir?: string;
}

/** Fast settings for tests: heartbeats every 200 ms, short grace periods, no retry backoff. */
export const fastTimings: Partial<WorkerTimings> = {
  heartbeatMs: 200,
  pollMs: 200,
  stopGraceSeconds: 2,
  orphanGraceMs: 1000,
};

/**
 * The worker's configuration for tests: the environment's defaults (loadWorkerConfig of an empty environment) with
 * the test's Redis, prefix, data dir and options, one pull try, and quick retries.
 */
export function testWorkerConfig(prefix: string, o: TestWorkerOptions & { redisUrl?: string } = {}): WorkerConfig {
  const defaults = loadWorkerConfig({});
  const api = o.api ?? { url: 'http://127.0.0.1:9', token: 'no-api' };
  return {
    ...defaults,
    redisUrl: o.redisUrl ?? testRedisUrl(),
    api: { url: api.url, token: api.token },
    prefix,
    workerId: o.workerId ?? `w-${prefix}`,
    concurrency: o.concurrency ?? 4,
    mode: o.mode ?? 'whole-host',
    gpus: o.gpus ?? '0',
    dataDir: o.dataDir ?? join(tmpdir(), 'berth-test-data', prefix),
    manifestsDir: o.manifestsDir ?? manifestsDir,
    pull: { ...defaults.pull, attempts: 1 },
    ...(o.maxBypass !== undefined ? { maxBypass: o.maxBypass } : {}),
    ...(o.gangReservationMs ? { gangReservationMs: o.gangReservationMs } : {}),
    retry: o.retry ?? { infraRetries: 2, backoffMs: 0 },
    caps: { ...defaults.caps, ...o.caps },
    results: o.resultsBudget ?? { maxBytes: 1024 ** 3, maxFiles: 10_000 },
    // Docker's own bridge, not the fenced jobs network: main.ts makes that one (ensureJobNetwork, root and iptables)
    // before it assembles the worker, and attack-network.test.ts tests it on its own.
    jobDefaults: { ...defaults.jobDefaults, network: 'bridge' },
    metricsPort: 0,
    logLevel: 'silent',
    ...o.config,
  };
}

/** A worker on the real engine, assembled as main.ts assembles one, with GPUs from BERTH_GPUS-style config. */
export function startTestWorker(prefix: string, o: TestWorkerOptions & { redisUrl?: string } = {}): BerthWorker {
  const config = testWorkerConfig(prefix, o);
  return assembleWorker(
    config,
    {
      docker: o.engine ?? docker,
      manifests: loadManifests(config.manifestsDir),
      gpus: configInventory(config.gpus ?? '0'),
      logger: pino({ level: config.logLevel }),
      hostNetwork: o.hostNetwork,
    },
    {
      timings: { ...fastTimings, ...o.timings },
      uploadIntervalMs: 300,
      apiGraceMs: o.apiGraceMs ?? 3000,
      images: o.images,
      gpuTelemetry: o.gpuTelemetry,
    },
  );
}

/** The API's configuration for tests: a private prefix, the test Redis, fast sweeps. */
export function testApiConfig(prefix: string, overrides: Partial<ApiConfig> = {}): ApiConfig {
  return {
    // The environment's defaults (a setting added later has its default here too), then the tests' own.
    ...loadApiConfig({}),
    port: 0,
    redisUrl: testRedisUrl(),
    dataDir: join(tmpdir(), 'berth-test-api', prefix),
    manifestsDir,
    prefix,
    lostAfterMs: 300_000,
    retry: { infraRetries: 2, backoffMs: 0 },
    sweepMs: 500,
    artifactMaxBytes: 1024 ** 3,
    datasetMaxBytes: 256 * 1024 ** 2,
    bootstrapTokenFile: join(tmpdir(), 'berth-test-api', prefix, 'admin-token'),
    // No limits unless a test sets them: tests submit and poll far faster than people do.
    memberQuotas: { queuedJobs: null, gpus: null },
    rateLimit: { perSecond: 100_000, burst: 100_000 },
    images: {
      allow: ['docker.io/berth/**', 'nvcr.io/nvidia/**', '127.0.0.1:*/**', 'localhost:*/**'],
      requireDigest: false,
    },
    webDir: join(__dirname, '../../apps/web/dist'),
    logLevel: 'silent',
    ...overrides,
  };
}

export async function startTestStack(name: string, opts: TestStackOptions = {}): Promise<TestStack> {
  const prefix = opts.prefix ?? testPrefix(name);
  const redisUrl = opts.redisUrl ?? testRedisUrl();
  const config = testApiConfig(prefix, {
    redisUrl,
    manifestsDir: opts.manifestsDir ?? manifestsDir,
    lostAfterMs: opts.lostAfterMs ?? opts.timings?.lostAfterMs ?? 300_000,
    ...(opts.retry ? { retry: opts.retry } : {}),
    ...(opts.apiDataDir ? { dataDir: opts.apiDataDir } : {}),
    ...opts.apiConfig,
  });
  const app = await buildApp(config);
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  const url = typeof address === 'object' && address ? `http://127.0.0.1:${address.port}` : '';
  const admin = await signIn(url, readFileSync(config.bootstrapTokenFile, 'utf8').trim());
  const alice = await addUser(admin, 'alice', 'member');
  const bob = await addUser(admin, 'bob', 'member');
  const workerApi = { url, token: (await addUser(admin, 'worker', 'worker')).token };
  const workerId = opts.workerId ?? `w-${prefix}`;
  const worker =
    opts.worker === false ? undefined : startTestWorker(prefix, { ...opts, redisUrl, workerId, api: workerApi });
  await worker?.ready;
  return {
    app,
    url,
    prefix,
    workerId,
    dataDir: join(tmpdir(), 'berth-test-data', prefix),
    worker,
    admin,
    alice,
    bob,
    workerApi,
    async close() {
      await worker?.close();
      await app.close();
    },
  };
}

async function signIn(url: string, token: string): Promise<TestClient> {
  const res = await fetch(`${url}/v1/me`, { headers: { authorization: `Bearer ${token}` } });
  if (res.status !== 200) throw new Error(`the token does not sign in: ${res.status} ${await res.text()}`);
  return testClient(url, token, ((await res.json()) as { user: User }).user);
}

/** A new user of this role, made by the admin through the API, with a token of their own. */
export async function addUser(
  admin: TestClient,
  name: string,
  role: 'admin' | 'member' | 'worker',
  quotas?: Partial<Quotas>,
): Promise<TestClient> {
  const post = async (path: string, body: unknown) => {
    const res = await admin.fetch(path, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    if (res.status !== 201) throw new Error(`POST ${path}: ${res.status} ${await res.text()}`);
    return res.json() as Promise<Record<string, unknown>>;
  };
  const user = (await post('/v1/users', { name, role, quotas })) as unknown as User;
  const token = await post('/v1/tokens', { name: `${name}-test`, user: user.id });
  return testClient(admin.url, String(token.token), user);
}

/** Uploads the trainer's demo corpus as a `corpus` dataset of the client's (what the pretraining tests train on). */
export async function uploadDemoCorpus(client: TestClient): Promise<Dataset> {
  const res = await client.fetch('/v1/datasets?name=corpus&format=corpus&filename=corpus.txt', {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream' },
    body: new Uint8Array(readFileSync(join(__dirname, '../../payloads/bert/demo/data/corpus.txt'))),
  });
  if (res.status !== 201) throw new Error(`the demo corpus upload answered ${res.status}: ${await res.text()}`);
  return (await res.json()) as Dataset;
}

export async function submit(client: TestClient, spec: unknown): Promise<{ status: number; body: JobRecord }> {
  const res = await client.fetch('/v1/jobs', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(spec),
  });
  return { status: res.status, body: await res.json() };
}

export function fixtureJob(command: string[], extra: Record<string, unknown> = {}) {
  return { manifest: 'custom', params: { image: 'berth/fixture:dev', command }, ...extra };
}

/** The lines of the `log` events among `events` (each event is a batch of lines), in order. */
export function logTexts(events: readonly SseEvent[]): string[] {
  return events.filter((e) => e.event === 'log').flatMap((e) => (JSON.parse(e.data) as { lines: string[] }).lines);
}

/**
 * Reads SSE events until the `end` event, `after` events of type `count` (then aborts, like a dropped connection;
 * for `log` events, the default, `after` counts lines), or the server closing the stream.
 */
export async function readEvents(
  client: TestClient,
  path: string,
  headers: Record<string, string> = {},
  stop: { count?: string; after?: number } = {},
): Promise<SseEvent[]> {
  return readOnce(client, path, headers, stop);
}

/**
 * Follows like a browser's EventSource: when the stream closes before its `end` event, it reconnects with
 * Last-Event-ID. Returns the events and how many times it had to reconnect.
 */
export async function followToEnd(
  client: TestClient,
  path: string,
): Promise<{ events: SseEvent[]; reconnects: number }> {
  let events: SseEvent[] = [];
  for (let reconnects = 0; reconnects < 20; reconnects++) {
    let last: string | undefined;
    for (let i = events.length - 1; i >= 0 && !last; i--) last = events[i]!.id;
    events = events.concat(await readOnce(client, path, last ? { 'last-event-id': last } : {}, {}));
    if (events.at(-1)?.event === 'end') return { events, reconnects };
  }
  throw new Error('the stream never reached its end event');
}

async function readOnce(
  client: TestClient,
  path: string,
  headers: Record<string, string>,
  stop: { count?: string; after?: number },
): Promise<SseEvent[]> {
  const ac = new AbortController();
  const res = await client.fetch(path, { headers, signal: ac.signal });
  if (!res.headers.get('content-type')?.includes('text/event-stream')) {
    throw new Error(`not an event stream: ${res.status} ${await res.text()}`);
  }
  const events: SseEvent[] = [];
  let counted = 0;
  try {
    for await (const ev of parseEvents(res.body as unknown as AsyncIterable<Uint8Array>)) {
      events.push(ev);
      if (ev.event === 'end') {
        ac.abort();
        return events;
      }
      if (ev.event === (stop.count ?? 'log')) {
        counted += ev.event === 'log' ? (JSON.parse(ev.data) as { lines: string[] }).lines.length : 1;
      }
      if (counted >= (stop.after ?? Infinity)) {
        ac.abort();
        return events;
      }
    }
  } catch (err) {
    if (!ac.signal.aborted) throw err;
  }
  return events;
}

/** Polls a job until it reaches a terminal state. */
export async function waitForEnd(client: TestClient, id: string, timeoutMs = 60_000): Promise<JobRecord> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const job = (await (await client.fetch(`/v1/jobs/${id}`)).json()) as JobRecord;
    if (['succeeded', 'failed', 'cancelled'].includes(job.state)) return job;
    if (Date.now() > deadline) {
      const seen = JSON.stringify({ history: job.history, attempts: job.attempts, queue: job.queue });
      throw new Error(`job ${id} still ${job.state} after ${timeoutMs} ms: ${seen}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The engine's view of an attempt's container, as soon as it exists (within 20 s). */
export async function jobContainer(jobId: string, attempt = 1): Promise<Docker.ContainerInspectInfo> {
  const name = `berth-${jobId}-a${attempt}`;
  for (let i = 0; i < 400; i++) {
    const info = await docker
      .getContainer(name)
      .inspect()
      .catch(() => undefined);
    if (info) return info;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`container ${name} never appeared`);
}

/** The berth.job label of every container the engine created since `since` (unix seconds) matching `label`. */
export async function createdContainers(since: number, label: string): Promise<string[]> {
  const events = await docker.getEvents({
    since,
    until: Math.ceil(Date.now() / 1000) + 1,
    filters: { type: ['container'], event: ['create'], label: [label] },
  });
  const text = await new Promise<string>((resolve, reject) => {
    let out = '';
    events.on('data', (d: Buffer) => (out += d.toString()));
    events.on('end', () => resolve(out));
    events.on('error', reject);
  });
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => (JSON.parse(l) as { Actor: { Attributes: Record<string, string> } }).Actor.Attributes['berth.job']!);
}
