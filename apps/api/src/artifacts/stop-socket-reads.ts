// Taking a socket out of Node's reading for good, so a child process can own it (the `dd` socket pump).
//
// The pump's child makes the socket blocking for Node too (libuv makes a child's stdio blocking, and the flag lives
// on the open file description they share): one more read of it by Node, with nothing to read, would stop the whole
// event loop. On an HTTP server's socket pause() stops Node's reads only through a listener the server puts on it
// (its parser reads the handle directly), and that is Node's internals. So the handle's reading is stopped here as
// well, through the just as internal `_handle.readStop()`. Either may change with Node: stop-socket-reads.test.ts
// sends bytes after the stop and fails if Node reads any of them.
import type { Socket } from 'node:net';

/** Stops every read Node makes of `socket`, for as long as it is open; writes still go through. */
export function stopSocketReads(socket: Socket): void {
  socket.pause();
  const handle = (socket as unknown as { _handle?: { reading?: boolean; readStop?(): number } })._handle;
  if (handle?.readStop) {
    handle.reading = false;
    handle.readStop();
  }
}
