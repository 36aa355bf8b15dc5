// What a command's action gets from the command line it runs under; cli.ts builds it, the commands take it.
import type { Command } from 'commander';
import type { ApiClient } from './api-client.js';
import type { CliEnv } from './env.js';

/** What a command's action needs besides its own arguments. */
export interface Context {
  env: CliEnv;
  /** --json: print JSON for scripts instead of tables. */
  json: boolean;
  /** A client for the url and token in effect: flags, then BERTH_URL/BERTH_TOKEN, then the config file. */
  api(): Promise<ApiClient>;
}

export type ContextOf = (cmd: Command) => Context;
