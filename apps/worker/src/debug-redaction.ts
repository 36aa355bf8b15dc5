// docker-modem logs every request it makes, headers included, through `debug` (DEBUG=modem or DEBUG=*) — and a
// pull's X-Registry-Auth header carries the NGC key; ioredis logs the HELLO or AUTH it sends with REDIS_URL's
// password. `debug` writes to stderr itself, past pino's redaction, so its output is redacted here, for every
// namespace, before it is written.
import { redactDebugLine } from '@berth/contracts';
import createDebug from 'debug';
import { formatWithOptions } from 'node:util';

export function redactDebugOutput(): void {
  createDebug.log = (...args: unknown[]) =>
    process.stderr.write(`${redactDebugLine(formatWithOptions({}, ...args))}\n`);
}
