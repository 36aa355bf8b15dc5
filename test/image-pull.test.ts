// The worker's image puller on the real Docker engine, pulling from a scripted fake registry: skip, auth, progress, failures.
import Docker from 'dockerode';
import { randomBytes } from 'node:crypto';
import { LaunchError, type PullProgress } from '../apps/worker/src/executor/container-runtime.js';
import { ImagePuller, ngcCredential, type ImagePullerOptions } from '../apps/worker/src/executor/image-puller.js';
import { FakeRegistry, type RecordedRequest } from './support/fake-registry.js';

const docker = new Docker({ socketPath: '/var/run/docker.sock' });
const run = randomBytes(4).toString('hex');
const key = `nvapi-${randomBytes(24).toString('hex')}`;
const basic = (password: string) => `Basic ${Buffer.from(`$oauthtoken:${password}`).toString('base64')}`;

let open: FakeRegistry; // no auth
let secured: FakeRegistry; // Basic auth with the key, like nvcr.io with an NGC key
const toRemove = new Set<string>();
// Everything that must never carry the key, gathered from every test.
const thrownMessages: string[] = [];
const progressSeen: PullProgress[] = [];
const engineRequests: { path: string; body: string; registryAuth: string | undefined }[] = [];

beforeAll(async () => {
  [open, secured] = await Promise.all([
    FakeRegistry.start(),
    FakeRegistry.start({ basicAuth: { username: '$oauthtoken', password: key } }),
  ]);
  // Record what dockerode actually sends to the engine: the URL it built, its body, and the X-Registry-Auth header.
  const modem = docker.modem as unknown as {
    buildRequest: (options: { path: string; headers: Record<string, string> }, ...rest: unknown[]) => unknown;
  };
  const buildRequest = modem.buildRequest.bind(modem);
  modem.buildRequest = (options, ...rest) => {
    engineRequests.push({
      path: options.path,
      body: typeof rest[1] === 'string' ? rest[1] : '',
      registryAuth: options.headers['X-Registry-Auth'],
    });
    return buildRequest(options, ...rest);
  };
});

afterAll(async () => {
  for (const image of toRemove) {
    await docker
      .getImage(image)
      .remove()
      .catch(() => {});
  }
  await Promise.all([open?.close(), secured?.close()]);
});

function repo(name: string): string {
  return `berth-pull-${run}/${name}`;
}

interface Outcome {
  result?: 'present' | 'pulled';
  error?: Error;
  ms: number;
  progress: PullProgress[];
}

async function ensure(
  image: string,
  options: ImagePullerOptions = {},
  signal?: AbortSignal,
  onProgress?: (p: PullProgress) => void,
): Promise<Outcome> {
  toRemove.add(image);
  const progress: PullProgress[] = [];
  const started = Date.now();
  const outcome: Outcome = { ms: 0, progress };
  try {
    outcome.result = await new ImagePuller(docker, options).ensure(
      image,
      (p) => {
        progress.push(p);
        progressSeen.push(p);
        onProgress?.(p);
      },
      signal,
    );
  } catch (err) {
    outcome.error = err as Error;
    thrownMessages.push(String((err as Error).message), String((err as Error).stack));
  }
  outcome.ms = Date.now() - started;
  return outcome;
}

function launchReason(outcome: Outcome): string | undefined {
  return outcome.error instanceof LaunchError ? outcome.error.reason : outcome.error?.message;
}

const manifestHeads = (requests: RecordedRequest[]) =>
  requests.filter((r) => r.method === 'HEAD' && r.url.includes('/manifests/')).length;
const layerGets = (requests: RecordedRequest[], layerDigest: string) =>
  requests.filter((r) => r.method === 'GET' && r.url.endsWith(`/blobs/${layerDigest}`)).length;

async function tagFixture(name: string, tag: string): Promise<void> {
  await docker.getImage('berth/fixture:dev').tag({ repo: name, tag });
  toRemove.add(`${name}:${tag}`);
}

test('a present image is not pulled: no registry request, no progress', async () => {
  const { name } = open.image(repo('present'));
  await tagFixture(name, 'v1');
  const outcome = await ensure(`${name}:v1`);
  expect(outcome.result).toBe('present');
  expect(open.requestsFor(repo('present'))).toEqual([]);
  expect(outcome.progress).toEqual([]);
});

test('a pinned digest is pulled even when a tag of that name is present, and is present afterwards', async () => {
  const { name, manifestDigest } = open.image(repo('pinned'));
  await tagFixture(name, 'v1'); // same name, other content: a tag must not stand in for the digest
  const ref = `${name}@${manifestDigest}`;
  const first = await ensure(ref);
  expect(first.error).toBeUndefined();
  expect(first.result).toBe('pulled');
  expect(open.requestsFor(repo('pinned')).map((r) => `${r.method} ${r.url}`)).toContain(
    `GET /v2/${repo('pinned')}/manifests/${manifestDigest}`,
  );
  const seen = open.requestsFor(repo('pinned')).length;
  expect((await ensure(ref)).result).toBe('present');
  expect(open.requestsFor(repo('pinned'))).toHaveLength(seen);
});

test('with the NGC credential the registry sees Basic $oauthtoken:<key>; progress counts the layer; the image is then present', async () => {
  const image = secured.image(repo('authed'));
  const credential = ngcCredential({ key, registry: secured.host });
  const outcome = await ensure(`${image.name}:v1`, { credentials: credential ? [credential] : [] });
  expect(outcome.error).toBeUndefined();
  expect(outcome.result).toBe('pulled');

  const requests = secured.requestsFor(repo('authed'));
  expect(requests.length).toBeGreaterThanOrEqual(3); // manifest, config, layer
  for (const r of requests) expect(r.headers.authorization).toBe(basic(key));

  expect(outcome.progress.at(-1)).toEqual({
    layers: 1,
    layersDone: 1,
    bytesDone: image.layerBytes,
    bytesTotal: image.layerBytes,
  });
  expect(outcome.progress.length).toBeLessThanOrEqual(Math.floor(outcome.ms / 1000) + 2); // throttled
  const info = await docker.getImage(`${image.name}:v1`).inspect();
  expect(info.RepoDigests).toContain(`${image.name}@${image.manifestDigest}`);

  const pulls = engineRequests.filter((r) => r.path.includes('/images/create'));
  expect(pulls.some((r) => r.registryAuth !== undefined)).toBe(true);
});

test('a wrong key is IMAGE_PULL_FAILED at once, after a single try', async () => {
  const { name } = secured.image(repo('wrong-key'));
  const credentials = [{ registry: secured.host, username: '$oauthtoken', password: 'nvapi-wrong' }];
  // Default backoff (2 s): a retry would show in the time.
  const outcome = await ensure(`${name}:v1`, { credentials });
  expect(launchReason(outcome)).toBe('IMAGE_PULL_FAILED');
  expect(outcome.error?.message).toMatch(/unauthorized/);
  expect(outcome.ms).toBeLessThan(2000);
  expect(manifestHeads(secured.requestsFor(repo('wrong-key')))).toBe(1);
  expect(secured.requestsFor(repo('wrong-key'))[0]?.headers.authorization).toBe(basic('nvapi-wrong'));
});

test('no credential for a registry that asks for one is IMAGE_PULL_FAILED at once', async () => {
  const { name } = secured.image(repo('no-key'));
  const outcome = await ensure(`${name}:v1`);
  expect(launchReason(outcome)).toBe('IMAGE_PULL_FAILED');
  expect(outcome.error?.message).toMatch(/no basic auth credentials/);
  expect(outcome.ms).toBeLessThan(2000);
  // dockerd does not even ask for the manifest without credentials once the ping challenged it.
  expect(manifestHeads(secured.requestsFor(repo('no-key')))).toBe(0);
});

test.each([
  [404, /manifest unknown/],
  [403, /denied/],
  [401, /unauthorized/],
] as const)('a %i for the manifest is IMAGE_PULL_FAILED at once, after a single try', async (status, text) => {
  const name = repo(`status-${status}`);
  open.script(name, { manifestStatus: status });
  const outcome = await ensure(`${open.host}/${name}:v1`);
  expect(launchReason(outcome)).toBe('IMAGE_PULL_FAILED');
  expect(outcome.error?.message).toMatch(text);
  expect(outcome.ms).toBeLessThan(2000);
  expect(manifestHeads(open.requestsFor(name))).toBe(1);
});

test('an error inside the progress stream (a missing blob) is seen although the stream ends normally', async () => {
  const name = repo('missing-blob');
  open.script(name, { blobStatus: 404 });
  const outcome = await ensure(`${open.host}/${name}:v1`);
  expect(launchReason(outcome)).toBe('IMAGE_PULL_FAILED');
  expect(outcome.error?.message).toMatch(/unknown blob/);
  expect(manifestHeads(open.requestsFor(name))).toBe(1);
});

test('500 twice, then served: pulled on the third try', async () => {
  const name = repo('flaky');
  open.script(name, { failManifestRequests: 4 }); // dockerd sends HEAD then GET per try
  const outcome = await ensure(`${open.host}/${name}:v1`, { backoffMs: 50 });
  expect(outcome.error).toBeUndefined();
  expect(outcome.result).toBe('pulled');
  expect(manifestHeads(open.requestsFor(name))).toBe(3);
  expect(outcome.ms).toBeGreaterThanOrEqual(150); // 50 + 100 of backoff
});

test('500 every time: INFRA_ERROR saying the registry kept failing, after `attempts` tries', async () => {
  const name = repo('down');
  open.script(name, { manifestStatus: 500 });
  const outcome = await ensure(`${open.host}/${name}:v1`, { attempts: 3, backoffMs: 50 });
  expect(launchReason(outcome)).toBe('INFRA_ERROR');
  expect(outcome.error?.message).toMatch(/the registry kept failing \(3 tries\).*500 Internal Server Error/);
  expect(manifestHeads(open.requestsFor(name))).toBe(3);
});

test('a 500 for a blob, reported inside the stream after dockerd retried it itself, is INFRA_ERROR', async () => {
  const name = repo('blob-500');
  open.script(name, { blobStatus: 500 });
  // dockerd retries a failing blob itself (~3.5 s, "attempts=6") before it writes the error line: one try of ours is enough.
  const outcome = await ensure(`${open.host}/${name}:v1`, { attempts: 1 });
  expect(launchReason(outcome)).toBe('INFRA_ERROR');
  expect(outcome.error?.message).toMatch(/kept failing \(1 try\).*500 Internal Server Error/);
});

test('a stalled blob is abandoned after stallMs and the pull retried', async () => {
  const image = open.image(repo('stall-once'));
  open.script(repo('stall-once'), { stallBlobs: 1 });
  const outcome = await ensure(`${image.name}:v1`, { stallMs: 1500, backoffMs: 50 });
  expect(outcome.error).toBeUndefined();
  expect(outcome.result).toBe('pulled');
  expect(outcome.ms).toBeGreaterThanOrEqual(1500);
  expect(layerGets(open.requestsFor(repo('stall-once')), image.layerDigest)).toBe(2);
});

test('a blob that always stalls: INFRA_ERROR after `attempts` tries', async () => {
  const image = open.image(repo('stall-always'));
  open.script(repo('stall-always'), { stallBlobs: 99 });
  const outcome = await ensure(`${image.name}:v1`, { stallMs: 1000, attempts: 2, backoffMs: 50 });
  expect(launchReason(outcome)).toBe('INFRA_ERROR');
  expect(outcome.error?.message).toMatch(/kept failing \(2 tries\).*no progress from the engine for 1000 ms/);
  expect(layerGets(open.requestsFor(repo('stall-always')), image.layerDigest)).toBe(2);
});

describe('cancellation', () => {
  test('an aborted signal stops a pull in flight with an AbortError', async () => {
    const name = repo('cancel-mid-pull');
    open.script(name, { stallBlobs: 1 });
    const ac = new AbortController();
    // Cancel once the engine reports the layer, i.e. while its blob hangs.
    const outcome = await ensure(`${open.host}/${name}:v1`, {}, ac.signal, () => ac.abort());
    expect(outcome.error?.name).toBe('AbortError');
    expect(outcome.ms).toBeLessThan(2000);
  });

  test('a signal aborted before the call: AbortError, no registry request', async () => {
    const name = repo('cancel-before');
    const outcome = await ensure(`${open.host}/${name}:v1`, {}, AbortSignal.abort());
    expect(outcome.error?.name).toBe('AbortError');
    expect(open.requestsFor(name)).toEqual([]);
  });

  test('an abort during the backoff between tries ends the wait at once', async () => {
    const name = repo('cancel-backoff');
    open.script(name, { manifestStatus: 500 });
    const outcome = await ensure(`${open.host}/${name}:v1`, { backoffMs: 10_000 }, AbortSignal.timeout(1000));
    expect(outcome.error?.name).toBe('AbortError');
    expect(outcome.ms).toBeLessThan(3000);
    expect(manifestHeads(open.requestsFor(name))).toBe(1);
  });
});

test('the key is in no error message, progress object, registry URL, engine request URL or body', () => {
  // The checks below can fail: the key did travel (to the secured registry, in the header), and errors were thrown.
  expect(secured.requests.some((r) => r.headers.authorization === basic(key))).toBe(true);
  expect(
    engineRequests.some((r) => r.registryAuth && Buffer.from(r.registryAuth, 'base64').toString().includes(key)),
  ).toBe(true);
  expect(thrownMessages.length).toBeGreaterThan(10);
  expect(progressSeen.length).toBeGreaterThan(0);

  const everywhere = [
    ...thrownMessages,
    ...progressSeen.map((p) => JSON.stringify(p)),
    ...[...open.requests, ...secured.requests].map((r) => r.url),
    ...engineRequests.flatMap((r) => [r.path, r.body]),
  ];
  for (const text of everywhere) {
    expect(text).not.toContain(key);
    expect(text).not.toContain(encodeURIComponent(key));
  }
});
