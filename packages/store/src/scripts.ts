// Lua scripts are sent by their SHA1 (EVALSHA), not as text on every call: less to write per call and no hashing of
// the source by Redis each time. The text goes only when Redis does not know the script yet (after a restart).
import type { Redis } from 'ioredis';
import { ReplyError } from 'ioredis';
import { createHash } from 'node:crypto';

const shas = new Map<string, string>();

export async function runScript(
  redis: Redis,
  lua: string,
  numKeys: number,
  ...args: (string | number)[]
): Promise<unknown> {
  let sha = shas.get(lua);
  if (!sha) {
    sha = createHash('sha1').update(lua).digest('hex');
    shas.set(lua, sha);
  }
  try {
    return await redis.evalsha(sha, numKeys, ...args);
  } catch (err) {
    if (err instanceof ReplyError && (err as Error).message.startsWith('NOSCRIPT'))
      return redis.eval(lua, numKeys, ...args);
    throw err;
  }
}
