// Makes a job's image present on the Docker engine: skips present images, authenticates to NGC, reports progress, retries what a retry can fix.
import { readFileSync } from 'node:fs';
import type { Readable } from 'node:stream';
import type Docker from 'dockerode';
import { LaunchError, type ImageSource, type PullProgress } from './container-runtime.js';

export interface RegistryCredential {
  /** Registry host as `registryOf` names it (`nvcr.io`, `host:port`). */
  registry: string;
  username: string;
  password: string;
}

export interface ImagePullerOptions {
  /** Pulls tried before a retryable failure (5xx, connection error, stall) becomes INFRA_ERROR. Default 3. */
  attempts?: number;
  /** Wait before the second try; it doubles for each later one. Default 2000 ms. */
  backoffMs?: number;
  /** A pull with no progress message for this long is abandoned and counts as a retryable timeout. Default 120000 ms. */
  stallMs?: number;
  /** Credentials by registry host. They reach the engine only in the X-Registry-Auth header. */
  credentials?: RegistryCredential[] | undefined;
  /** Least time between two progress callbacks; a final one follows regardless. Default 1000 ms. */
  progressIntervalMs?: number;
}

/** One line of the engine's pull stream. */
export interface PullMessage {
  status?: string;
  id?: string;
  progressDetail?: { current?: number; total?: number };
  error?: string;
  errorDetail?: { message?: string; code?: number };
}

/**
 * Pulls through the engine with the registry credential for the image's host. Failures the caller must fix (401, 403,
 * 404) are LaunchError IMAGE_PULL_FAILED at once; the rest (5xx, connection errors, stalls) are tried `attempts` times
 * with doubling backoff, then LaunchError INFRA_ERROR.
 */
export class ImagePuller implements ImageSource {
  private readonly attempts: number;
  private readonly backoffMs: number;
  private readonly stallMs: number;
  private readonly progressIntervalMs: number;
  private readonly credentials: RegistryCredential[];

  constructor(
    private readonly docker: Docker,
    options: ImagePullerOptions = {},
  ) {
    this.attempts = Math.max(1, options.attempts ?? 3);
    this.backoffMs = options.backoffMs ?? 2000;
    this.stallMs = options.stallMs ?? 120_000;
    this.progressIntervalMs = options.progressIntervalMs ?? 1000;
    this.credentials = options.credentials ?? [];
  }

  /**
   * 'present' when nothing had to be pulled. Progress restarts from zero on each try. A cancelled pull throws an error
   * named AbortError, and the engine abandons it.
   */
  async ensure(
    image: string,
    onProgress: (p: PullProgress) => void,
    signal?: AbortSignal,
  ): Promise<'present' | 'pulled'> {
    if (signal?.aborted) throw new PullAbortedError(image);
    if (await this.present(image)) return 'present';
    for (let attempt = 1; ; attempt++) {
      let failure: string;
      try {
        await this.pullOnce(image, onProgress, signal);
        if (await this.present(image)) return 'pulled';
        failure = 'the pull stream ended but the image is not on the engine';
      } catch (err) {
        if (signal?.aborted) throw new PullAbortedError(image);
        if (err instanceof ProgressCallbackError) throw err.cause;
        if (err instanceof LaunchError) throw err;
        failure = err instanceof PullStalledError ? err.message : pullErrorText(err);
        if (classifyPullError(failure, statusOf(err)) === 'permanent') {
          throw new LaunchError('IMAGE_PULL_FAILED', this.redact(`pulling ${image} failed: ${failure}`));
        }
      }
      if (attempt >= this.attempts) {
        throw new LaunchError(
          'INFRA_ERROR',
          this.redact(
            `pulling ${image}: the registry kept failing (${attempt} ${attempt === 1 ? 'try' : 'tries'}); last error: ${failure}`,
          ),
        );
      }
      await sleep(this.backoffMs * 2 ** (attempt - 1), image, signal);
    }
  }

  private async present(image: string): Promise<boolean> {
    let info: Docker.ImageInspectInfo;
    try {
      info = await this.docker.getImage(image).inspect();
    } catch (err) {
      if (statusOf(err) === 404) return false;
      throw new LaunchError(
        'INFRA_ERROR',
        this.redact(`the Docker engine could not inspect ${image}: ${pullErrorText(err)}`),
      );
    }
    // The engine resolves `name@digest` by digest already; checking RepoDigests keeps a same-named tag from counting.
    const digest = pinnedDigest(image);
    return digest === undefined || (info.RepoDigests ?? []).some((d) => d.endsWith(`@${digest}`));
  }

  /** One pull through the engine; resolves when its stream ends without an error line. */
  private async pullOnce(image: string, onProgress: (p: PullProgress) => void, signal?: AbortSignal): Promise<void> {
    const abort = new AbortController();
    const cancel = () => abort.abort();
    signal?.addEventListener('abort', cancel, { once: true });
    let stalled = false;
    // Armed before the request: the engine sends no response headers until the registry has answered something.
    const watchdog = setTimeout(() => {
      stalled = true;
      abort.abort();
    }, this.stallMs);
    const reporter = new ProgressReporter(onProgress, this.progressIntervalMs);
    let stream: Readable | undefined;
    const destroy = () => stream?.destroy();
    abort.signal.addEventListener('abort', destroy, { once: true });
    try {
      const credential = this.credentialFor(image);
      stream = (await this.docker.pull(image, {
        abortSignal: abort.signal,
        // dockerode sends `authconfig` only as the X-Registry-Auth header and deletes it before building the URL.
        ...(credential
          ? {
              authconfig: {
                username: credential.username,
                password: credential.password,
                serveraddress: credential.registry,
              },
            }
          : {}),
      })) as unknown as Readable;
      if (abort.signal.aborted) stream.destroy();
      stream.setEncoding('utf8');
      const handle = (line: string) => {
        watchdog.refresh();
        const message = parseMessage(line);
        if (!message) return;
        // The stream of a failed pull still ends normally: an error line is the only sign of failure.
        const failure = pullFailure(message);
        if (failure !== undefined) throw new PullStreamError(failure);
        reporter.add(message);
      };
      let pending = '';
      for await (const chunk of stream) {
        const lines = (pending + String(chunk)).split('\n');
        pending = lines.pop() ?? '';
        lines.forEach(handle);
      }
      handle(pending);
    } catch (err) {
      if (stalled) throw new PullStalledError(this.stallMs);
      throw err;
    } finally {
      clearTimeout(watchdog);
      signal?.removeEventListener('abort', cancel);
      abort.signal.removeEventListener('abort', destroy);
      stream?.destroy();
      reporter.flush();
    }
  }

  private credentialFor(image: string): RegistryCredential | undefined {
    const registry = registryOf(image).toLowerCase();
    return this.credentials.find((c) => c.registry.toLowerCase() === registry);
  }

  /** Belt and braces: no daemon text is known to echo a credential, but a message must never carry one. */
  private redact(text: string): string {
    let out = text;
    for (const { username, password } of this.credentials) {
      if (!password) continue;
      out = out.split(password).join('[redacted]');
      out = out.split(Buffer.from(`${username}:${password}`).toString('base64')).join('[redacted]');
    }
    return out;
  }
}

/** The registry host of an image reference: `docker.io` when the reference names none. */
export function registryOf(image: string): string {
  const slash = image.indexOf('/');
  if (slash === -1) return 'docker.io';
  const first = image.slice(0, slash);
  // Docker's rule: the first component is a host when it has a dot or a port, is localhost, or has capitals.
  const isHost = first.includes('.') || first.includes(':') || first === 'localhost' || first !== first.toLowerCase();
  if (!isHost || first === 'index.docker.io') return 'docker.io';
  return first;
}

/**
 * The worker's NGC credential: username `$oauthtoken`, password the API key. `key` wins over `keyFile`; neither gives
 * undefined. A key file that cannot be read is an error naming the path, never its content.
 */
export function ngcCredential(opts: {
  key?: string | undefined;
  keyFile?: string | undefined;
  registry?: string;
}): RegistryCredential | undefined {
  const registry = opts.registry ?? 'nvcr.io';
  let key = opts.key?.trim();
  if (!key && opts.keyFile) {
    try {
      key = readFileSync(opts.keyFile, 'utf8').trim();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
      throw new Error(`cannot read the NGC API key file ${opts.keyFile} (${code})`);
    }
    if (!key) throw new Error(`the NGC API key file ${opts.keyFile} is empty`);
  }
  return key ? { registry, username: '$oauthtoken', password: key } : undefined;
}

/** The digest of a pinned reference (`name@sha256:…`), else undefined. */
export function pinnedDigest(image: string): string | undefined {
  const at = image.lastIndexOf('@');
  return at === -1 ? undefined : image.slice(at + 1);
}

/** The failure an engine message reports, if it reports one. */
export function pullFailure(message: PullMessage): string | undefined {
  if (message.errorDetail === undefined && message.error === undefined) return undefined;
  return message.errorDetail?.message || message.error || 'the engine reported a pull error without a message';
}

/*
 * Why text: dockerd 20.10 (API 1.41) answers every registry failure of a pull as HTTP 500 on /images/create, or, once
 * it has begun streaming, as an error line inside a 200 response; the registry's own status code survives in neither,
 * only its rendered error text does ("unauthorized", "denied", "manifest unknown"). So these match the registry error
 * codes as distribution renders them ("<code>" alone, or "<code>: <detail>", or ending a wrapped error) and dockerd's
 * own phrasings of 4xx answers — narrowly, so that e.g. a local "permission denied" stays retryable infrastructure.
 */
const PERMANENT: RegExp[] = [
  /(?:^|: )unauthorized(?::|$)/i, // 401
  /\bauthentication required\b/i, // 401
  /\bno basic auth credentials\b/i, // 401 challenge, and no credential for that registry
  /(?:^|: )denied(?::|$)/i, // 403
  /\brequested access to the resource is denied\b/i, // 403
  /\bpull access denied\b/i, // 401/403/404 on Docker Hub
  /\bmanifest unknown\b/i, // 404 tag or digest
  /\bname unknown\b/i, // 404 repository
  /\b(?:unknown blob|blob unknown)\b/i, // 404 blob
  /\bmanifest for \S+ not found\b/i, // 404, dockerd's phrasing
  /\bunexpected HTTP status: 4(?!08|29)\d\d\b/i, // any other 4xx without a registry error body, except 408/429
  /\binvalid reference format\b/i, // the reference itself is malformed
];

/** Permanent failures are the caller's to fix (credential, name, tag); transient ones may pass on a retry. */
export function classifyPullError(text: string, statusCode?: number): 'permanent' | 'transient' {
  if (PERMANENT.some((re) => re.test(text))) return 'permanent';
  // The engine itself rejects a bad request (e.g. 400 for a malformed reference) with a 4xx of its own.
  if (statusCode !== undefined && statusCode >= 400 && statusCode < 500 && statusCode !== 408 && statusCode !== 429) {
    return 'permanent';
  }
  return 'transient';
}

interface LayerTally {
  done: boolean;
  current: number;
  total: number;
}

const LAYER_STATUSES = new Set([
  'Pulling fs layer',
  'Waiting',
  'Downloading',
  'Verifying Checksum',
  'Download complete',
  'Extracting',
  'Pull complete',
  'Already exists',
]);

/** Sums the engine's per-layer pull messages into one progress figure. */
export class PullTally {
  private readonly layers = new Map<string, LayerTally>();

  /** True when the message changed the figure. */
  add(message: PullMessage): boolean {
    const { id, status = '' } = message;
    if (!id || !(LAYER_STATUSES.has(status) || status.startsWith('Retrying'))) return false;
    let layer = this.layers.get(id);
    const before = layer ? { ...layer } : undefined;
    if (!layer) {
      layer = { done: false, current: 0, total: 0 };
      this.layers.set(id, layer);
    }
    const detail = message.progressDetail ?? {};
    if (status === 'Downloading') {
      if (typeof detail.total === 'number' && detail.total > 0) layer.total = detail.total;
      if (typeof detail.current === 'number') layer.current = Math.max(layer.current, detail.current);
    } else if (status === 'Verifying Checksum' || status === 'Download complete') {
      layer.current = layer.total;
    } else if (status === 'Pull complete' || status === 'Already exists') {
      layer.done = true;
      layer.current = layer.total;
    } else if (status.startsWith('Retrying')) {
      layer.current = 0;
    }
    return !before || before.done !== layer.done || before.current !== layer.current || before.total !== layer.total;
  }

  progress(): PullProgress {
    const p: PullProgress = { layers: 0, layersDone: 0, bytesDone: 0, bytesTotal: 0 };
    for (const layer of this.layers.values()) {
      p.layers += 1;
      if (layer.done) p.layersDone += 1;
      p.bytesDone += layer.current;
      p.bytesTotal += layer.total;
    }
    return p;
  }
}

/** Feeds a tally and calls back at most once per interval, plus once more on flush when something is unreported. */
export class ProgressReporter {
  private readonly tally = new PullTally();
  private last = -Infinity;
  private unreported = false;

  constructor(
    private readonly onProgress: (p: PullProgress) => void,
    private readonly intervalMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  add(message: PullMessage): void {
    if (!this.tally.add(message)) return;
    this.unreported = true;
    if (this.now() - this.last >= this.intervalMs) this.emit();
  }

  flush(): void {
    if (this.unreported) this.emit();
  }

  private emit(): void {
    this.last = this.now();
    this.unreported = false;
    try {
      this.onProgress(this.tally.progress());
    } catch (err) {
      throw new ProgressCallbackError(err);
    }
  }
}

function parseMessage(line: string): PullMessage | undefined {
  const text = line.trim();
  if (!text) return undefined;
  try {
    const parsed: unknown = JSON.parse(text);
    return typeof parsed === 'object' && parsed !== null ? (parsed as PullMessage) : undefined;
  } catch {
    return undefined;
  }
}

/** The useful text of a dockerode error: its JSON message, or its message without dockerode's "(HTTP code …)" prefix. */
function pullErrorText(err: unknown): string {
  const json = (err as { json?: { message?: unknown } } | null)?.json;
  if (json && typeof json.message === 'string') return json.message;
  const message = err instanceof Error ? err.message : String(err);
  return message.replace(/^\(HTTP code \d+\) [^-]*- /, '').trim();
}

function statusOf(err: unknown): number | undefined {
  const status = typeof err === 'object' && err !== null ? (err as { statusCode?: unknown }).statusCode : undefined;
  return typeof status === 'number' ? status : undefined;
}

function sleep(ms: number, image: string, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(new PullAbortedError(image));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

class PullAbortedError extends Error {
  override readonly name = 'AbortError';
  constructor(image: string) {
    super(`the pull of ${image} was cancelled`);
  }
}

class PullStreamError extends Error {}

class PullStalledError extends Error {
  constructor(stallMs: number) {
    super(`no progress from the engine for ${stallMs} ms; the pull was abandoned`);
  }
}

class ProgressCallbackError extends Error {
  constructor(override readonly cause: unknown) {
    super('the progress callback threw');
  }
}
