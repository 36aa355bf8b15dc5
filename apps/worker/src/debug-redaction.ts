// docker-modem logs every request it makes, headers included, through `debug` (DEBUG=modem or DEBUG=*) — and a
// pull's X-Registry-Auth header carries the NGC key. `debug` writes to stderr itself, past pino's redaction, so its
// output is redacted here, for every namespace, before it is written.
import createDebug from 'debug';
import { formatWithOptions } from 'node:util';

const registryAuth = /(x-registry-auth['"]?\s*[:=]\s*['"]?)[^'",\s}]+/gi;

export function redactDebugOutput(): void {
  createDebug.log = (...args: unknown[]) =>
    process.stderr.write(`${formatWithOptions({}, ...args).replace(registryAuth, '$1[redacted]')}\n`);
}
