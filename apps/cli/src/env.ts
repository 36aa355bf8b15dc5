// The CLI's one read of the environment: where the API is, the token, and where the config file lives.
import { homedir } from 'node:os';
import { join } from 'node:path';

export interface CliEnv {
  /** BERTH_URL: overrides the config file's url. */
  url: string | undefined;
  /** BERTH_TOKEN: overrides the config file's token. */
  token: string | undefined;
  /** `$XDG_CONFIG_HOME/berth/config.json`, by default `~/.config/berth/config.json`. */
  configPath: string;
}

export function readEnv(env: NodeJS.ProcessEnv): CliEnv {
  const configHome = env.XDG_CONFIG_HOME || join(env.HOME || homedir(), '.config');
  return {
    url: env.BERTH_URL || undefined,
    token: env.BERTH_TOKEN || undefined,
    configPath: join(configHome, 'berth', 'config.json'),
  };
}
