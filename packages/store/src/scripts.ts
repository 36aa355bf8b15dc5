// berth's own Lua scripts live in ../lua, one file each, named `<name>-<number of keys>.lua` as BullMQ names its
// commands, with a header that says what each KEYS and ARGV entry is and what the script returns. They are read
// once, when this module loads, by the API and the workers alike. Calls send a script by its SHA1 (EVALSHA), not as
// text every time: less to write per call and no hashing of the source by Redis each time. The text goes only when
// Redis does not know the script yet (after a restart or a SCRIPT FLUSH). A line `-- @include <name>` stands for
// ../lua/includes/<name>.lua, as BullMQ's `--- @include` does: a step two scripts share is written once.
import type { Redis } from 'ioredis';
import { ReplyError } from 'ioredis';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';

export interface LuaScript {
  name: string;
  numKeys: number;
  lua: string;
  sha: string;
}

const dir = new URL('../lua/', import.meta.url);
const files = readdirSync(dir);

function load(name: string): LuaScript {
  const file = files.find((f) => f.startsWith(`${name}-`) && /^\d+\.lua$/.test(f.slice(name.length + 1)));
  if (!file) throw new Error(`no Lua script ${name}-<keys>.lua in ${dir.pathname}`);
  const lua = withIncludes(readFileSync(new URL(file, dir), 'utf8'));
  return {
    name,
    numKeys: Number(file.slice(name.length + 1, -'.lua'.length)),
    lua,
    sha: createHash('sha1').update(lua).digest('hex'),
  };
}

/** The script's text with each `-- @include <name>` line replaced by that include's text. */
export function withIncludes(lua: string): string {
  return lua.replace(/^-- @include ([a-z0-9-]+)$/gm, (_, name: string) =>
    readFileSync(new URL(`includes/${name}.lua`, dir), 'utf8').trimEnd(),
  );
}

export const scripts = {
  createJob: load('create-job'),
  saveJob: load('save-job'),
  assignGpus: load('assign-gpus'),
  joinGang: load('join-gang'),
  leaveGang: load('leave-gang'),
  assignGang: load('assign-gang'),
  forgetHold: load('forget-hold'),
  registerWorker: load('register-worker'),
  heartbeat: load('heartbeat'),
  markLost: load('mark-lost'),
  releaseLock: load('release-lock'),
  fencedPutArtifact: load('fenced-put-artifact'),
  appendStreams: load('append-streams'),
} as const;

/** Runs a script with its keys (exactly as many as its file name says) and its arguments. */
export async function runScript(
  redis: Redis,
  script: LuaScript,
  keys: readonly string[],
  args: readonly (string | number)[],
): Promise<unknown> {
  if (keys.length !== script.numKeys) {
    throw new Error(`Lua script ${script.name} takes ${script.numKeys} keys, was given ${keys.length}`);
  }
  try {
    return await redis.evalsha(script.sha, script.numKeys, ...keys, ...args);
  } catch (err) {
    if (err instanceof ReplyError && (err as Error).message.startsWith('NOSCRIPT'))
      return redis.eval(script.lua, script.numKeys, ...keys, ...args);
    throw err;
  }
}
