import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  classifyPullError,
  ngcCredential,
  pinnedDigest,
  ProgressReporter,
  pullFailure,
  PullTally,
  registryOf,
  type PullMessage,
} from './image-puller.js';
import type { PullProgress } from './container-runtime.js';

describe('registryOf', () => {
  test.each([
    ['nvcr.io/nvidia/pytorch:24.01-py3', 'nvcr.io'],
    ['nvcr.io/nvidia/pytorch@sha256:' + 'a'.repeat(64), 'nvcr.io'],
    ['127.0.0.1:5000/berth/x:v1', '127.0.0.1:5000'],
    ['localhost/x', 'localhost'],
    ['localhost:5000/x', 'localhost:5000'],
    ['Registry/x', 'Registry'],
    ['busybox', 'docker.io'],
    ['busybox:1.36', 'docker.io'],
    ['busybox@sha256:' + 'b'.repeat(64), 'docker.io'],
    ['library/busybox:1.36', 'docker.io'],
    ['berth/fixture:dev', 'docker.io'],
    ['docker.io/library/busybox', 'docker.io'],
    ['index.docker.io/library/busybox', 'docker.io'],
  ])('%s → %s', (image, registry) => {
    expect(registryOf(image)).toBe(registry);
  });
});

describe('pinnedDigest', () => {
  test('the digest of a pinned reference, nothing for a tag', () => {
    const digest = 'sha256:' + 'c'.repeat(64);
    expect(pinnedDigest(`nvcr.io/nvidia/pytorch@${digest}`)).toBe(digest);
    expect(pinnedDigest('127.0.0.1:5000/x:v1')).toBeUndefined();
  });
});

describe('ngcCredential', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'berth-ngc-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('username $oauthtoken and the key as password, for nvcr.io by default', () => {
    expect(ngcCredential({ key: 'nvapi-abc' })).toEqual({
      registry: 'nvcr.io',
      username: '$oauthtoken',
      password: 'nvapi-abc',
    });
    expect(ngcCredential({ key: 'k', registry: '127.0.0.1:5000' })?.registry).toBe('127.0.0.1:5000');
  });

  test('reads the key file, trimmed', () => {
    const file = join(dir, 'key');
    writeFileSync(file, '  nvapi-from-file\n');
    expect(ngcCredential({ keyFile: file })?.password).toBe('nvapi-from-file');
  });

  test('the key wins over the key file (which is then not read)', () => {
    expect(ngcCredential({ key: 'nvapi-direct', keyFile: join(dir, 'absent') })?.password).toBe('nvapi-direct');
  });

  test('undefined when neither is given, or the key is blank', () => {
    expect(ngcCredential({})).toBeUndefined();
    expect(ngcCredential({ key: '  ' })).toBeUndefined();
  });

  test('a missing file is an error naming the path', () => {
    const file = join(dir, 'missing');
    expect(() => ngcCredential({ keyFile: file })).toThrow(`cannot read the NGC API key file ${file} (ENOENT)`);
  });

  test('an unreadable or empty file is an error naming the path', () => {
    // root reads any mode, so "unreadable" here is a directory
    expect(() => ngcCredential({ keyFile: dir })).toThrow(`cannot read the NGC API key file ${dir} (EISDIR)`);
    const empty = join(dir, 'empty');
    writeFileSync(empty, '\n');
    expect(() => ngcCredential({ keyFile: empty })).toThrow(`the NGC API key file ${empty} is empty`);
  });
});

describe('pullFailure', () => {
  test('reads errorDetail, then error; progress lines are no failure', () => {
    expect(pullFailure({ status: 'Downloading', id: 'abc', progressDetail: { current: 1, total: 2 } })).toBeUndefined();
    expect(pullFailure({ errorDetail: { message: 'detail' }, error: 'short' })).toBe('detail');
    expect(pullFailure({ error: 'short' })).toBe('short');
    expect(pullFailure({ errorDetail: {} })).toMatch(/without a message/);
  });
});

describe('classifyPullError', () => {
  // Texts dockerd 20.10 gave for a real pull from a registry answering that way (see test/image-pull.test.ts).
  test.each([
    'unauthorized', // 401, as the HTTP 500 body of /images/create
    'Head "http://127.0.0.1:40031/v2/a/manifests/v1": no basic auth credentials',
    'denied', // 403
    'manifest unknown', // 404
    'error pulling image configuration: download failed after attempts=1: unknown blob', // 404 blob, in-stream
    // Phrasings of other registries and engine versions
    'unauthorized: authentication required',
    'Get "https://nvcr.io/proxy_auth?scope=repository%3Anvidia%2Fpytorch%3Apull": unauthorized',
    "pull access denied for berth/nope, repository does not exist or may require 'docker login': denied: requested access to the resource is denied",
    'manifest for nvcr.io/nvidia/pytorch:99.99-py3 not found: manifest unknown: manifest unknown',
    'name unknown: repository name not known to registry',
    'received unexpected HTTP status: 404 Not Found',
    'received unexpected HTTP status: 403 Forbidden',
    'invalid reference format',
  ])('permanent: %s', (text) => {
    expect(classifyPullError(text, 500)).toBe('permanent');
  });

  test.each([
    'received unexpected HTTP status: 500 Internal Server Error',
    'received unexpected HTTP status: 503 Service Unavailable',
    'received unexpected HTTP status: 429 Too Many Requests',
    'received unexpected HTTP status: 408 Request Timeout',
    'toomanyrequests: You have reached your pull rate limit',
    'Get "https://nvcr.io/v2/": dial tcp: lookup nvcr.io on 10.0.0.2:53: no such host',
    'Get "https://nvcr.io/v2/": net/http: TLS handshake timeout',
    'read tcp 10.0.0.5:43120->1.2.3.4:443: read: connection reset by peer',
    'unexpected EOF',
    'failed to register layer: open /var/lib/docker/overlay2/x: permission denied',
    'write /var/lib/docker/tmp/GetImageBlob1: no space left on device',
    'no progress from the engine for 1500 ms; the pull was abandoned',
    'connect ECONNREFUSED /var/run/docker.sock',
  ])('transient: %s', (text) => {
    expect(classifyPullError(text, 500)).toBe('transient');
  });

  test("the engine's own 4xx is permanent, except 408 and 429", () => {
    expect(classifyPullError('bad parameter', 400)).toBe('permanent');
    expect(classifyPullError('slow down', 429)).toBe('transient');
    expect(classifyPullError('socket hang up')).toBe('transient');
  });
});

// A real pull stream of the fixture image (test/image-pull.test.ts), one message per line.
const realPull: PullMessage[] = [
  { status: 'Pulling from ok', id: 'v1' },
  { status: 'Pulling fs layer', progressDetail: {}, id: 'f42f53d72a18' },
  { status: 'Downloading', progressDetail: { current: 36556, total: 1057227 }, id: 'f42f53d72a18' },
  { status: 'Verifying Checksum', progressDetail: {}, id: 'f42f53d72a18' },
  { status: 'Download complete', progressDetail: {}, id: 'f42f53d72a18' },
  { status: 'Extracting', progressDetail: { current: 32768, total: 1057227 }, id: 'f42f53d72a18' },
  { status: 'Extracting', progressDetail: { current: 1057227, total: 1057227 }, id: 'f42f53d72a18' },
  { status: 'Pull complete', progressDetail: {}, id: 'f42f53d72a18' },
  { status: 'Digest: sha256:9605f6b79a4e5b3223a6b56c6b47e9bfc5328d2eacc401cccb1494b37355a5c3' },
  { status: 'Status: Downloaded newer image for 127.0.0.1:35231/ok:v1' },
];

describe('PullTally', () => {
  test('one layer from first sight to done', () => {
    const tally = new PullTally();
    const seen = realPull.map((m) => (tally.add(m), tally.progress()));
    expect(seen[0]).toEqual({ layers: 0, layersDone: 0, bytesDone: 0, bytesTotal: 0 });
    expect(seen[1]).toEqual({ layers: 1, layersDone: 0, bytesDone: 0, bytesTotal: 0 });
    expect(seen[2]).toEqual({ layers: 1, layersDone: 0, bytesDone: 36556, bytesTotal: 1057227 });
    expect(seen[3]).toEqual({ layers: 1, layersDone: 0, bytesDone: 1057227, bytesTotal: 1057227 });
    expect(seen[6]).toEqual(seen[3]); // extraction is not download
    expect(seen[9]).toEqual({ layers: 1, layersDone: 1, bytesDone: 1057227, bytesTotal: 1057227 });
  });

  test('layers sum; an existing layer counts as done with no bytes; a retry restarts its bytes', () => {
    const tally = new PullTally();
    tally.add({ status: 'Already exists', id: 'aaaaaaaaaaaa' });
    tally.add({ status: 'Pulling fs layer', id: 'bbbbbbbbbbbb' });
    tally.add({ status: 'Waiting', id: 'cccccccccccc' });
    tally.add({ status: 'Downloading', id: 'bbbbbbbbbbbb', progressDetail: { current: 500, total: 1000 } });
    tally.add({ status: 'Downloading', id: 'cccccccccccc', progressDetail: { current: 10, total: 3000 } });
    expect(tally.progress()).toEqual({ layers: 3, layersDone: 1, bytesDone: 510, bytesTotal: 4000 });
    expect(tally.add({ status: 'Retrying in 5 seconds', id: 'bbbbbbbbbbbb' })).toBe(true);
    expect(tally.progress().bytesDone).toBe(10);
  });

  test('messages that are not about a layer change nothing', () => {
    const tally = new PullTally();
    expect(tally.add({ status: 'Pulling from nvidia/pytorch', id: '24.01-py3' })).toBe(false);
    expect(tally.add({ status: 'Digest: sha256:abc' })).toBe(false);
    expect(tally.add({ status: 'Pulling fs layer', id: 'aaaaaaaaaaaa' })).toBe(true);
    expect(tally.add({ status: 'Waiting', id: 'aaaaaaaaaaaa' })).toBe(false);
  });
});

describe('ProgressReporter', () => {
  test('at most one callback per interval, and a final one on flush', () => {
    let now = 0;
    const calls: PullProgress[] = [];
    const reporter = new ProgressReporter(
      (p) => calls.push(p),
      1000,
      () => now,
    );
    for (let i = 1; i <= 30; i++) {
      now = i * 100; // 30 messages over 3 s
      reporter.add({ status: 'Downloading', id: 'aaaaaaaaaaaa', progressDetail: { current: i, total: 30 } });
    }
    expect(calls.map((c) => c.bytesDone)).toEqual([1, 11, 21]);
    reporter.flush();
    expect(calls.map((c) => c.bytesDone)).toEqual([1, 11, 21, 30]);
    reporter.flush(); // nothing new: no repeat
    expect(calls).toHaveLength(4);
  });

  test('unchanged figures are not reported', () => {
    const calls: PullProgress[] = [];
    const reporter = new ProgressReporter((p) => calls.push(p), 0);
    reporter.add({ status: 'Pulling from x', id: 'v1' });
    reporter.flush();
    expect(calls).toHaveLength(0);
  });
});
