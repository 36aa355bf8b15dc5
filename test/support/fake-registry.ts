// A tiny Docker Registry HTTP API v2 server that the real dockerd pulls from, scripted per repository for failure modes.
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';

const MANIFEST_TYPE = 'application/vnd.docker.distribution.manifest.v2+json';
const CONFIG_TYPE = 'application/vnd.docker.container.image.v1+json';
const LAYER_TYPE = 'application/vnd.docker.image.rootfs.diff.tar.gzip';

/** How one repository misbehaves; counters run per repository. */
export interface RepositoryScript {
  /** Every manifest request is answered with this status and a registry-style error body. */
  manifestStatus?: 401 | 403 | 404 | 500 | 503;
  /** The first N manifest requests get 500; later ones are served. dockerd sends a HEAD then a GET per pull by tag. */
  failManifestRequests?: number;
  /** Every blob request is answered with this status (the manifest is served, so dockerd has begun its progress stream). */
  blobStatus?: 404 | 500;
  /** The first N layer-blob GETs send headers and a few bytes, then nothing until the client gives up. */
  stallBlobs?: number;
}

export interface RecordedRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  status: number;
}

export interface ServedImage {
  /** `host/repo` — add `:tag` (any tag serves the image) or `@manifestDigest`. */
  name: string;
  manifestDigest: string;
  configDigest: string;
  layerDigest: string;
  layerBytes: number;
}

interface Blob {
  type: string;
  bytes: Buffer;
}

interface Repository extends ServedImage {
  manifest: Buffer;
  blobs: Map<string, Blob>;
  manifestRequests: number;
  blobRequests: number;
}

export interface FakeRegistryOptions {
  /**
   * Basic credentials every request must carry. The ping (`GET /v2/`) then answers 401 with a Basic challenge — dockerd
   * only sends credentials to a registry whose ping challenged it, and the ping names no repository, so this is per
   * server rather than per repository.
   */
  basicAuth?: { username: string; password: string };
  /** The local image whose filesystem is served (default berth/fixture:dev). */
  sourceImage?: string;
}

export class FakeRegistry {
  readonly requests: RecordedRequest[] = [];
  private readonly scripts = new Map<string, RepositoryScript>();
  private readonly repositories = new Map<string, Repository>();
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly host: string,
    private readonly source: SavedImage,
    private readonly basicAuth: FakeRegistryOptions['basicAuth'],
  ) {}

  static async start(options: FakeRegistryOptions = {}): Promise<FakeRegistry> {
    const source = await saveImage(options.sourceImage ?? 'berth/fixture:dev');
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const { port } = server.address() as AddressInfo;
    const registry = new FakeRegistry(server, `127.0.0.1:${port}`, source, options.basicAuth);
    server.on('connection', (socket) => {
      registry.sockets.add(socket);
      socket.once('close', () => registry.sockets.delete(socket));
    });
    server.on('request', (req, res) => registry.handle(req, res));
    return registry;
  }

  /** Scripts a repository's failures (replacing any earlier script and resetting its counters). */
  script(repository: string, script: RepositoryScript): void {
    this.scripts.set(repository, script);
    const repo = this.repositories.get(repository);
    if (repo) {
      repo.manifestRequests = 0;
      repo.blobRequests = 0;
    }
  }

  /** The image a repository serves: built on first use, with a layer of its own so dockerd has never seen its blobs. */
  image(repository: string): ServedImage {
    const repo = this.repository(repository);
    const { name, manifestDigest, configDigest, layerDigest, layerBytes } = repo;
    return { name, manifestDigest, configDigest, layerDigest, layerBytes };
  }

  /** Requests for one repository (the ping is not one). */
  requestsFor(repository: string): RecordedRequest[] {
    const prefix = `/v2/${repository}/`;
    return this.requests.filter((r) => r.url.startsWith(prefix));
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private repository(name: string): Repository {
    let repo = this.repositories.get(name);
    if (!repo) {
      repo = buildRepository(this.host, name, this.source);
      this.repositories.set(name, repo);
    }
    return repo;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const entry: RecordedRequest = {
      method: req.method ?? '',
      url: req.url ?? '',
      headers: req.headers,
      status: 0,
    };
    this.requests.push(entry);
    const reply = (status: number, headers: Record<string, string | number>, body?: Buffer | string) => {
      entry.status = status;
      res.writeHead(status, { 'docker-distribution-api-version': 'registry/2.0', ...headers });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    const error = (status: number, code: string, message: string) =>
      reply(
        status,
        { 'content-type': 'application/json' },
        JSON.stringify({ errors: [{ code, message, detail: null }] }),
      );

    if (!this.authorized(req.headers.authorization)) {
      return reply(401, { 'www-authenticate': 'Basic realm="fake"', 'content-type': 'application/json' }, unauthorized);
    }
    const url = new URL(req.url ?? '/', 'http://registry');
    if (url.pathname === '/v2/' || url.pathname === '/v2')
      return reply(200, { 'content-type': 'application/json' }, '{}');

    const match = /^\/v2\/(.+)\/(manifests|blobs)\/([^/]+)$/.exec(url.pathname);
    if (!match || (req.method !== 'GET' && req.method !== 'HEAD')) return error(404, 'UNSUPPORTED', 'not supported');
    const [, name = '', kind, reference = ''] = match;
    const script = this.scripts.get(name) ?? {};
    const repo = this.repository(name);

    if (kind === 'manifests') {
      const n = ++repo.manifestRequests;
      const status = script.manifestStatus;
      if (status === 401) {
        return reply(
          401,
          { 'www-authenticate': 'Basic realm="fake"', 'content-type': 'application/json' },
          unauthorized,
        );
      }
      if (status === 403) return error(403, 'DENIED', 'requested access to the resource is denied');
      if (status === 404) return error(404, 'MANIFEST_UNKNOWN', 'manifest unknown');
      if (status !== undefined || n <= (script.failManifestRequests ?? 0)) {
        return reply(status ?? 500, { 'content-type': 'text/plain' }, 'fake registry: internal error\n');
      }
      if (reference.startsWith('sha256:') && reference !== repo.manifestDigest) {
        return error(404, 'MANIFEST_UNKNOWN', 'manifest unknown');
      }
      return reply(
        200,
        {
          'content-type': MANIFEST_TYPE,
          'content-length': repo.manifest.length,
          'docker-content-digest': repo.manifestDigest,
        },
        repo.manifest,
      );
    }

    const blob = repo.blobs.get(reference);
    if (script.blobStatus === 500)
      return reply(500, { 'content-type': 'text/plain' }, 'fake registry: internal error\n');
    if (!blob || script.blobStatus === 404) return error(404, 'BLOB_UNKNOWN', 'blob unknown to registry');
    const headers = {
      'content-type': blob.type,
      'content-length': blob.bytes.length,
      'docker-content-digest': reference,
    };
    if (req.method === 'GET' && blob.type === LAYER_TYPE && ++repo.blobRequests <= (script.stallBlobs ?? 0)) {
      entry.status = 200;
      res.writeHead(200, headers);
      res.write(blob.bytes.subarray(0, 16));
      return; // and nothing more: close() destroys the socket if the client never gives up
    }
    if (req.method === 'GET' && blob.type === LAYER_TYPE) {
      entry.status = 200;
      res.writeHead(200, headers);
      void pace(res, blob.bytes);
      return;
    }
    return reply(200, headers, blob.bytes);
  }

  private authorized(header: string | undefined): boolean {
    if (!this.basicAuth) return true;
    const expected = Buffer.from(`${this.basicAuth.username}:${this.basicAuth.password}`).toString('base64');
    return header === `Basic ${expected}`;
  }
}

/**
 * Sends a layer in 64 KiB pieces a few milliseconds apart, as a real registry over a real network does. Sent at once
 * over loopback, the engine may report a layer's download only as complete, never as `Downloading` with its size, and
 * the pull's byte count stays 0.
 */
async function pace(res: ServerResponse, bytes: Buffer): Promise<void> {
  for (let at = 0; at < bytes.length && !res.destroyed; at += 64 * 1024) {
    res.write(bytes.subarray(at, at + 64 * 1024));
    await new Promise((r) => setTimeout(r, 5));
  }
  res.end();
}

const unauthorized = JSON.stringify({
  errors: [{ code: 'UNAUTHORIZED', message: 'authentication required', detail: null }],
});

interface SavedImage {
  config: Record<string, unknown>;
  /** The layer's tar up to (not including) its end-of-archive blocks. */
  layerEntries: Buffer;
}

const saved = new Map<string, Promise<SavedImage>>();

/** `docker save` of a single-layer image, parsed: its config and its layer's tar entries. */
function saveImage(image: string): Promise<SavedImage> {
  let promise = saved.get(image);
  if (!promise) {
    promise = (async () => {
      const { stdout } = await promisify(execFile)('docker', ['save', image], {
        encoding: 'buffer',
        maxBuffer: 512 * 1024 * 1024,
      });
      const files = readTar(stdout);
      const [entry] = JSON.parse(mustGet(files, 'manifest.json').toString()) as { Config: string; Layers: string[] }[];
      if (!entry || entry.Layers.length !== 1) throw new Error(`${image} must have exactly one layer to be served`);
      const layer = mustGet(files, entry.Layers[0] ?? '');
      return {
        config: JSON.parse(mustGet(files, entry.Config).toString()) as Record<string, unknown>,
        layerEntries: layer.subarray(0, tarEnd(layer)),
      };
    })();
    saved.set(image, promise);
  }
  return promise;
}

function buildRepository(host: string, name: string, source: SavedImage): Repository {
  // A file of its own makes the layer (and so its blob digest) new to dockerd, so it is really downloaded every time.
  const marker = tarEntry('berth-fake-registry', Buffer.from(`${name} ${randomBytes(16).toString('hex')}\n`));
  const layerTar = Buffer.concat([source.layerEntries, marker, Buffer.alloc(1024)]);
  const layer = gzipSync(layerTar);
  const rootfs = { type: 'layers', diff_ids: [sha256(layerTar)] };
  const config = Buffer.from(JSON.stringify({ ...source.config, rootfs }));
  const configDigest = sha256(config);
  const layerDigest = sha256(layer);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MANIFEST_TYPE,
      config: { mediaType: CONFIG_TYPE, size: config.length, digest: configDigest },
      layers: [{ mediaType: LAYER_TYPE, size: layer.length, digest: layerDigest }],
    }),
  );
  return {
    name: `${host}/${name}`,
    manifestDigest: sha256(manifest),
    configDigest,
    layerDigest,
    layerBytes: layer.length,
    manifest,
    blobs: new Map([
      [configDigest, { type: CONFIG_TYPE, bytes: config }],
      [layerDigest, { type: LAYER_TYPE, bytes: layer }],
    ]),
    manifestRequests: 0,
    blobRequests: 0,
  };
}

function sha256(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

function mustGet(files: Map<string, Buffer>, name: string): Buffer {
  const file = files.get(name);
  if (!file) throw new Error(`docker save output has no ${name}`);
  return file;
}

// Minimal ustar: enough for `docker save` output and one appended regular file.
function tarField(header: Buffer, start: number, length: number): string {
  return header.toString('latin1', start, start + length).replace(/\0.*$/s, '');
}

function tarSize(header: Buffer): number {
  return parseInt(tarField(header, 124, 12).trim() || '0', 8);
}

/** Offset of the end-of-archive marker (the first all-zero header block). */
function tarEnd(tar: Buffer): number {
  let offset = 0;
  while (offset + 512 <= tar.length) {
    const header = tar.subarray(offset, offset + 512);
    if (header.every((b) => b === 0)) return offset;
    offset += 512 + Math.ceil(tarSize(header) / 512) * 512;
  }
  return offset;
}

function readTar(tar: Buffer): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  let offset = 0;
  while (offset + 512 <= tar.length) {
    const header = tar.subarray(offset, offset + 512);
    if (header.every((b) => b === 0)) break;
    const size = tarSize(header);
    const prefix = tarField(header, 345, 155);
    const name = (prefix ? `${prefix}/` : '') + tarField(header, 0, 100);
    const type = String.fromCharCode(header[156] ?? 0);
    if (type === '0' || type === '\0')
      files.set(name.replace(/^\.\//, ''), tar.subarray(offset + 512, offset + 512 + size));
    offset += 512 + Math.ceil(size / 512) * 512;
  }
  return files;
}

function tarEntry(name: string, data: Buffer): Buffer {
  const header = Buffer.alloc(512);
  const put = (value: string, start: number) => header.write(value, start, 'latin1');
  put(name, 0);
  put('0000644\0', 100);
  put('0000000\0', 108);
  put('0000000\0', 116);
  put(`${data.length.toString(8).padStart(11, '0')}\0`, 124);
  put(
    `${Math.floor(Date.now() / 1000)
      .toString(8)
      .padStart(11, '0')}\0`,
    136,
  );
  put('        ', 148);
  put('0', 156);
  put('ustar\0', 257);
  put('00', 263);
  const sum = header.reduce((a, b) => a + b, 0);
  put(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  const padding = Buffer.alloc((512 - (data.length % 512)) % 512);
  return Buffer.concat([header, data, padding]);
}
