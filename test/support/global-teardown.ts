import type { TestRedis } from './redis-server.ts';

export default async function globalTeardown(): Promise<void> {
  await (globalThis as { berthTestRedis?: TestRedis }).berthTestRedis?.destroy();
  reportLingering();
}

/**
 * Names what would keep the run's process alive after its tests (a socket, a server, a child, a timer): the
 * integration run exits with --forceExit, and this says what a test left behind.
 */
function reportLingering(): void {
  const handles = (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles();
  const named = handles.flatMap((h) => {
    const handle = h as { constructor: { name: string }; hasRef?: () => boolean; fd?: number };
    if (handle.fd !== undefined && handle.fd <= 2) return [];
    if (handle.hasRef && !handle.hasRef()) return [];
    const socket = h as { remoteAddress?: string; remotePort?: number; localPort?: number; _host?: string };
    const where =
      socket.remotePort !== undefined
        ? ` to ${socket.remoteAddress}:${socket.remotePort}`
        : socket.localPort !== undefined
          ? ` on ${socket.localPort}`
          : '';
    const child = h as { spawnargs?: string[]; killed?: boolean };
    // A child sent its signal is on its way out (the test Redis, just destroyed).
    if (child.killed) return [];
    const args = child.spawnargs ? `: ${child.spawnargs.join(' ').slice(0, 160)}` : '';
    return [`${handle.constructor.name}${where}${args}`];
  });
  // Timers are not handles; their count is told with the other resources (stdio's pipes and TTYs are left out).
  const others = process.getActiveResourcesInfo().filter((r) => !/^(TTYWrap|PipeWrap|FSReqCallback)$/.test(r));
  if (named.length > 0 && others.length > 0) named.push(`resources: ${others.join(', ')}`);
  if (named.length > 0) console.warn(`still open after the tests:\n  ${named.join('\n  ')}`);
}
