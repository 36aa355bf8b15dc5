// ioredis logs every command it writes through `debug` (DEBUG=ioredis:* or DEBUG=*), the HELLO or AUTH it sends with
// REDIS_URL's password among them; in the worker, docker-modem logs every request with its headers, and a pull's
// X-Registry-Auth carries the NGC key. `debug` writes to stderr itself, past pino's redaction, so both processes
// redact its output here, for every namespace, before it is written.
import { redactDebugLine } from '@berth/contracts';
import createDebug from 'debug';
import { formatWithOptions } from 'node:util';

export function redactDebugOutput(): void {
  createDebug.log = (...args: unknown[]) =>
    process.stderr.write(`${redactDebugLine(formatWithOptions({}, ...args))}\n`);
}
