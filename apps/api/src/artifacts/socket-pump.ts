// The `dd` socket pump: after Node has written a large download's headers, a child `dd` copies the file's bytes
// straight into the client's TCP socket, so no byte passes through the API's event loop or its thread pool (the
// API's CPU for a 1 GiB download falls to near 0; bench/RESULTS.md has the figures).
//
// The price: the child shares the socket's open file description, and libuv makes a child's stdio blocking, so
// while `dd` runs the socket is not O_NONBLOCK for Node either. Node must not read it again (stopSocketReads), the
// response says `connection: close`, and the socket is closed afterwards instead of serving another request. It is
// safe while these hold, each with a test in socket-pump.test.ts or stop-socket-reads.test.ts that fails without it:
// - the empty write's callback runs once the head is in the kernel, so `dd`'s bytes follow the whole head;
// - stopSocketReads really stops Node's reads, so a client that keeps sending cannot block the event loop;
// - `dd` knows GNU's byte-offset flags (haveDd; where it does not, downloads go through Node);
// - /proc/<pid>/io shows what `dd` has written: Node sees no activity on the socket meanwhile, so the pump watches
//   that itself and cuts a client that stops reading.
import { spawn, spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { stopSocketReads } from './stop-socket-reads.js';

/** Blobs (or ranges) smaller than this go through Node: a process start (~2 ms) is not worth it. */
export const pumpMinBytes = 8 * 1024 * 1024;
/** Pumps running at once; more downloads than this go through Node. */
export const pumpMax = 16;
/** How long a pump may make no progress before the client is cut, when the socket has no idle timeout of its own. */
const defaultStallMs = 120_000;

let running = 0;
let ddWorks: boolean | undefined;

/**
 * Whether `dd` runs here and knows the byte-offset flags (GNU coreutils); asked once, with a blocking child run
 * (~2 ms): the filesystem store asks when it is built, so no download waits for it.
 */
export function haveDd(): boolean {
  ddWorks ??=
    spawnSync('dd', ['if=/dev/null', 'of=/dev/null', 'iflag=skip_bytes,count_bytes', 'status=none'], {
      stdio: 'ignore',
    }).status === 0;
  return ddWorks;
}

/** The response's socket, when this download can be pumped into it: plain TCP, open, and a pump free. */
export function pumpTarget(out: unknown, bytes: number): ServerResponse | undefined {
  if (bytes < pumpMinBytes || running >= pumpMax || process.platform !== 'linux' || !haveDd()) return undefined;
  const socket = (out as ServerResponse | undefined)?.socket;
  if (!(socket instanceof Socket) || socket instanceof TLSSocket || socket.destroyed) return undefined;
  return out as ServerResponse;
}

/**
 * Sends bytes `start`..`start + length - 1` of `path` as the body of `res`. `begin` writes the head (it is called
 * with `connection: close` already set); the pump starts once the head is in the kernel. Resolves when the response
 * is over, whether it was sent whole (then it ends normally) or cut (then the socket is destroyed).
 */
export async function pumpFile(
  path: string,
  start: number,
  length: number,
  res: ServerResponse,
  begin: () => void,
): Promise<void> {
  const socket = res.socket as Socket;
  running++;
  try {
    res.setHeader('connection', 'close');
    begin();
    // An empty write sends the head; its callback runs once the head is in the kernel, before any byte of dd's.
    const headSent = await new Promise<boolean>((resolve) => res.write(Buffer.alloc(0), (err) => resolve(!err)));
    while (socket.writableCorked > 0) socket.uncork();
    if (headSent && socket.writableLength > 0) await new Promise((resolve) => socket.once('drain', resolve));
    if (!headSent || socket.destroyed) {
      socket.destroy();
      return;
    }
    const stallMs = socket.timeout || defaultStallMs;
    socket.setTimeout(0);
    stopSocketReads(socket);
    const ok = await runDd(path, start, length, socket, stallMs);
    if (ok) res.end();
    else socket.destroy();
  } finally {
    running--;
  }
}

/** `dd` with the socket as its stdout; true when it copied every byte. Killed if the socket closes or it stalls. */
function runDd(path: string, start: number, length: number, socket: Socket, stallMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const args = [`if=${path}`, 'bs=1M', 'iflag=skip_bytes,count_bytes', `skip=${start}`, `count=${length}`];
    const child = spawn('dd', [...args, 'status=none'], { stdio: ['ignore', socket, 'ignore'] });
    const stop = () => child.kill('SIGKILL');
    socket.once('close', stop);
    // Progress is what dd has written (wchar in /proc/<pid>/io): a client that stops reading stops it.
    let written = -1;
    let lastMove = Date.now();
    const watch = setInterval(
      () => {
        void readFile(`/proc/${child.pid}/io`, 'utf8').then(
          (io) => {
            const now = Number(/^wchar: (\d+)$/m.exec(io)?.[1] ?? -1);
            if (now !== written) {
              written = now;
              lastMove = Date.now();
            } else if (Date.now() - lastMove > stallMs) stop();
          },
          () => {},
        );
      },
      Math.max(50, Math.min(5_000, stallMs / 4)),
    );
    const done = (ok: boolean) => {
      clearInterval(watch);
      socket.off('close', stop);
      resolve(ok);
    };
    child.once('error', () => done(false));
    child.once('exit', (code) => done(code === 0));
  });
}
