// The config file (url and token, mode 0600) and which url and token are in effect: flags, then env, then the file.
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { CliError } from './cli-error.js';
import type { CliEnv } from './env.js';

export interface CliConfig {
  url?: string;
  token?: string;
}

export async function loadConfig(path: string): Promise<CliConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw err;
  }
  try {
    return JSON.parse(text) as CliConfig;
  } catch (err) {
    throw new CliError('CONFIG_INVALID', `${path}: ${(err as Error).message}`);
  }
}

/** Merges `changes` into the file; it holds a token, so only its owner may read it. */
export async function saveConfig(path: string, changes: CliConfig): Promise<void> {
  const config = { ...(await loadConfig(path)), ...changes };
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  await writeFile(path, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
  await chmod(path, 0o600);
}

export function checkUrl(url: string): string {
  if (!URL.canParse(url) || !/^https?:$/.test(new URL(url).protocol)) {
    throw new CliError('INVALID_URL', `not an http(s) URL: ${url}`);
  }
  return url.replace(/\/+$/, '');
}

/** The url and token in effect. */
export async function resolveTarget(
  env: CliEnv,
  flags: CliConfig,
): Promise<{ url: string; token?: string | undefined }> {
  const file = await loadConfig(env.configPath);
  const url = flags.url ?? env.url ?? file.url;
  const token = flags.token ?? env.token ?? file.token;
  if (!url) {
    throw new CliError('NOT_CONFIGURED', 'no API url: run berth login --url URL --token TOKEN, or set BERTH_URL');
  }
  return { url: checkUrl(url), token };
}
