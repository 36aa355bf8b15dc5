/** redis-server as berth needs it: AOF on (jobs survive a restart), noeviction (BullMQ's locks must never be evicted). */
export function redisArgs(port: number, dir: string): string[] {
  const settings = { port, bind: '127.0.0.1', dir, appendonly: 'yes', 'maxmemory-policy': 'noeviction', save: '' };
  return [...Object.entries(settings).flatMap(([k, v]) => [`--${k}`, String(v)]), '--daemonize', 'no'];
}
