// An attempt's /results as the worker may read it: a folder the job writes to while the worker reads, so every name in
// it is the job's to swap for a link at any moment. Nothing here resolves a path the job controls on the host: the
// worker opens the root once and then reaches each entry relative to an open folder descriptor
// (`/proc/self/fd/<fd>/<name>`, the openat() of a process that has no openat), with O_NOFOLLOW on every component.
// A name swapped for a link between the listing and the open fails the open (ELOOP/ENOTDIR) instead of being followed.
import { constants, type Dirent } from 'node:fs';
import { lstat, open, opendir, statfs, type FileHandle } from 'node:fs/promises';

export interface ResultsBudget {
  /** Apparent bytes of every regular file together: a sparse file counts at its full length, as it would upload. */
  maxBytes: number;
  /** Entries of any kind (files, folders, links, …). */
  maxFiles: number;
}

/**
 * Free space the host's filesystem keeps whatever the budgets say: many jobs within their budgets, or other tenants of
 * the disk, can still fill it, and a full disk stops Redis's AOF, the API's uploads and the engine alike.
 */
const minFreeBytes = 1024 ** 3;

/** BERTH_RESULTS_MAX_BYTES and BERTH_RESULTS_MAX_FILES when unset (apps/worker/src/env.ts). */
export const defaultResultsBudget: ResultsBudget = { maxBytes: 200 * 1024 ** 3, maxFiles: 100_000 };

export interface ResultFile {
  /** Relative, `/`-separated. */
  path: string;
  size: number;
  mtimeMs: number;
}

export interface ResultsScan {
  /** Regular files with one link, sorted by path; hard-linked files, links, FIFOs, sockets and devices are left out. */
  files: ResultFile[];
  bytes: number;
  entries: number;
  /** Set when the tree is over its budget or the disk is nearly full; the scan stopped there (`files` is a prefix). */
  over?: { what: 'bytes' | 'files' | 'disk'; limit: number };
}

/** Deeper trees are not walked: no recipe nests this far, and a job could otherwise make each scan arbitrarily long. */
const maxDepth = 64;
const dirFlags = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;
// O_NONBLOCK: opening a FIFO the job put in place of a file must not wait for a writer.
const fileFlags = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY;
const skipped = new Set(['ELOOP', 'ENOTDIR', 'ENOENT', 'ENXIO']);

/** Entries the trainer is still writing (it renames a `.tmp…` folder into place when a checkpoint is whole). */
const inProgress = (name: string) => name.startsWith('.tmp');

export class ResultsTree {
  constructor(
    private readonly root: string,
    private readonly budget: ResultsBudget,
  ) {}

  /** Walks the tree asynchronously, stopping at the budget; a missing root is an empty tree. */
  async scan(): Promise<ResultsScan> {
    const scan: ResultsScan = { files: [], bytes: 0, entries: 0 };
    const root = await this.openRoot();
    if (!root) return scan;
    try {
      const disk = await statfs(fdPath(root));
      if (disk.bavail * disk.bsize < minFreeBytes) {
        scan.over = { what: 'disk', limit: minFreeBytes };
        return scan;
      }
      await this.walk(root, '', 0, scan);
    } finally {
      await root.close();
    }
    scan.files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    return scan;
  }

  /**
   * Opens one regular file by its relative path, component by component, never following a link; undefined when any
   * component is not what it should be (a link, a FIFO, a hard-linked file, gone). The caller reads through the handle
   * and closes it.
   */
  async open(path: string): Promise<{ handle: FileHandle; size: number; mtimeMs: number } | undefined> {
    const parts = path.split('/');
    if (parts.some((p) => p === '' || p === '.' || p === '..')) return undefined;
    let dir = await this.openRoot();
    if (!dir) return undefined;
    try {
      for (const part of parts.slice(0, -1)) {
        const next = await openAt(dir, part, dirFlags);
        await dir.close();
        dir = next;
        if (!dir) return undefined;
      }
      const handle = await openAt(dir, parts.at(-1)!, fileFlags);
      if (!handle) return undefined;
      const info = await handle.stat();
      if (!info.isFile() || info.nlink !== 1) {
        await handle.close();
        return undefined;
      }
      return { handle, size: info.size, mtimeMs: info.mtimeMs };
    } finally {
      await dir?.close();
    }
  }

  private async openRoot(): Promise<FileHandle | undefined> {
    try {
      return await open(this.root, dirFlags);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  private async walk(dir: FileHandle, rel: string, depth: number, scan: ResultsScan): Promise<void> {
    // opendir reads the folder in small batches: a folder of millions of names is never held whole.
    const listing = await opendir(fdPath(dir), { bufferSize: 256 });
    const subdirs: string[] = [];
    try {
      for await (const entry of listing) {
        if (++scan.entries > this.budget.maxFiles) {
          scan.over = { what: 'files', limit: this.budget.maxFiles };
          return;
        }
        if (inProgress(entry.name)) continue;
        if (entry.isDirectory()) subdirs.push(entry.name);
        else if (entry.isFile()) await this.addFile(dir, entry, rel, scan);
        if (scan.over) return;
      }
    } finally {
      // The iterator closes the listing when it runs to its end; an early return leaves it open.
      await listing.close().catch(() => {});
    }
    if (depth >= maxDepth) return;
    for (const name of subdirs.sort()) {
      const sub = await openAt(dir, name, dirFlags);
      if (!sub) continue;
      try {
        await this.walk(sub, join(rel, name), depth + 1, scan);
      } finally {
        await sub.close();
      }
      if (scan.over) return;
    }
  }

  private async addFile(dir: FileHandle, entry: Dirent, rel: string, scan: ResultsScan): Promise<void> {
    let info;
    try {
      // lstat of a name inside the open folder: the name itself is never followed.
      info = await lstat(`${fdPath(dir)}/${entry.name}`);
    } catch (err) {
      if (skipped.has((err as NodeJS.ErrnoException).code ?? '')) return;
      throw err;
    }
    if (!info.isFile()) return;
    scan.bytes += info.size;
    if (scan.bytes > this.budget.maxBytes) {
      scan.over = { what: 'bytes', limit: this.budget.maxBytes };
      return;
    }
    // A second link to a file makes it something other than what this name says: leave it out.
    if (info.nlink !== 1) return;
    scan.files.push({ path: join(rel, entry.name), size: info.size, mtimeMs: info.mtimeMs });
  }
}

/** The open folder as a path the kernel resolves through the descriptor, whatever the folder is called now. */
function fdPath(dir: FileHandle): string {
  return `/proc/self/fd/${dir.fd}`;
}

async function openAt(dir: FileHandle, name: string, flags: number): Promise<FileHandle | undefined> {
  try {
    return await open(`${fdPath(dir)}/${name}`, flags);
  } catch (err) {
    if (skipped.has((err as NodeJS.ErrnoException).code ?? '')) return undefined;
    throw err;
  }
}

function join(rel: string, name: string): string {
  return rel ? `${rel}/${name}` : name;
}

/** A budget message for the job's record: what was over, by how much it may be. */
export function overBudgetMessage(over: NonNullable<ResultsScan['over']>): string {
  switch (over.what) {
    case 'bytes':
      return `the job wrote more than ${over.limit} bytes under /results (BERTH_RESULTS_MAX_BYTES) and was stopped`;
    case 'files':
      return `the job made more than ${over.limit} entries under /results (BERTH_RESULTS_MAX_FILES) and was stopped`;
    case 'disk':
      return `the host's disk under /results has less than ${over.limit} bytes free; the job was stopped`;
  }
}
