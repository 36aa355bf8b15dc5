// Unpacking against hostile archives made by tar-stream, yazl, Python's zipfile and the system's tar and zip.
import { execFileSync, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import {
  chmod,
  link,
  mkdir,
  mkdtemp,
  readFile,
  readdir,
  rm,
  stat,
  symlink,
  truncate,
  writeFile,
} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip, gzipSync } from 'node:zlib';
import fc from 'fast-check';
import tarStream from 'tar-stream';
import yazl from 'yazl';
import { DatasetError, type DatasetErrorCode, type UnpackLimits, unpackDataset, unsafeName } from './unpack.js';

const LIMITS: UnpackLimits = { maxFiles: 100, maxBytes: 10 * 1024 * 1024 };
const GiB = 1024 ** 3;

const hasTar = spawnSync('tar', ['--version']).status === 0;
const gnuTar = hasTar && spawnSync('tar', ['--version']).stdout.toString().includes('GNU tar');
const hasZip = spawnSync('zip', ['-v']).status === 0;
const withTar = hasTar ? it : it.skip; // skipped only where no tar is installed
const withGnuTar = gnuTar ? it : it.skip; // skipped only where tar is not GNU tar (-P, --transform)
const withZip = hasZip ? it : it.skip; // skipped only where no zip is installed

let top: string;
beforeAll(async () => {
  top = await mkdtemp(path.join(os.tmpdir(), 'berth-unpack-'));
});
afterAll(async () => {
  await rm(top, { recursive: true, force: true });
});

/** A fresh work folder: the archive goes in `work`, `dest` is `work/sandbox/dest`, so an escape lands in sandbox. */
async function workspace(): Promise<{ work: string; sandbox: string; dest: string }> {
  const work = await mkdtemp(path.join(top, 'w-'));
  const sandbox = path.join(work, 'sandbox');
  await mkdir(sandbox);
  return { work, sandbox, dest: path.join(sandbox, 'dest') };
}

interface TarEntry {
  name: string;
  type?: tarStream.Header['type'];
  data?: string | Buffer;
  linkname?: string;
  mode?: number;
  pax?: Record<string, string>;
}

async function tarBuffer(entries: TarEntry[]): Promise<Buffer> {
  const pack = tarStream.pack();
  const chunks: Buffer[] = [];
  const collecting = (async () => {
    for await (const c of pack) chunks.push(c as Buffer);
  })();
  for (const e of entries) {
    const header = {
      name: e.name,
      type: e.type ?? 'file',
      ...(e.linkname === undefined ? {} : { linkname: e.linkname }),
      ...(e.mode === undefined ? {} : { mode: e.mode }),
      pax: e.pax,
    };
    await new Promise<void>((resolve, reject) =>
      pack.entry(header, e.data ?? '', (err) => (err ? reject(err) : resolve())),
    );
  }
  pack.finalize();
  await collecting;
  return Buffer.concat(chunks);
}

// Python's zipfile writes what yazl refuses to: '..' and absolute names, symlink and device modes, NUL bytes.
const PY_ZIP = `
import json, sys, zipfile
spec = json.load(sys.stdin)
with zipfile.ZipFile(spec["out"], "w") as z:
    for e in spec["entries"]:
        zi = zipfile.ZipInfo("x", date_time=(2024, 1, 1, 0, 0, 0))
        zi.filename = e["name"]  # after construction: the constructor cuts names at a NUL
        zi.compress_type = zipfile.ZIP_DEFLATED
        if "mode" in e:
            zi.create_system = 3
            zi.external_attr = e["mode"] << 16
        z.writestr(zi, e.get("data", ""))
`;

interface ZipEntry {
  name: string;
  data?: string;
  mode?: number;
}

function pythonZip(out: string, entries: ZipEntry[]): string {
  execFileSync('python3', ['-c', PY_ZIP], { input: JSON.stringify({ out, entries }) });
  return out;
}

async function expectRefused(
  input: string,
  dest: string,
  code: DatasetErrorCode,
  message: RegExp,
  limits: UnpackLimits = LIMITS,
): Promise<DatasetError> {
  let caught: unknown;
  try {
    await unpackDataset(input, dest, limits);
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(DatasetError);
  const err = caught as DatasetError;
  expect({ code: err.code, message: err.message }).toEqual({ code, message: expect.stringMatching(message) });
  expect(existsSync(dest)).toBe(false);
  return err;
}

/** Nothing but the archive itself may be left in the work folder: no dest, no escaped file. */
async function expectNothingLeft(work: string, ...inputs: string[]): Promise<void> {
  expect((await readdir(path.join(work, 'sandbox'))).sort()).toEqual([]);
  expect((await readdir(work)).sort()).toEqual(['sandbox', ...inputs.map((p) => path.basename(p))].sort());
}

async function zerosStream(bytes: number): Promise<Readable> {
  const chunk = Buffer.alloc(1 << 20);
  let left = bytes;
  return new Readable({
    read() {
      const n = Math.min(chunk.length, left);
      left -= n;
      this.push(n > 0 ? chunk.subarray(0, n) : null);
    },
  });
}

describe('unpackDataset: good archives', () => {
  const content = { 'train.json': '{"data": []}\n', 'sub/dev.json': '{"data": [1]}\n', 'sub/deeper/c.txt': 'c' };

  it('unpacks a tar made by tar-stream, with ./ names, folder entries and archive modes ignored', async () => {
    const { work, dest } = await workspace();
    const input = path.join(work, 'data.tar');
    await writeFile(
      input,
      await tarBuffer([
        { name: './', type: 'directory', mode: 0o777 },
        { name: './sub/', type: 'directory', mode: 0o700 },
        { name: './train.json', data: content['train.json'], mode: 0o4777 },
        { name: 'sub/dev.json', data: content['sub/dev.json'], mode: 0o600 },
        { name: 'sub/deeper/c.txt', data: 'c', mode: 0o755 },
        { name: 'empty.txt', data: '' },
      ]),
    );
    const result = await unpackDataset(input, dest, LIMITS);
    expect(result).toEqual({
      files: [
        { path: 'train.json', size: 13 },
        { path: 'sub/dev.json', size: 14 },
        { path: 'sub/deeper/c.txt', size: 1 },
        { path: 'empty.txt', size: 0 },
      ],
      bytes: 28,
    });
    for (const [rel, text] of Object.entries(content)) {
      expect(await readFile(path.join(dest, rel), 'utf8')).toBe(text);
      expect((await stat(path.join(dest, rel))).mode & 0o7777).toBe(0o644);
    }
    for (const dir of ['', 'sub', 'sub/deeper']) expect((await stat(path.join(dest, dir))).mode & 0o7777).toBe(0o755);
  });

  it('unpacks a gzip-compressed tar whatever its file name says', async () => {
    const { work, dest } = await workspace();
    const input = path.join(work, 'upload.zip'); // the name lies; the magic bytes decide
    await writeFile(input, gzipSync(await tarBuffer([{ name: 'a.txt', data: 'hello' }])));
    expect(await unpackDataset(input, dest, LIMITS)).toEqual({ files: [{ path: 'a.txt', size: 5 }], bytes: 5 });
  });

  it('unpacks a zip made by yazl, deflated and stored, with backslash names as folders', async () => {
    const { work, dest } = await workspace();
    const input = path.join(work, 'data.bin');
    const zip = new yazl.ZipFile();
    zip.addBuffer(Buffer.from('x'.repeat(10_000)), 'big.txt', { mode: 0o100600 });
    zip.addBuffer(Buffer.from('stored'), 'sub/s.txt', { compress: false });
    zip.addEmptyDirectory('emptydir');
    zip.end();
    await pipeline(zip.outputStream, createWriteStream(input));
    const result = await unpackDataset(input, dest, LIMITS);
    expect(result).toEqual({
      files: [
        { path: 'big.txt', size: 10_000 },
        { path: 'sub/s.txt', size: 6 },
      ],
      bytes: 10_006,
    });
    expect((await stat(path.join(dest, 'big.txt'))).mode & 0o7777).toBe(0o644);
    expect((await stat(path.join(dest, 'emptydir'))).isDirectory()).toBe(true);

    const { work: w2, dest: d2 } = await workspace();
    const win = pythonZip(path.join(w2, 'win.zip'), [{ name: 'folder\\file.txt', data: 'w' }]);
    expect(await unpackDataset(win, d2, LIMITS)).toEqual({ files: [{ path: 'folder/file.txt', size: 1 }], bytes: 1 });
  });

  it('places a plain file under the given name, or the input name', async () => {
    const { work, dest } = await workspace();
    const input = path.join(work, 'upload-7f3a');
    await writeFile(input, 'line one\n\nline two\n');
    expect(await unpackDataset(input, dest, LIMITS, { name: 'corpus.txt' })).toEqual({
      files: [{ path: 'corpus.txt', size: 19 }],
      bytes: 19,
    });
    expect(await readFile(path.join(dest, 'corpus.txt'), 'utf8')).toBe('line one\n\nline two\n');
    expect((await stat(path.join(dest, 'corpus.txt'))).mode & 0o7777).toBe(0o644);

    const { dest: d2 } = await workspace();
    expect((await unpackDataset(input, d2, LIMITS)).files).toEqual([{ path: 'upload-7f3a', size: 19 }]);
  });

  it('a text that happens to say "ustar" where a tar header would is still a plain file', async () => {
    const { work, dest } = await workspace();
    const input = path.join(work, 'corpus.txt');
    await writeFile(input, 'a'.repeat(257) + 'ustar\0' + 'b'.repeat(300));
    expect(await unpackDataset(input, dest, LIMITS)).toEqual({
      files: [{ path: 'corpus.txt', size: 563 }],
      bytes: 563,
    });
  });

  it('keeps names whose percent signs do not decode to a traversal', async () => {
    const { work, dest } = await workspace();
    const input = path.join(work, 'pct.tar');
    await writeFile(input, await tarBuffer([{ name: '100%.txt' }, { name: 'a%20b.txt' }, { name: '%2e%2efoo.txt' }]));
    const { files } = await unpackDataset(input, dest, LIMITS);
    expect(files.map((f) => f.path)).toEqual(['100%.txt', 'a%20b.txt', '%2e%2efoo.txt']);
  });

  it('refuses to unpack into a folder that already exists, and leaves it alone', async () => {
    const { work, dest } = await workspace();
    const input = path.join(work, 'f.txt');
    await writeFile(input, 'x');
    await mkdir(dest);
    await writeFile(path.join(dest, 'keep'), 'k');
    await expect(unpackDataset(input, dest, LIMITS)).rejects.toMatchObject({ code: 'EEXIST' });
    expect(await readFile(path.join(dest, 'keep'), 'utf8')).toBe('k');
  });
});

describe('unpackDataset: unsafe names', () => {
  const names: [string, RegExp][] = [
    ['../evil', /"\.\.\/evil": climbs out/],
    ['/etc/x', /"\/etc\/x": an absolute path/],
    ['a/../../x', /"a\/\.\.\/\.\.\/x": climbs out/],
    ['..\\evil', /climbs out/],
    ['%2e%2e/evil', /"%2e%2e\/evil": climbs out/],
    ['..%2fevil', /climbs out/],
    ['%2E%2E%5Cevil', /climbs out/],
    ['%252e%252e/evil', /climbs out/],
    ['ok/%2e%2e%2f%2e%2e%2fevil', /climbs out/],
    ['C:\\Windows\\evil', /absolute path \(drive letter\)/],
    ['%2fetc/x', /an absolute path/],
  ];

  it.each(names)('tar entry %j is refused', async (name, message) => {
    const { work, dest } = await workspace();
    const input = path.join(work, 'evil.tar');
    await writeFile(
      input,
      await tarBuffer([
        { name: 'fine.txt', data: 'ok' },
        { name, data: 'pwned' },
      ]),
    );
    const err = await expectRefused(input, dest, 'ARCHIVE_UNSAFE', message);
    expect(err.entry).toBe(name);
    await expectNothingLeft(work, input);
    expect(existsSync('/etc/x')).toBe(false);
  });

  it.each(names)('zip entry %j is refused', async (name, message) => {
    const { work, dest } = await workspace();
    const input = pythonZip(path.join(work, 'evil.zip'), [
      { name: 'fine.txt', data: 'ok' },
      { name, data: 'pwned' },
    ]);
    await expectRefused(input, dest, 'ARCHIVE_UNSAFE', message);
    await expectNothingLeft(work, input);
  });

  it('a NUL byte in a name is refused in a pax tar header and in a zip', async () => {
    const { work, dest } = await workspace();
    const input = path.join(work, 'nul.tar');
    await writeFile(input, await tarBuffer([{ name: 'a.txt\0/../../evil', data: 'x', pax: {} }]));
    await expectRefused(input, dest, 'ARCHIVE_UNSAFE', /"a\.txt\\u0000\/\.\.\/\.\.\/evil": a NUL byte/);
    const zipped = pythonZip(path.join(work, 'nul.zip'), [{ name: 'b.txt\0.json', data: 'x' }]);
    await expectRefused(zipped, dest, 'ARCHIVE_UNSAFE', /NUL byte/);
    await expectNothingLeft(work, input, zipped);
  });

  it('a plain file given a traversing name is refused', async () => {
    const { work, dest } = await workspace();
    const input = path.join(work, 'f.txt');
    await writeFile(input, 'x');
    await expect(unpackDataset(input, dest, LIMITS, { name: '../evil.txt' })).rejects.toMatchObject({
      code: 'ARCHIVE_UNSAFE',
    });
    await expectNothingLeft(work, input);
  });

  it('property: any name either is refused as unsafe or lands inside dest', async () => {
    const segment = fc.constantFrom('..', '.', 'a', '%2e', '%2E%2e', '%2f', '%5c', '%25', '\\', '', 'b.txt', '%00');
    const name = fc.array(segment, { minLength: 1, maxLength: 6 }).map((s) => s.join('/') + '.txt');
    await fc.assert(
      fc.asyncProperty(name, async (n) => {
        const { work, sandbox, dest } = await workspace();
        const input = path.join(work, 'p.tar');
        await writeFile(input, await tarBuffer([{ name: n, data: 'x' }]));
        try {
          const { files } = await unpackDataset(input, dest, LIMITS);
          expect(unsafeName(n)).toBeUndefined();
          expect(files).toHaveLength(1);
          expect(await readdir(sandbox)).toEqual(['dest']);
        } catch (err) {
          expect(err).toMatchObject({ code: 'ARCHIVE_UNSAFE' });
          expect(await readdir(sandbox)).toEqual([]);
        }
        await rm(work, { recursive: true });
      }),
      { numRuns: 60 },
    );
  });
});

describe('unpackDataset: links and special files', () => {
  it('a symlink to /etc/passwd is refused (tar and zip)', async () => {
    const { work, dest } = await workspace();
    const input = path.join(work, 'link.tar');
    await writeFile(input, await tarBuffer([{ name: 'passwd', type: 'symlink', linkname: '/etc/passwd' }]));
    await expectRefused(input, dest, 'ARCHIVE_UNSAFE', /"passwd": a symbolic link \(to "\/etc\/passwd"\)/);
    const zipped = pythonZip(path.join(work, 'link.zip'), [{ name: 'passwd', data: '/etc/passwd', mode: 0o120777 }]);
    await expectRefused(zipped, dest, 'ARCHIVE_UNSAFE', /"passwd": a symbolic link/);
    await expectNothingLeft(work, input, zipped);
  });

  it('a symlink followed by a file written through it writes nothing outside (tar and zip)', async () => {
    const { work, dest } = await workspace();
    const outside = path.join(work, 'outside');
    await mkdir(outside);
    const input = path.join(work, 'through.tar');
    await writeFile(
      input,
      await tarBuffer([
        { name: 'ok.txt', data: 'fine' },
        { name: 'escape', type: 'symlink', linkname: outside },
        { name: 'escape/pwned.txt', data: 'pwned' },
      ]),
    );
    await expectRefused(input, dest, 'ARCHIVE_UNSAFE', /"escape": a symbolic link/);
    const zipped = pythonZip(path.join(work, 'through.zip'), [
      { name: 'escape', data: outside, mode: 0o120777 },
      { name: 'escape/pwned.txt', data: 'pwned' },
    ]);
    await expectRefused(zipped, dest, 'ARCHIVE_UNSAFE', /"escape": a symbolic link/);
    expect(await readdir(outside)).toEqual([]);
    await expectNothingLeft(work, input, zipped, outside);
  });

  it('a hard link is refused', async () => {
    const { work, dest } = await workspace();
    const input = path.join(work, 'hard.tar');
    await writeFile(
      input,
      await tarBuffer([
        { name: 'a.txt', data: 'a' },
        { name: 'b.txt', type: 'link', linkname: '/etc/shadow' },
      ]),
    );
    await expectRefused(input, dest, 'ARCHIVE_UNSAFE', /"b\.txt": a hard link \(to "\/etc\/shadow"\)/);
    await expectNothingLeft(work, input);
  });

  it.each([
    ['character-device', /a character-device/],
    ['block-device', /a block-device/],
    ['fifo', /a fifo/],
  ] as const)('a %s tar entry is refused', async (type, message) => {
    const { work, dest } = await workspace();
    const input = path.join(work, 'dev.tar');
    await writeFile(input, await tarBuffer([{ name: 'dev', type }]));
    await expectRefused(input, dest, 'ARCHIVE_UNSAFE', message);
    await expectNothingLeft(work, input);
  });

  it.each([
    ['character device', 0o020644],
    ['block device', 0o060644],
    ['fifo', 0o010644],
    ['socket', 0o140644],
  ])('a zip entry whose unix mode says %s is refused', async (_, mode) => {
    const { work, dest } = await workspace();
    const input = pythonZip(path.join(work, 'dev.zip'), [{ name: 'dev', data: 'x', mode }]);
    await expectRefused(input, dest, 'ARCHIVE_UNSAFE', /"dev": a special file/);
    await expectNothingLeft(work, input);
  });
});

describe('unpackDataset: caps', () => {
  it('a 10k-entry tar stops at the file cap', async () => {
    const { work, dest } = await workspace();
    const input = path.join(work, 'many.tar');
    const entries = Array.from({ length: 10_000 }, (_, i) => ({ name: `f${i}.txt`, data: 'x' }));
    await writeFile(input, await tarBuffer(entries));
    const err = await expectRefused(input, dest, 'ARCHIVE_TOO_LARGE', /^"f100\.txt": more than 100 files$/);
    expect(err.entry).toBe('f100.txt');
    await expectNothingLeft(work, input);
  });

  it('a 10k-entry zip stops at the file cap', async () => {
    const { work, dest } = await workspace();
    const entries = Array.from({ length: 10_000 }, (_, i) => ({ name: `f${i}.txt`, data: 'x' }));
    const input = pythonZip(path.join(work, 'many.zip'), entries);
    await expectRefused(input, dest, 'ARCHIVE_TOO_LARGE', /^"f100\.txt": more than 100 files$/);
    await expectNothingLeft(work, input);
  });

  it('folders are capped too', async () => {
    const { work, dest } = await workspace();
    const input = path.join(work, 'dirs.tar');
    const entries = Array.from({ length: 200 }, (_, i) => ({ name: `d${i}/`, type: 'directory' as const }));
    await writeFile(input, await tarBuffer(entries));
    await expectRefused(input, dest, 'ARCHIVE_TOO_LARGE', /^"d100\/": more than 100 folders$/);
  });

  it('a tar.gz bomb stops at the first entry past the byte cap, not after', async () => {
    const { work, dest } = await workspace();
    const input = path.join(work, 'bomb.tar.gz');
    const pack = tarStream.pack();
    const writing = pipeline(pack, createGzip({ level: 1 }), createWriteStream(input));
    const mb = Buffer.alloc(1 << 20);
    for (let i = 0; i < 100; i++) {
      await new Promise<void>((resolve, reject) =>
        pack.entry({ name: `zeros-${String(i).padStart(3, '0')}.txt` }, mb, (e) => (e ? reject(e) : resolve())),
      );
    }
    pack.finalize();
    await writing;
    // 10 files of 1 MiB fill the 10 MiB cap exactly; the 11th is the first that does not fit.
    await expectRefused(input, dest, 'ARCHIVE_TOO_LARGE', /^"zeros-010\.txt": the dataset expands to more than/);
    await expectNothingLeft(work, input);
  });

  describe('1 GiB-expanded archives, made by streaming zeros through zlib', () => {
    let work: string;
    let tgz: string;
    let zeros: string;
    let zip: string;

    beforeAll(async () => {
      ({ work } = await workspace());
      tgz = path.join(work, 'gig.tar.gz');
      const pack = tarStream.pack();
      const writing = pipeline(pack, createGzip({ level: 1 }), createWriteStream(tgz));
      const sink = pack.entry({ name: 'zeros.txt', size: GiB });
      for await (const chunk of await zerosStream(GiB)) {
        if (!sink.write(chunk)) await once(sink, 'drain');
      }
      sink.end(undefined); // streamx's typings want an argument
      pack.finalize();
      await writing;

      zeros = path.join(work, 'zeros.gz'); // gzip of nothing but zeros: an "empty" tar that never ends
      await pipeline(await zerosStream(GiB), createGzip({ level: 1 }), createWriteStream(zeros));

      zip = path.join(work, 'gig.zip');
      const z = new yazl.ZipFile();
      z.addReadStream(await zerosStream(GiB), 'zeros.txt', { compressionLevel: 1, size: GiB });
      z.end();
      await pipeline(z.outputStream, createWriteStream(zip));
    }, 60_000);

    it('are small on disk', async () => {
      for (const f of [tgz, zeros, zip]) expect((await stat(f)).size).toBeLessThan(10 * 1024 * 1024);
    });

    it('a tar.gz with a 1 GiB entry is refused long before it could all be decompressed', async () => {
      let started = Date.now();
      await pipeline(createReadStream(tgz), createGunzip(), new Writable({ write: (_c, _e, done) => done() }));
      const fullGunzipMs = Date.now() - started;
      const dest = path.join(work, 'sandbox', 'dest');
      started = Date.now();
      await expectRefused(tgz, dest, 'ARCHIVE_TOO_LARGE', /^"zeros\.txt": the dataset expands to more than 10485760/);
      expect(Date.now() - started).toBeLessThan(fullGunzipMs / 4);
    });

    it('a gzip of 1 GiB of zeros stops at the tar stream cap', async () => {
      const dest = path.join(work, 'sandbox', 'dest');
      await expectRefused(zeros, dest, 'ARCHIVE_TOO_LARGE', /^the tar stream runs past \d+ bytes$/);
    });

    it('a zip with a 1 GiB entry is refused by its declared size', async () => {
      const dest = path.join(work, 'sandbox', 'dest');
      await expectRefused(zip, dest, 'ARCHIVE_TOO_LARGE', /^"zeros\.txt": the dataset expands to more than/);
    });

    it('a zip that understates its 1 GiB entry is stopped while streaming', async () => {
      const buf = await readFile(zip);
      const cd = buf.lastIndexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]));
      buf.writeUInt32LE(1000, cd + 24); // the central directory's uncompressed size
      const lying = path.join(work, 'lying.zip');
      await writeFile(lying, buf);
      const dest = path.join(work, 'sandbox', 'dest');
      await expectRefused(
        lying,
        dest,
        'ARCHIVE_INVALID',
        /"zeros\.txt": cannot unpack the zip archive \(too many bytes/,
      );
      expect(await readdir(path.join(work, 'sandbox'))).toEqual([]);
    });

    it('with a 1000-byte cap, the zip and a plain file of 2000 bytes are refused', async () => {
      const dest = path.join(work, 'sandbox', 'dest');
      await expectRefused(zip, dest, 'ARCHIVE_TOO_LARGE', /the dataset expands to more than 1000 bytes/, {
        maxFiles: 10,
        maxBytes: 1000,
      });
      const big = path.join(work, 'big.txt');
      await writeFile(big, 'x'.repeat(2000));
      await expectRefused(big, dest, 'ARCHIVE_TOO_LARGE', /^"big\.txt": the dataset expands to more than 1000 bytes$/, {
        maxFiles: 10,
        maxBytes: 1000,
      });
    });
  });
});

describe('unpackDataset: corrupt and unsupported archives', () => {
  it('a truncated tar.gz, tar and zip are invalid', async () => {
    const { work, dest } = await workspace();
    const tarred = await tarBuffer([
      { name: 'a.txt', data: 'a'.repeat(5000) },
      { name: 'b.txt', data: 'b'.repeat(5000) },
    ]);
    const tgz = path.join(work, 'cut.tar.gz');
    const gz = gzipSync(tarred);
    await writeFile(tgz, gz.subarray(0, Math.floor(gz.length / 2)));
    await expectRefused(tgz, dest, 'ARCHIVE_INVALID', /cannot unpack the tar\.gz archive \(unexpected end of file\)/);

    const tar = path.join(work, 'cut.tar');
    await writeFile(tar, tarred.subarray(0, 512 + 3000));
    await expectRefused(
      tar,
      dest,
      'ARCHIVE_INVALID',
      /^"a\.txt": cannot unpack the tar archive \(Unexpected end of data\)/,
    );

    const zip = pythonZip(path.join(work, 'whole.zip'), [{ name: 'a.txt', data: 'a'.repeat(5000) }]);
    const cut = path.join(work, 'cut.zip');
    await writeFile(cut, (await readFile(zip)).subarray(0, 100));
    await expectRefused(
      cut,
      dest,
      'ARCHIVE_INVALID',
      /cannot unpack the zip archive \(End of central directory record signature not found/,
    );
    await expectNothingLeft(work, tgz, tar, zip, cut);
  });

  it('a zip whose data is corrupted is invalid', async () => {
    const { work, dest } = await workspace();
    const text = Array.from({ length: 2000 }, (_, i) => `line ${i} of some text`).join('\n');
    const zip = pythonZip(path.join(work, 'ok.zip'), [{ name: 'a.txt', data: text }]);
    const buf = await readFile(zip);
    for (let i = 60; i < 400; i += 7) buf[i] = buf[i]! ^ 0x5a; // inside the deflated data
    const bad = path.join(work, 'bad.zip');
    await writeFile(bad, buf);
    await expectRefused(bad, dest, 'ARCHIVE_INVALID', /^"a\.txt": /);
    await expectNothingLeft(work, zip, bad);
  });

  it('a tar header with a broken checksum is invalid', async () => {
    const { work, dest } = await workspace();
    const buf = await tarBuffer([
      { name: 'a.txt', data: 'a' },
      { name: 'b.txt', data: 'b' },
    ]);
    buf[1024] = 0x7a; // the first byte of b.txt's name
    const input = path.join(work, 'sum.tar');
    await writeFile(input, buf);
    await expectRefused(input, dest, 'ARCHIVE_INVALID', /Invalid tar header/);
  });

  it('a gzip that holds no tar, and other compression formats, are invalid', async () => {
    const { work, dest } = await workspace();
    const gz = path.join(work, 'corpus.txt.gz');
    await writeFile(gz, gzipSync('just some text, not a tar archive at all '.repeat(20)));
    await expectRefused(gz, dest, 'ARCHIVE_INVALID', /^the gzip file does not hold a tar archive$/);
    const xz = path.join(work, 'data.tar.xz');
    await writeFile(xz, Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 1, 2, 3]));
    await expectRefused(xz, dest, 'ARCHIVE_INVALID', /^the upload is a xz file/);
    await expectNothingLeft(work, gz, xz);
  });

  it('two entries of the same name, or a file and a folder of the same name, are invalid', async () => {
    const { work, dest } = await workspace();
    const dup = path.join(work, 'dup.tar');
    await writeFile(
      dup,
      await tarBuffer([
        { name: 'a.txt', data: 'first' },
        { name: './a.txt', data: 'second' },
      ]),
    );
    await expectRefused(dup, dest, 'ARCHIVE_INVALID', /^"\.\/a\.txt": a second entry of the same name$/);
    const clash = path.join(work, 'clash.tar');
    await writeFile(
      clash,
      await tarBuffer([
        { name: 'a', data: 'file' },
        { name: 'a/b.txt', data: 'under a file' },
      ]),
    );
    await expectRefused(clash, dest, 'ARCHIVE_INVALID', /^"a\/b\.txt": a file and a folder of the same name$/);
    await expectNothingLeft(work, dup, clash);
  });
});

describe('unpackDataset: archives made by the system tar and zip', () => {
  async function tree(root: string): Promise<void> {
    await mkdir(path.join(root, 'squad', 'dev'), { recursive: true });
    await writeFile(path.join(root, 'squad', 'train.json'), '{"data":[]}');
    await writeFile(path.join(root, 'squad', 'dev', 'dev.json'), '{"data":[]}');
    await chmod(path.join(root, 'squad', 'train.json'), 0o600);
    await chmod(path.join(root, 'squad', 'dev'), 0o700);
  }

  const run = (cmd: string, args: string[], cwd: string): void => {
    execFileSync(cmd, args, { cwd, stdio: 'pipe' });
  };

  withTar('tar -czf of a folder unpacks, modes normalised', async () => {
    const { work, dest } = await workspace();
    const src = path.join(work, 'src');
    await tree(src);
    const input = path.join(work, 'd.tgz');
    run('tar', ['-czf', input, '-C', src, '.'], work);
    const { files } = await unpackDataset(input, dest, LIMITS);
    expect(files.map((f) => f.path).sort()).toEqual(['squad/dev/dev.json', 'squad/train.json']);
    expect((await stat(path.join(dest, 'squad', 'train.json'))).mode & 0o7777).toBe(0o644);
    expect((await stat(path.join(dest, 'squad', 'dev'))).mode & 0o7777).toBe(0o755);
  });

  withTar('tar of a symlink, a hard link and a fifo: each refused', async () => {
    const { work, dest } = await workspace();
    const cases: [string, (dir: string) => Promise<void>, RegExp][] = [
      [
        'sym',
        (d) => symlink('/etc/passwd', path.join(d, 'passwd')),
        /^"\.\/passwd": a symbolic link \(to "\/etc\/passwd"\)/,
      ],
      [
        'hard',
        async (d) => {
          await writeFile(path.join(d, 'a.txt'), 'a');
          await link(path.join(d, 'a.txt'), path.join(d, 'b.txt'));
        },
        /^"\.\/(a|b)\.txt": a hard link \(to "\.\/(a|b)\.txt"\)/,
      ],
      ['fifo', async (d) => run('mkfifo', [path.join(d, 'p')], d), /^"\.\/p": a fifo/],
    ];
    const inputs: string[] = [];
    for (const [name, make, message] of cases) {
      const src = path.join(work, `src-${name}`);
      await mkdir(src);
      await make(src);
      const input = path.join(work, `${name}.tar`);
      run('tar', ['-cf', input, '-C', src, '.'], work);
      await rm(src, { recursive: true });
      inputs.push(input);
      await expectRefused(input, dest, 'ARCHIVE_UNSAFE', message);
    }
    await expectNothingLeft(work, ...inputs);
  });

  withGnuTar('GNU tar -P with ../ and /etc/ names: refused', async () => {
    const { work, dest } = await workspace();
    await writeFile(path.join(work, 'x'), 'pwned');
    const dotdot = path.join(work, 'dotdot.tar');
    run('tar', ['-P', '--transform', 's,^,../,', '-cf', dotdot, 'x'], work);
    const abs = path.join(work, 'abs.tar');
    run('tar', ['-P', '--transform', 's,^,/etc/,', '-cf', abs, 'x'], work);
    await rm(path.join(work, 'x'));
    await expectRefused(dotdot, dest, 'ARCHIVE_UNSAFE', /^"\.\.\/x": climbs out/);
    await expectRefused(abs, dest, 'ARCHIVE_UNSAFE', /^"\/etc\/x": an absolute path/);
    expect(existsSync('/etc/x')).toBe(false);
    await expectNothingLeft(work, dotdot, abs);
  });

  withTar('tar of a 10k-file folder stops at the cap; a cut tar.gz is invalid', async () => {
    const { work, dest } = await workspace();
    const src = path.join(work, 'src');
    await mkdir(src);
    await Promise.all(Array.from({ length: 10_000 }, (_, i) => writeFile(path.join(src, `f${i}`), 'x')));
    const input = path.join(work, 'many.tgz');
    run('tar', ['-czf', input, '-C', src, '.'], work);
    await rm(src, { recursive: true });
    await expectRefused(input, dest, 'ARCHIVE_TOO_LARGE', /more than 100 files/);
    await truncate(input, Math.floor((await stat(input)).size / 2));
    await expectRefused(input, dest, 'ARCHIVE_INVALID', /unexpected end of file/, { maxFiles: 20_000, maxBytes: GiB });
    await expectNothingLeft(work, input);
  });

  withZip('zip -r unpacks; zip --symlinks and zip of ../evil are refused', async () => {
    const { work, dest } = await workspace();
    const src = path.join(work, 'src');
    await tree(src);
    const good = path.join(work, 'good.zip');
    run('zip', ['-qr', good, '.'], src);
    const { files } = await unpackDataset(good, dest, LIMITS);
    expect(files.map((f) => f.path).sort()).toEqual(['squad/dev/dev.json', 'squad/train.json']);
    expect((await stat(path.join(dest, 'squad', 'train.json'))).mode & 0o7777).toBe(0o644);
    await rm(dest, { recursive: true });

    await symlink('/etc/passwd', path.join(src, 'passwd'));
    const sym = path.join(work, 'sym.zip');
    run('zip', ['-q', '--symlinks', sym, 'passwd'], src);
    await expectRefused(sym, dest, 'ARCHIVE_UNSAFE', /^"passwd": a symbolic link/);

    await writeFile(path.join(work, 'evil'), 'pwned');
    const evil = path.join(work, 'evil.zip');
    run('zip', ['-q', evil, '../evil'], src);
    await rm(path.join(work, 'evil'));
    await rm(src, { recursive: true });
    await expectRefused(evil, dest, 'ARCHIVE_UNSAFE', /^"\.\.\/evil": climbs out/);
    await expectNothingLeft(work, good, sym, evil);
  });
});
