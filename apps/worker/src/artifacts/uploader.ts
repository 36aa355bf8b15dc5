// Uploads an attempt's results to the API: each checkpoint once it is complete (the trainer renames its folder into
// place last), and everything the recipe names when the container has exited. Files are read through ResultsTree,
// which never follows a path the job controls.
import { ApiAway, apiBusy, authorization, untilApiAnswers, type ApiTarget } from '../api-client.js';
import type { ArtifactKind } from '@berth/contracts';
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { LaunchError } from '../executor/container-runtime.js';
import { globToRegExp } from '../executor/success.js';
import type { ResultsScan, ResultsTree } from './results-tree.js';

export interface ArtifactRuleLike {
  glob: string;
  kind: ArtifactKind;
}

const completeCheckpoint = /(^|\/)checkpoints\/step-\d+\//;

/** The API refused an upload because this attempt no longer owns the job (409 ATTEMPT_FENCED): it must stop. */
export class AttemptFenced extends Error {
  override readonly name = 'AttemptFenced';
}

interface Opened {
  handle: FileHandle;
  size: number;
  mtimeMs: number;
}

export class ArtifactUploader {
  /** path → size:mtime of what was uploaded, so an unchanged file is not sent twice. */
  private readonly sent = new Map<string, string>();
  private readonly rules: { re: RegExp; kind: ArtifactKind }[];

  constructor(
    private readonly api: ApiTarget,
    private readonly jobId: string,
    private readonly attempt: number,
    private readonly results: ResultsTree,
    rules: readonly ArtifactRuleLike[],
  ) {
    this.rules = rules.map((r) => ({ re: globToRegExp(r.glob), kind: r.kind }));
  }

  /** Uploads the checkpoints of a scan completed since the last call. */
  async uploadCheckpoints(scan: ResultsScan): Promise<number> {
    return this.uploadFiles(scan.files.map((f) => f.path).filter((f) => completeCheckpoint.test(f)));
  }

  /** Uploads every result file a recipe rule names (all of them without rules), then the attempt's full log. */
  async uploadAll(scan: ResultsScan, logFile: string | undefined): Promise<number> {
    const files = scan.files
      .map((f) => f.path)
      .filter((f) => this.rules.length === 0 || this.rules.some((r) => r.re.test(f)));
    let n = await this.uploadFiles(files);
    if (logFile) {
      // The log file is the worker's own, in a folder no job can reach; it is opened by path.
      const opened = await openOwn(logFile);
      if (opened && (await this.upload(opened, `logs/attempt-${this.attempt}.log`, 'log'))) n++;
    }
    return n;
  }

  private async uploadFiles(files: readonly string[]): Promise<number> {
    let n = 0;
    for (const rel of files) {
      const kind = completeCheckpoint.test(rel)
        ? 'checkpoint'
        : (this.rules.find((r) => r.re.test(rel))?.kind ?? 'other');
      const opened = await this.results.open(rel);
      if (opened && (await this.upload(opened, rel, kind))) n++;
    }
    return n;
  }

  /** Sends one opened file and closes it; false when it was unchanged since it was last sent, or changed while sent. */
  private async upload(file: Opened, path: string, kind: ArtifactKind): Promise<boolean> {
    const { handle, size, mtimeMs } = file;
    try {
      const version = `${size}:${mtimeMs}`;
      if (this.sent.get(path) === version) return false;
      // An API that is away (restarting, its Redis down) is waited for; each try sends the file whole again.
      await untilApiAnswers(async () => {
        const status = await this.put(handle, size, path, kind);
        if (status === 201) return;
        if (status === 409) throw new AttemptFenced(`the API refused ${path}: attempt ${this.attempt} was fenced`);
        if (apiBusy(status)) throw new ApiAway(`uploading ${path}: the API answered ${status}`);
        // The store is full, or the upload was refused: another try would end the same.
        throw new LaunchError('ARTIFACT_UPLOAD_FAILED', `uploading ${path} failed: the API answered ${status}`);
      }, this.api.graceMs).catch((err: unknown) => {
        if (err instanceof ApiAway) {
          throw new LaunchError('ARTIFACT_UPLOAD_FAILED', `${err.message}, and kept failing`);
        }
        throw err;
      });
      // A file the job changed while it was read is sent again at the next scan, whole.
      const after = await handle.stat();
      if (after.size !== size || after.mtimeMs !== mtimeMs) return false;
      this.sent.set(path, version);
      return true;
    } finally {
      await handle.close();
    }
  }

  private async put(handle: FileHandle, size: number, path: string, kind: ArtifactKind): Promise<number> {
    const url = new URL(
      `/v1/jobs/${this.jobId}/artifacts/${path.split('/').map(encodeURIComponent).join('/')}`,
      this.api.url,
    );
    const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = request(url, {
      method: 'PUT',
      // A connection of its own: a kept-alive one to an API that has since restarted can take a request and never
      // answer it. An upload is large enough that a new connection costs nothing worth keeping.
      agent: false,
      // A connection silent this long (nothing sent, nothing answered) is dropped and the upload tried again.
      timeout: 120_000,
      headers: {
        ...authorization(this.api),
        'content-type': 'application/octet-stream',
        'content-length': size,
        'x-berth-attempt': this.attempt,
        'x-berth-kind': kind,
      },
    });
    const answered = new Promise<number>((resolve, reject) => {
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.on('timeout', () => req.destroy(new Error('the API went silent')));
    });
    // Read from the open handle: the bytes sent are the file that was checked, whatever the job renames. The API
    // may answer before it has read everything (e.g. 507 when its disk is full): the answer decides.
    if (size === 0) req.end();
    else pipeline(Readable.from(bytesOf(handle, size)), req).catch(() => {});
    try {
      return await answered;
    } catch (err) {
      throw new ApiAway(`uploading ${path}: ${err instanceof Error ? err.message : String(err)}`);
    } finally {
      if (!req.writableFinished) req.destroy();
    }
  }
}

/**
 * The first `size` bytes of an open file, read by position. Not fs.createReadStream over the descriptor: destroying
 * that stream (an upload cut off) closes the descriptor whatever autoClose says, and the FileHandle's own close
 * later closes the same number again, by then perhaps another socket's.
 */
async function* bytesOf(handle: FileHandle, size: number): AsyncGenerator<Buffer> {
  for (let pos = 0; pos < size;) {
    const chunk = Buffer.allocUnsafe(Math.min(1024 * 1024, size - pos));
    const { bytesRead } = await handle.read(chunk, 0, chunk.length, pos);
    if (bytesRead === 0) return;
    pos += bytesRead;
    yield chunk.subarray(0, bytesRead);
  }
}

async function openOwn(path: string): Promise<Opened | undefined> {
  let handle;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const info = await handle.stat();
  return { handle, size: info.size, mtimeMs: info.mtimeMs };
}
