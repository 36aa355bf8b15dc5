// Datasets on the API host: an upload is streamed to disk, unpacked safely, checked against its format, and only
// then listed. Workers fetch a dataset's files as one tar stream.
import { isoNow, BerthError, newDatasetId, type Dataset, type DatasetFormat } from '@berth/contracts';
import type { DatasetStore } from '@berth/store';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pack as tarPack } from 'tar-stream';
import { streamToFile } from '../artifacts/artifact-store.js';
import { DatasetError, unpackDataset } from './unpack.js';
import { validateDataset } from './validate.js';

export interface DatasetLimits {
  /** Largest upload (archive or file). */
  maxBytes: number;
  /** Most files and bytes once unpacked. */
  maxFiles: number;
  maxExpandedBytes: number;
}

export class Datasets {
  constructor(
    readonly records: DatasetStore,
    private readonly root: string,
    private readonly limits: DatasetLimits,
  ) {}

  async create(
    body: Readable,
    meta: { name: string; format: DatasetFormat; filename: string; owner: string },
  ): Promise<Dataset> {
    const id = newDatasetId();
    const uploads = join(this.root, '.uploads');
    await mkdir(uploads, { recursive: true });
    const upload = join(uploads, id);
    const unpacking = join(this.root, `.unpacking-${id}`);
    try {
      const blob = await streamToFile(body, upload, { maxBytes: this.limits.maxBytes });
      const unpacked = await unpackDataset(
        upload,
        unpacking,
        { maxFiles: this.limits.maxFiles, maxBytes: this.limits.maxExpandedBytes },
        { name: meta.filename },
      ).catch((err: unknown) => {
        if (err instanceof DatasetError) {
          throw new BerthError(err.code === 'ARCHIVE_TOO_LARGE' ? 'BODY_TOO_LARGE' : 'DATASET_INVALID', err.message, {
            reason: err.code,
          });
        }
        throw err;
      });
      const report = await validateDataset(unpacking, meta.format);
      if (!report.ok) {
        throw new BerthError('DATASET_INVALID', `the upload is not a valid ${meta.format} dataset`, { report });
      }
      await rename(unpacking, join(this.root, id));
      const dataset: Dataset = {
        id,
        owner: meta.owner,
        name: meta.name,
        format: meta.format,
        size: blob.size,
        sha256: blob.sha256,
        files: unpacked.files.length,
        bytes: unpacked.bytes,
        createdAt: isoNow(),
        report,
      };
      await this.records.put(dataset);
      return dataset;
    } finally {
      await rm(upload, { force: true });
      await rm(unpacking, { recursive: true, force: true });
    }
  }

  async get(id: string): Promise<Dataset> {
    const dataset = await this.records.get(id);
    if (!dataset) throw new BerthError('DATASET_NOT_FOUND', `no dataset ${id}`);
    return dataset;
  }

  /** Refused while a job that has not ended uses it. */
  async remove(id: string): Promise<void> {
    await this.get(id);
    const users = await this.records.usedBy(id);
    if (users.length > 0) {
      throw new BerthError('DATASET_IN_USE', `dataset ${id} is used by ${users.length} job(s) not yet ended`, {
        jobs: users,
      });
    }
    await this.records.remove(id);
    await rm(join(this.root, id), { recursive: true, force: true });
  }

  /** The dataset's files as a tar stream, in path order. */
  tar(id: string): Readable {
    const dir = join(this.root, id);
    const pack = tarPack();
    void (async () => {
      try {
        for (const rel of await walk(dir)) {
          const { size } = await stat(join(dir, rel));
          await new Promise<void>((resolve, reject) => {
            const entry = pack.entry({ name: rel, size, mode: 0o644 }, (err) => (err ? reject(err) : resolve()));
            createReadStream(join(dir, rel)).on('error', reject).pipe(entry);
          });
        }
        pack.finalize();
      } catch (err) {
        pack.destroy(err as Error);
      }
    })();
    return pack as unknown as Readable;
  }
}

async function walk(root: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of (await readdir(join(root, rel), { withFileTypes: true })).sort((a, b) =>
    a.name.localeCompare(b.name),
  )) {
    const path = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...(await walk(root, path)));
    else if (e.isFile()) out.push(path);
  }
  return out;
}
