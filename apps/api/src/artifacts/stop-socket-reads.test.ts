// Once stopSocketReads has run, Node reads nothing more of an HTTP server's socket: what the client sends stays in
// the kernel (where a read of a socket made blocking by the pump's child would stop the event loop).
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { stopSocketReads } from './stop-socket-reads.js';

let server: Server;
let port: number;
/** What the server's Node read of each connection: the bytes, and whether its HTTP parser refused any. */
const seen: { socket: Socket; parseErrors: number }[] = [];
let stop = true;

beforeAll(async () => {
  server = createServer((req, res) => {
    const entry = { socket: req.socket, parseErrors: 0 };
    seen.push(entry);
    // As the pump does: the head first, then the socket is taken out of Node's reading.
    res.write(Buffer.alloc(0), () => {
      if (stop) stopSocketReads(req.socket);
      res.socket!.write('after the stop\n');
    });
  });
  server.on('clientError', (_err, socket) => {
    const entry = seen.find((e) => e.socket === socket);
    if (entry) entry.parseErrors++;
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

/** Sends a request, then 128 KiB of bytes no parser takes, once the server has written; returns what Node read. */
async function sendMore(): Promise<{ bytesRead: number; readBefore: number; parseErrors: number; got: string }> {
  const client = connect(port, '127.0.0.1');
  client.on('error', () => {});
  let got = '';
  const wrote = new Promise<void>((resolve) =>
    client.on('data', (c: Buffer) => {
      got += c.toString('latin1');
      if (got.includes('after the stop\n')) resolve();
    }),
  );
  client.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n');
  await wrote;
  const entry = seen.at(-1)!;
  const readBefore = entry.socket.bytesRead;
  client.write(Buffer.alloc(128 * 1024, 'x'));
  await new Promise((r) => setTimeout(r, 300));
  const result = { bytesRead: entry.socket.bytesRead, readBefore, parseErrors: entry.parseErrors, got };
  client.destroy();
  return result;
}

test('bytes a client sends after the stop are not read, and writes still go out', async () => {
  stop = true;
  const { bytesRead, readBefore, parseErrors, got } = await sendMore();
  expect(bytesRead).toBe(readBefore);
  expect(parseErrors).toBe(0);
  expect(got).toContain('after the stop\n');
});

test('without the stop the same bytes are read (so the test above can see a read)', async () => {
  stop = false;
  const { bytesRead, readBefore, parseErrors } = await sendMore();
  expect(bytesRead).toBeGreaterThan(readBefore);
  expect(parseErrors).toBe(1);
});
