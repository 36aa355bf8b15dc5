import { spawn, spawnSync } from 'node:child_process';
import { constants, linkSync, mkdirSync, mkdtempSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ResultsTree } from './results-tree.js';

const budget = { maxBytes: 1024 ** 3, maxFiles: 10_000 };
const folder = (name: string) => mkdtempSync(join(tmpdir(), `berth-${name}-`));

/** A folder outside the results tree holding what a job must never get: the worker's own secrets. */
function hostSecrets(): string {
  const dir = folder('host-secrets');
  writeFileSync(join(dir, 'admin-token'), 'HOST-SECRET\n');
  return dir;
}

test('a scan lists regular files only: links, hard links, FIFOs, sockets and folders in progress are left out', async () => {
  const root = folder('results');
  const secrets = hostSecrets();
  mkdirSync(join(root, 'checkpoints/step-1'), { recursive: true });
  writeFileSync(join(root, 'checkpoints/step-1/model.bin'), 'weights');
  writeFileSync(join(root, 'log.txt'), 'a');
  symlinkSync(join(secrets, 'admin-token'), join(root, 'token-link'));
  symlinkSync(secrets, join(root, 'checkpoints/step-2'));
  linkSync(join(root, 'log.txt'), join(root, 'log-again.txt'));
  mkdirSync(join(root, '.tmp-step-3'));
  writeFileSync(join(root, '.tmp-step-3/partial'), 'x');
  expect(spawnSync('mkfifo', [join(root, 'pipe')]).status).toBe(0);
  const server = createServer().listen(join(root, 'sock'));
  await new Promise((r) => server.once('listening', r));
  try {
    const scan = await new ResultsTree(root, budget).scan();
    expect(scan.files.map((f) => f.path)).toEqual(['checkpoints/step-1/model.bin']);
    expect(scan.files[0]).toMatchObject({ size: 7 });
    expect(scan.over).toBeUndefined();
  } finally {
    server.close();
  }
});

test('open refuses a path through a link at any component, and FIFOs without waiting for a writer', async () => {
  const root = folder('results');
  const secrets = hostSecrets();
  mkdirSync(join(root, 'checkpoints'));
  symlinkSync(secrets, join(root, 'checkpoints/step-1'));
  const tree = new ResultsTree(root, budget);
  // O_NOFOLLOW alone guards only the last component: this is the open the worker used to do, and it follows.
  const naive = await open(join(root, 'checkpoints/step-1/admin-token'), constants.O_RDONLY | constants.O_NOFOLLOW);
  expect((await naive.readFile('utf8')).trim()).toBe('HOST-SECRET');
  await naive.close();
  expect(await tree.open('checkpoints/step-1/admin-token')).toBeUndefined();
  expect(await tree.open('checkpoints/../checkpoints/step-1/admin-token')).toBeUndefined();
  expect(spawnSync('mkfifo', [join(root, 'pipe')]).status).toBe(0);
  expect(await tree.open('pipe')).toBeUndefined();
  writeFileSync(join(root, 'real'), 'ok');
  const opened = await tree.open('real');
  expect(opened).toMatchObject({ size: 2 });
  expect(await opened!.handle.readFile('utf8')).toBe('ok');
  await opened!.handle.close();
});

test('a job swapping a checkpoint folder for a link to the host never gets a host file through the tree', async () => {
  const root = folder('results');
  const secrets = hostSecrets();
  mkdirSync(join(root, 'checkpoints'));
  // The job's side: step-1 is a real folder with a decoy admin-token, then a link to the host's secrets, over and over.
  const swapper = spawn(
    'sh',
    [
      '-c',
      `cd "$1/checkpoints" && while :; do rm -rf step-1; mkdir step-1; echo decoy > step-1/admin-token; ` +
        `rm -rf step-1; ln -s "$2" step-1; done`,
      'swapper',
      root,
      secrets,
    ],
    { stdio: 'ignore' },
  );
  const tree = new ResultsTree(root, budget);
  let naiveLeaks = 0;
  let treeReads = 0;
  try {
    const until = Date.now() + 4000;
    while (Date.now() < until) {
      // The worker's old way, side by side, proves the race is being won against a path-based open.
      const naive = await open(join(root, 'checkpoints/step-1/admin-token'), constants.O_RDONLY | constants.O_NOFOLLOW)
        .then(async (h) => {
          const text = await h.readFile('utf8');
          await h.close();
          return text;
        })
        .catch(() => '');
      if (naive.includes('HOST-SECRET')) naiveLeaks++;
      const scan = await tree.scan();
      for (const f of scan.files) {
        const opened = await tree.open(f.path);
        if (!opened) continue;
        const text = await opened.handle.readFile('utf8');
        await opened.handle.close();
        treeReads++;
        expect(text).not.toContain('HOST-SECRET');
      }
      const direct = await tree.open('checkpoints/step-1/admin-token');
      if (direct) {
        const text = await direct.handle.readFile('utf8');
        await direct.handle.close();
        treeReads++;
        expect(text).not.toContain('HOST-SECRET');
      }
    }
  } finally {
    swapper.kill('SIGKILL');
  }
  expect(naiveLeaks).toBeGreaterThan(0);
  expect(treeReads).toBeGreaterThan(0);
  expect((await readFile(join(secrets, 'admin-token'), 'utf8')).trim()).toBe('HOST-SECRET');
}, 20_000);

test('the scan stops at the file budget and at the byte budget, a sparse file counting at its full length', async () => {
  const many = folder('results');
  for (let i = 0; i < 60; i++) writeFileSync(join(many, `f${i}`), '');
  const byFiles = await new ResultsTree(many, { maxBytes: budget.maxBytes, maxFiles: 50 }).scan();
  expect(byFiles.over).toEqual({ what: 'files', limit: 50 });
  expect(byFiles.entries).toBe(51);

  const sparse = folder('results');
  const huge = join(sparse, 'huge.bin');
  writeFileSync(huge, '');
  truncateSync(huge, 2 ** 40);
  const byBytes = await new ResultsTree(sparse, { maxBytes: 1024 ** 3, maxFiles: 10 }).scan();
  expect(byBytes.over).toEqual({ what: 'bytes', limit: 1024 ** 3 });
  expect(byBytes.files).toEqual([]);
});

test('a missing root is an empty tree', async () => {
  expect(await new ResultsTree(join(folder('results'), 'never-made'), budget).scan()).toEqual({
    files: [],
    bytes: 0,
    entries: 0,
  });
});

test('a scan on a filesystem with less than 1 GiB free reports the disk as over, whatever the budgets', async () => {
  // A 16 MiB tmpfs stands for a host disk that is nearly full (the tests run as root, as CI does).
  const root = folder('results-tmpfs');
  expect(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', root]).status).toBe(0);
  try {
    writeFileSync(join(root, 'small'), 'x');
    expect((await new ResultsTree(root, budget).scan()).over).toEqual({ what: 'disk', limit: 1024 ** 3 });
  } finally {
    spawnSync('umount', [root]);
  }
});
