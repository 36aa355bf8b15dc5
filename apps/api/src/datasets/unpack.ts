// Unpacks an uploaded dataset (tar, gzip-compressed tar, zip, or one plain file) into a fresh folder, checking
// every entry before anything of it is written and stopping at the caps while the data streams.
import { constants } from 'node:fs';
import { createReadStream } from 'node:fs';
import { chmod, mkdir, open, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { crc32, createGunzip } from 'node:zlib';
import tarStream from 'tar-stream';
import yauzl from 'yauzl';

export type DatasetErrorCode = 'ARCHIVE_UNSAFE' | 'ARCHIVE_TOO_LARGE' | 'ARCHIVE_INVALID';

/** Why an upload was refused. `entry` is the archive entry at fault, when there is one. */
export class DatasetError extends Error {
  override readonly name = 'DatasetError';

  constructor(
    readonly code: DatasetErrorCode,
    message: string,
    readonly entry?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface UnpackLimits {
  /** Most files written; folders are capped at the same number, separately. */
  maxFiles: number;
  /** Most bytes written, all files together (the expanded size, not the archive's). */
  maxBytes: number;
}

export interface UnpackOptions {
  /** The file name a plain (non-archive) upload is given inside `dest`. Default: the input's own name. */
  name?: string;
}

export interface UnpackedFile {
  /** Relative to `dest`, `/`-separated. */
  path: string;
  size: number;
}

export interface UnpackResult {
  files: UnpackedFile[];
  bytes: number;
}

type Kind = 'tar' | 'tar.gz' | 'zip' | 'file';

const FILE_MODE = 0o644;
const DIR_MODE = 0o755;
const MAX_SEGMENT_BYTES = 255;
const MAX_PATH_BYTES = 4096;
// tar headers (long-name and pax records included) and block padding that a tar may carry beyond its file data.
const TAR_OVERHEAD_PER_ENTRY = 8192;

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;

/**
 * Unpacks `input` (a file already on disk) into `dest`, which must not exist yet and is created (its parent too).
 * The kind is told by magic bytes: gzip-compressed tar, tar (ustar / GNU / pax), zip, else one plain file that
 * becomes `dest/<options.name>`. Links, devices, fifos, absolute names and names that climb out (`..`, also
 * written with backslashes or percent-encoded) are refused before anything of that entry is written; the file
 * and byte caps stop the unpacking when they are reached. Files get mode 0644 and folders 0755 whatever the
 * archive says. On any failure `dest` is removed entirely and a `DatasetError` is thrown; a missing `input` or an
 * existing `dest` (the caller's mistakes) throw their own errors, before anything is created.
 */
export async function unpackDataset(
  input: string,
  dest: string,
  limits: UnpackLimits,
  options: UnpackOptions = {},
): Promise<UnpackResult> {
  for (const key of ['maxFiles', 'maxBytes'] as const) {
    if (!Number.isSafeInteger(limits[key]) || limits[key] < 0) {
      throw new RangeError(`limits.${key} must be a non-negative integer`);
    }
  }
  const kind = await detect(input);
  const root = path.resolve(dest);
  await mkdir(path.dirname(root), { recursive: true });
  await mkdir(root, { mode: DIR_MODE }); // EEXIST: never unpack over, or remove, something already there
  const writer = new DatasetWriter(root, limits);
  try {
    await chmod(root, DIR_MODE);
    switch (kind) {
      case 'tar':
      case 'tar.gz':
        await unpackTar(input, kind === 'tar.gz', writer);
        break;
      case 'zip':
        await unpackZip(input, writer);
        break;
      case 'file':
        await writer.file(options.name ?? path.basename(input), (await stat(input)).size, async () =>
          createReadStream(input),
        );
        break;
    }
    return writer.result();
  } catch (err) {
    await rm(root, { recursive: true, force: true });
    throw asDatasetError(err, kind, writer.current);
  }
}

async function detect(input: string): Promise<Kind> {
  const fh = await open(input, 'r');
  let head: Buffer;
  try {
    const buf = Buffer.alloc(512);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    head = buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
  const starts = (...bytes: number[]): boolean => bytes.every((b, i) => head[i] === b);
  if (starts(0x1f, 0x8b)) return 'tar.gz';
  if (starts(0x50, 0x4b, 0x03, 0x04) || starts(0x50, 0x4b, 0x05, 0x06) || starts(0x50, 0x4b, 0x07, 0x08)) {
    return 'zip';
  }
  if (isTarHeader(head)) return 'tar';
  // Other archive and compression formats would otherwise land as one opaque file the trainer cannot read.
  const other: [string, number[]][] = [
    ['bzip2', [0x42, 0x5a, 0x68]],
    ['xz', [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]],
    ['zstd', [0x28, 0xb5, 0x2f, 0xfd]],
    ['7z', [0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c]],
    ['rar', [0x52, 0x61, 0x72, 0x21, 0x1a, 0x07]],
  ];
  for (const [name, magic] of other) {
    if (starts(...magic)) {
      throw new DatasetError(
        'ARCHIVE_INVALID',
        `the upload is a ${name} file; send a .tar, .tar.gz or .zip archive, or one plain file`,
      );
    }
  }
  return 'file';
}

/** A ustar / GNU header block: the magic, and a checksum that adds up (so text that says "ustar" is still text). */
function isTarHeader(block: Buffer): boolean {
  if (block.length < 512 || block.subarray(257, 262).toString('latin1') !== 'ustar') return false;
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : block[i]!;
  return (
    parseInt(
      block
        .subarray(148, 156)
        .toString('latin1')
        .replace(/[\0 ]+$/, ''),
      8,
    ) === sum
  );
}

/** Every write of one unpacking goes through here: the name checks, the caps, the modes. */
class DatasetWriter {
  private readonly files: UnpackedFile[] = [];
  private readonly dirs = new Set<string>();
  private bytes = 0;
  /** The entry being unpacked, for the message when the archive itself turns out corrupt. */
  current: string | undefined;

  constructor(
    private readonly root: string,
    readonly limits: UnpackLimits,
  ) {}

  result(): UnpackResult {
    return { files: this.files, bytes: this.bytes };
  }

  async directory(name: string): Promise<void> {
    this.current = name;
    const rel = this.check(name);
    if (rel !== '') await this.mkdirs(rel.split('/'), name);
  }

  /** `size` is what the archive declares, when it does: refused up front when it alone breaks the byte cap. */
  async file(name: string, size: number | undefined, data: () => Promise<AsyncIterable<Buffer>>): Promise<void> {
    this.current = name;
    const rel = this.check(name);
    if (rel === '') throw new DatasetError('ARCHIVE_INVALID', `${show(name)}: a file entry without a name`, name);
    if (this.files.length >= this.limits.maxFiles) {
      throw new DatasetError('ARCHIVE_TOO_LARGE', `${show(name)}: more than ${this.limits.maxFiles} files`, name);
    }
    if (size !== undefined && size > this.limits.maxBytes - this.bytes) this.tooLarge(name);
    const segments = rel.split('/');
    await this.mkdirs(segments.slice(0, -1), name);
    const target = path.join(this.root, ...segments);
    let fh;
    try {
      // O_EXCL and O_NOFOLLOW: a second entry of the same name, or anything already there, is never written through.
      fh = await open(
        target,
        constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
        FILE_MODE,
      );
    } catch (err) {
      throw this.conflict(err, name, this.dirs.has(rel));
    }
    let written = 0;
    try {
      await fh.chmod(FILE_MODE); // the umask must not change it
      for await (const chunk of await data()) {
        const buf = chunk as Buffer;
        if (buf.length > this.limits.maxBytes - this.bytes) this.tooLarge(name);
        await fh.write(buf);
        written += buf.length;
        this.bytes += buf.length;
      }
    } finally {
      await fh.close();
    }
    this.files.push({ path: rel, size: written });
  }

  private tooLarge(name: string): never {
    throw new DatasetError(
      'ARCHIVE_TOO_LARGE',
      `${show(name)}: the dataset expands to more than ${this.limits.maxBytes} bytes`,
      name,
    );
  }

  private async mkdirs(segments: string[], name: string): Promise<void> {
    for (let i = 1; i <= segments.length; i++) {
      const rel = segments.slice(0, i).join('/');
      if (this.dirs.has(rel)) continue;
      if (this.dirs.size >= this.limits.maxFiles) {
        throw new DatasetError('ARCHIVE_TOO_LARGE', `${show(name)}: more than ${this.limits.maxFiles} folders`, name);
      }
      const target = path.join(this.root, ...segments.slice(0, i));
      try {
        await mkdir(target, { mode: DIR_MODE });
      } catch (err) {
        throw this.conflict(err, name, true); // what is there is not a folder we made, so it is a file
      }
      await chmod(target, DIR_MODE);
      this.dirs.add(rel);
    }
  }

  private conflict(err: unknown, name: string, fileAndFolder: boolean): unknown {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' && !fileAndFolder) {
      return new DatasetError('ARCHIVE_INVALID', `${show(name)}: a second entry of the same name`, name);
    }
    if (code === 'EEXIST' || code === 'ENOTDIR' || code === 'EISDIR') {
      return new DatasetError('ARCHIVE_INVALID', `${show(name)}: a file and a folder of the same name`, name);
    }
    return err;
  }

  /** The entry's path relative to the root, `/`-separated, without `.` and empty segments; '' for the root. */
  private check(name: string): string {
    const unsafe = (why: string): DatasetError => new DatasetError('ARCHIVE_UNSAFE', `${show(name)}: ${why}`, name);
    const why = unsafeName(name);
    if (why) throw unsafe(why);
    const rel = name
      .replaceAll('\\', '/')
      .split('/')
      .filter((s) => s !== '' && s !== '.')
      .join('/');
    for (const segment of rel.split('/')) {
      if (Buffer.byteLength(segment) > MAX_SEGMENT_BYTES) {
        throw new DatasetError('ARCHIVE_INVALID', `${show(name)}: a name longer than ${MAX_SEGMENT_BYTES} bytes`, name);
      }
    }
    if (Buffer.byteLength(rel) > MAX_PATH_BYTES) {
      throw new DatasetError('ARCHIVE_INVALID', `${show(name)}: a path longer than ${MAX_PATH_BYTES} bytes`, name);
    }
    // The second guard: whatever the checks above missed, nothing resolves outside the root.
    if (rel !== '' && !path.resolve(this.root, rel).startsWith(this.root + path.sep)) {
      throw unsafe('resolves outside the dataset folder');
    }
    return rel;
  }
}

/**
 * Why an entry name is unsafe, or undefined. The name is judged as written, with backslashes read as
 * separators, and after each round of percent-decoding (so `%2e%2e/`, `..%2f`, `%252e%252e/` all count).
 */
export function unsafeName(name: string): string | undefined {
  let variant = name;
  for (;;) {
    const s = variant.replaceAll('\\', '/');
    if (s.includes('\0')) return 'a NUL byte in the name';
    if (s.startsWith('/')) return 'an absolute path';
    if (/^[A-Za-z]:/.test(s)) return 'an absolute path (drive letter)';
    if (s.split('/').includes('..')) return "climbs out of the dataset folder ('..')";
    const decoded = variant.replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
    if (decoded === variant) return undefined;
    variant = decoded; // each round shortens the name, so this ends
  }
}

function show(name: string): string {
  return JSON.stringify(name);
}

async function unpackTar(input: string, gzipped: boolean, writer: DatasetWriter): Promise<void> {
  const { maxBytes, maxFiles } = writer.limits;
  // File data is capped per entry; this caps what the tar parser is fed (headers, padding, blocks of zeros
  // after the end marker), so a gzip of nothing but zeros stops too.
  const rawCap = maxBytes + TAR_OVERHEAD_PER_ENTRY * (2 * maxFiles + 2);
  let raw = 0;
  const cap = new Transform({
    transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback) {
      raw += chunk.length;
      if (raw > rawCap) {
        const at = writer.current === undefined ? '' : `${show(writer.current)}: `;
        done(new DatasetError('ARCHIVE_TOO_LARGE', `${at}the tar stream runs past ${rawCap} bytes`, writer.current));
        return;
      }
      done(null, chunk);
    },
  });
  const extract = tarStream.extract();
  const source = createReadStream(input);
  const feeding = gzipped ? pipeline(source, createGunzip(), cap, extract) : pipeline(source, cap, extract);
  feeding.catch(() => undefined); // its errors reach the loop below through `extract`
  try {
    for await (const entry of extract) {
      const h = entry.header;
      switch (h.type) {
        case 'file':
        case 'contiguous-file':
          await writer.file(h.name, h.size ?? 0, async () => entry as AsyncIterable<Buffer>);
          break;
        case 'directory':
          await writer.directory(h.name);
          entry.resume();
          break;
        default:
          throw refusedTarEntry(h);
      }
    }
    await feeding;
  } catch (err) {
    extract.destroy();
    // Once it settles nothing is left reading. Our own refusals win; otherwise the feeding's error is the cause
    // (an entry's stream only says it was destroyed).
    const fed = await feeding.then(
      () => undefined,
      (e: unknown) => e,
    );
    throw err instanceof DatasetError || fed === undefined ? err : fed;
  }
}

function refusedTarEntry(h: tarStream.Header): DatasetError {
  const name = show(h.name);
  const only = 'datasets may hold only files and folders';
  switch (h.type) {
    case 'symlink':
      return new DatasetError(
        'ARCHIVE_UNSAFE',
        `${name}: a symbolic link (to ${show(h.linkname ?? '')}); ${only}`,
        h.name,
      );
    case 'link':
      return new DatasetError('ARCHIVE_UNSAFE', `${name}: a hard link (to ${show(h.linkname ?? '')}); ${only}`, h.name);
    case 'character-device':
    case 'block-device':
      return new DatasetError('ARCHIVE_UNSAFE', `${name}: a ${h.type}; ${only}`, h.name);
    case 'fifo':
      return new DatasetError('ARCHIVE_UNSAFE', `${name}: a fifo; ${only}`, h.name);
    default:
      return new DatasetError('ARCHIVE_INVALID', `${name}: an unsupported tar entry type; ${only}`, h.name);
  }
}

async function unpackZip(input: string, writer: DatasetWriter): Promise<void> {
  // decodeStrings: false so that yauzl's own name check (which rejects with messages of its own) does not run
  // before ours; the name is decoded just as yauzl would, without turning backslashes into slashes.
  const zip = await yauzl.openPromise(input, {
    lazyEntries: true,
    validateEntrySizes: true,
    decodeStrings: false,
    strictFileNames: true,
    autoClose: true,
  });
  try {
    for await (const entry of zip.eachEntry()) {
      const name = yauzl.getFileNameLowLevel(entry.generalPurposeBitFlag, entry.fileNameRaw, entry.extraFields, true);
      writer.current = name;
      const type = ((entry.externalFileAttributes >>> 16) & S_IFMT) >>> 0;
      if (type !== 0 && type !== S_IFREG && type !== S_IFDIR) {
        const what = type === S_IFLNK ? 'a symbolic link' : 'a special file (device, fifo or socket)';
        throw new DatasetError(
          'ARCHIVE_UNSAFE',
          `${show(name)}: ${what}; datasets may hold only files and folders`,
          name,
        );
      }
      if (name.endsWith('/') || name.endsWith('\\') || type === S_IFDIR) {
        await writer.directory(name);
        continue;
      }
      if (entry.isEncrypted()) {
        throw new DatasetError('ARCHIVE_INVALID', `${show(name)}: encrypted entries are not supported`, name);
      }
      if (!entry.canDecodeFileData()) {
        throw new DatasetError(
          'ARCHIVE_INVALID',
          `${show(name)}: compression method ${entry.compressionMethod} is not supported`,
          name,
        );
      }
      await writer.file(name, entry.uncompressedSize, async () =>
        checkCrc(await zip.openReadStreamPromise(entry), entry.crc32, name),
      );
    }
  } finally {
    if (zip.isOpen) zip.close();
  }
}

// yauzl checks sizes but not checksums; a corrupt entry must not land as a silently wrong file.
async function* checkCrc(data: AsyncIterable<Buffer>, expected: number, name: string): AsyncGenerator<Buffer> {
  let crc = 0;
  for await (const chunk of data) {
    crc = crc32(chunk, crc);
    yield chunk;
  }
  if (crc >>> 0 !== expected >>> 0) {
    throw new DatasetError('ARCHIVE_INVALID', `${show(name)}: the data does not match its checksum`, name);
  }
}

function asDatasetError(err: unknown, kind: Kind, current: string | undefined): DatasetError {
  if (err instanceof DatasetError) return err;
  const what = kind === 'file' ? 'the file' : `the ${kind} archive`;
  // Not `instanceof Error`: errors from node's own streams may come from another realm (jest's vm, for one).
  const message = (err as { message?: unknown } | null)?.message;
  const detail = typeof message === 'string' ? message : String(err);
  if (kind === 'tar.gz' && current === undefined && /tar header/i.test(detail)) {
    return new DatasetError('ARCHIVE_INVALID', 'the gzip file does not hold a tar archive', undefined, { cause: err });
  }
  const at = current === undefined ? '' : `${show(current)}: `;
  return new DatasetError('ARCHIVE_INVALID', `${at}cannot unpack ${what} (${detail})`, current, { cause: err });
}
