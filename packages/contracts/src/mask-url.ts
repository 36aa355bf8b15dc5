// Credentials out of URLs before they are logged: REDIS_URL, BERTH_API_URL, DOCKER_HOST, request lines, and the
// URLs libraries print in their debug output.

/** The scheme and the userinfo in front of a URL's host (`redis://user:password@`); greedy to the last `@`, as the
 * WHATWG parser reads `redis://:p@ss@host` too. */
const userinfo = /\b([a-z][a-z0-9+.-]*:\/\/)([^\s/?#]*)@/gi;

/** A query parameter whose name says it carries a secret: token, access_token, sig, X-Amz-Signature, api_key, … */
const secretParam = /([?&;][^=&#\s]*(?:token|sig|secret|passw|pwd|key|auth|credential|session)[^=&#\s]*=)[^&#\s]*/gi;

/**
 * A URL — absolute or a request path, or any text with URLs in it — with its password (or a lone user name, which
 * is how tokens ride in URLs such as https://TOKEN@host) and every secret-looking query value replaced by
 * `[redacted]`. Everything else is kept as written, so a masked URL still says where it points.
 */
export function maskUrl(text: string): string {
  return text
    .replace(userinfo, (_, scheme: string, info: string) => {
      const colon = info.indexOf(':');
      return colon < 0 ? `${scheme}[redacted]@` : `${scheme}${info.slice(0, colon)}:[redacted]@`;
    })
    .replace(secretParam, '$1[redacted]');
}

/** docker-modem prints each request's headers, a pull's X-Registry-Auth (the NGC key) among them. */
const registryAuth = /(x-registry-auth['"]?\s*[:=]\s*['"]?)[^'",\s}]+/gi;
/** ioredis prints each command it writes, `write command[host]: db -> hello([ '3', 'AUTH', user, password ])` (or
 * `auth(…)`, or a queued one): everything after the command name goes, to the end of the line, as a password may
 * hold any character. */
const redisAuth = /(\s->\s(?:auth|hello)\().*$/gim;

/**
 * A line of the `debug` output of the libraries berth runs (docker-modem, ioredis, undici) without credentials: the
 * registry auth header, Redis's AUTH arguments and every URL's (maskUrl). `debug` writes to stderr past pino's
 * redaction, so each process routes it through this.
 */
export function redactDebugLine(line: string): string {
  return maskUrl(line.replace(registryAuth, '$1[redacted]').replace(redisAuth, '$1[redacted])'));
}
