// Large downloads pumped into the socket by a child `dd`, through a real HTTP server and client.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, createServer, request, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FsArtifactStore } from './artifact-store.js';
import { pumpMinBytes } from './socket-pump.js';

const MiB = 1024 * 1024;
const big = randomBytes(pumpMinBytes + 3 * MiB + 7);
const small = randomBytes(pumpMinBytes - 1);
// Larger than what the kernel's socket buffers take in on loopback, so a reader that stops does stall the pump.
const huge = Buffer.alloc(160 * MiB, 7);
let root: string;
let server: Server;
let base: string;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'berth-pump-'));
  mkdirSync(join(root, 'job_a'));
  for (const [name, bytes] of [
    ['big', big],
    ['small', small],
    ['huge', huge],
  ] as const)
    writeFileSync(join(root, 'job_a', name), bytes);
  const store = new FsArtifactStore(root);
  server = createServer((req, res) => {
    const name = req.url!.slice(1);
    const size = { big: big.length, small: small.length, huge: huge.length }[name]!;
    const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
    const range = m ? { start: Number(m[1]), end: Number(m[2]) } : undefined;
    res.setHeader('content-length', range ? range.end - range.start + 1 : size);
    void store.send('job_a', name, range, res, () => res.writeHead(range ? 206 : 200));
  });
  server.timeout = 400; // the idle limit the pump takes over as its stall limit
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  rmSync(root, { recursive: true, force: true });
});

function get(
  path: string,
  headers: Record<string, string> = {},
  agent: Agent | false = false,
): Promise<{ res: IncomingMessage; body: Buffer }> {
  return new Promise((resolve, reject) => {
    request(`${base}${path}`, { headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ res, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    })
      .on('error', reject)
      .end();
  });
}

/** The dd processes this test's server started (their input is under this test's root). */
const pumps = (): string[] => {
  try {
    return execFileSync('pgrep', ['-af', `^dd if=${root}`], { encoding: 'utf8' })
      .trim()
      .split('\n');
  } catch {
    return []; // pgrep exits 1 when nothing matches
  }
};

async function until(check: () => boolean, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 25));
  }
}

test('a large blob goes out whole through the pump, and the connection closes after it', async () => {
  const { res, body } = await get('/big');
  expect(res.statusCode).toBe(200);
  expect(res.headers['content-length']).toBe(String(big.length));
  expect(res.headers.connection).toBe('close');
  expect(body.equals(big)).toBe(true);
});

test('a range of a large blob is pumped byte for byte', async () => {
  const start = 1_234_567;
  const end = start + pumpMinBytes + 99;
  const { res, body } = await get('/big', { range: `bytes=${start}-${end}` });
  expect(res.statusCode).toBe(206);
  expect(res.headers.connection).toBe('close');
  expect(body.equals(big.subarray(start, end + 1))).toBe(true);
});

test('a blob under the threshold goes through Node and keeps the connection', async () => {
  const agent = new Agent({ keepAlive: true });
  const big1 = await get('/big', {}, agent);
  const { res, body } = await get('/small', {}, agent);
  agent.destroy();
  expect(big1.res.headers.connection).toBe('close');
  expect(res.headers.connection).toBe('keep-alive');
  expect(body.equals(small)).toBe(true);
});

test('a client that goes away mid-download: the pump is stopped, and the server serves the next one', async () => {
  await new Promise<void>((resolve, reject) => {
    const req = request(`${base}/huge`, { agent: false }, (res) => {
      let got = 0;
      res.on('data', (c: Buffer) => {
        got += c.length;
        if (got > 4 * MiB) {
          req.destroy();
          resolve();
        }
      });
    });
    req.on('error', () => {});
    req.on('close', () => resolve());
    req.end();
    setTimeout(() => reject(new Error('no data')), 5_000).unref();
  });
  await until(() => pumps().length === 0);
  expect((await get('/big')).body.equals(big)).toBe(true);
});

test('a client that stops reading is cut once the pump makes no progress for the idle limit', async () => {
  let res!: IncomingMessage;
  const closed = new Promise<void>((resolve) => {
    const req = request(`${base}/huge`, { agent: false }, (r) => {
      res = r;
      r.pause(); // reads nothing more: the kernel's buffers fill and dd blocks
      r.on('error', () => {});
      r.socket.on('close', () => resolve());
    });
    req.on('error', () => {});
    req.end();
  });
  await until(() => pumps().length === 1);
  const t0 = Date.now();
  await until(() => pumps().length === 0, 10_000);
  expect(Date.now() - t0).toBeGreaterThanOrEqual(300);
  res.resume();
  await closed;
  expect(res.complete).toBe(false);
});

test('a client that sends more bytes during the pump does not block the server (Node no longer reads that socket)', async () => {
  const { connect } = await import('node:net');
  const port = Number(new URL(base).port);
  const sock = connect(port, '127.0.0.1');
  sock.on('error', () => {});
  sock.pause(); // read nothing: the pump blocks in the kernel while we talk
  sock.write('GET /huge HTTP/1.1\r\nhost: x\r\n\r\n');
  await until(() => pumps().length === 1);
  // Exactly what fills Node's 64 KiB read buffer, twice: a blocking socket would make its next read wait forever.
  sock.write(Buffer.alloc(128 * 1024, 'x'));
  await new Promise((r) => setTimeout(r, 200));
  const t0 = Date.now();
  const { body } = await get('/small');
  expect(body.equals(small)).toBe(true);
  expect(Date.now() - t0).toBeLessThan(2_000);
  sock.destroy();
  await until(() => pumps().length === 0, 10_000);
});
