// Uploads an attempt's results to the API: each checkpoint once it is complete (the trainer renames its folder into
// place last), and everything the recipe names when the container has exited. Links are never followed.
import { authorization, type ApiTarget } from '../api-client.js';
import type { ArtifactKind } from '@berth/contracts';
import { constants, createReadStream } from 'node:fs';
import { open, readdir } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { LaunchError } from '../executor/container-runtime.js';
import { globToRegExp } from '../executor/success.js';

export interface ArtifactRuleLike {
  glob: string;
  kind: ArtifactKind;
}

const completeCheckpoint = /(^|\/)checkpoints\/step-\d+\//;

export class ArtifactUploader {
  /** path → size:mtime of what was uploaded, so an unchanged file is not sent twice. */
  private readonly sent = new Map<string, string>();
  private readonly rules: { re: RegExp; kind: ArtifactKind }[];

  constructor(
    private readonly api: ApiTarget,
    private readonly jobId: string,
    private readonly attempt: number,
    private readonly resultsDir: string,
    rules: readonly ArtifactRuleLike[],
  ) {
    this.rules = rules.map((r) => ({ re: globToRegExp(r.glob), kind: r.kind }));
  }

  /** Uploads the checkpoints completed since the last call. */
  async uploadCheckpoints(): Promise<number> {
    const files = (await listFiles(this.resultsDir)).filter((f) => completeCheckpoint.test(f));
    return this.uploadFiles(files);
  }

  /** Uploads every result file a recipe rule names (all of them without rules), then the attempt's full log. */
  async uploadAll(logFile: string | undefined): Promise<number> {
    const files = (await listFiles(this.resultsDir)).filter(
      (f) => this.rules.length === 0 || this.rules.some((r) => r.re.test(f)),
    );
    let n = await this.uploadFiles(files);
    if (logFile) n += (await this.upload(logFile, `logs/attempt-${this.attempt}.log`, 'log')) ? 1 : 0;
    return n;
  }

  private async uploadFiles(files: readonly string[]): Promise<number> {
    let n = 0;
    for (const rel of files) {
      const kind = completeCheckpoint.test(rel)
        ? 'checkpoint'
        : (this.rules.find((r) => r.re.test(rel))?.kind ?? 'other');
      if (await this.upload(join(this.resultsDir, rel), rel, kind)) n++;
    }
    return n;
  }

  /** Sends one file (opened without following a link); false when it was unchanged since it was last sent. */
  private async upload(file: string, path: string, kind: ArtifactKind): Promise<boolean> {
    let handle;
    try {
      handle = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch (err) {
      // A link the job wrote (ELOOP) or a file gone meanwhile: nothing to send.
      if (['ELOOP', 'ENOENT'].includes((err as NodeJS.ErrnoException).code ?? '')) return false;
      throw err;
    }
    try {
      const info = await handle.stat();
      if (!info.isFile()) return false;
      const version = `${info.size}:${info.mtimeMs}`;
      if (this.sent.get(path) === version) return false;
      for (let attempt = 1; ; attempt++) {
        const status = await this.put(handle.fd, info.size, path, kind);
        if (status === 201) break;
        // The store is full, or the upload was refused: another try would end the same.
        if (status < 500 || status === 507 || attempt === 3) {
          throw new LaunchError('ARTIFACT_UPLOAD_FAILED', `uploading ${path} failed: the API answered ${status}`);
        }
        await new Promise((r) => setTimeout(r, 500 * attempt));
      }
      this.sent.set(path, version);
      return true;
    } finally {
      await handle.close();
    }
  }

  private async put(fd: number, size: number, path: string, kind: ArtifactKind): Promise<number> {
    const url = new URL(
      `/v1/jobs/${this.jobId}/artifacts/${path.split('/').map(encodeURIComponent).join('/')}`,
      this.api.url,
    );
    const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = request(url, {
      method: 'PUT',
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
    });
    if (size === 0) {
      req.end();
      return answered;
    }
    // start/end over the open descriptor: the bytes sent are the file that was checked, whatever the job renames.
    const body = createReadStream('', { fd, start: 0, end: Math.max(0, size - 1), autoClose: false });
    // The API may answer before it has read everything (e.g. 507 when its disk is full): the answer decides.
    pipeline(body, req).catch(() => {});
    try {
      return await answered;
    } catch (err) {
      throw new LaunchError(
        'ARTIFACT_UPLOAD_FAILED',
        `uploading ${path} failed: ${err instanceof Error ? err.message : String(err)}`,
      );
    } finally {
      if (!req.writableFinished) req.destroy();
    }
  }
}

/** Regular files under `root`, relative, `/`-separated; links and temporary checkpoint folders are left out. */
export async function listFiles(root: string, rel = ''): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(join(root, rel), { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const out: string[] = [];
  for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    const path = rel ? `${rel}/${e.name}` : e.name;
    if (e.name.startsWith('.tmp')) continue;
    if (e.isDirectory()) out.push(...(await listFiles(root, path)));
    else if (e.isFile()) out.push(path);
  }
  return out;
}
