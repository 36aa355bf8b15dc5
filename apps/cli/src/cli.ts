// The `berth` command line: global options, how a command finds the API, and every command, wired in one place.
import { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { ApiClient } from './api-client.js';
import { resolveTarget } from './config.js';
import type { ContextOf } from './context.js';
import type { CliEnv } from './env.js';
import { artifactCommands } from './commands/artifacts.js';
import { configCommands } from './commands/config.js';
import { datasetCommands } from './commands/datasets.js';
import { jobCommands } from './commands/jobs.js';
import { logsCommand } from './commands/logs.js';
import { metricsCommand } from './commands/metrics.js';
import { pipelineCommands } from './commands/pipelines.js';
import { tokenCommands } from './commands/tokens.js';
import { userCommands } from './commands/users.js';
import { workersCommand } from './commands/workers.js';

interface GlobalFlags {
  url?: string;
  token?: string;
  json?: boolean;
}

const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

export function buildCli(env: CliEnv): Command {
  const program = new Command('berth')
    .description('Submit, watch and collect BERT training jobs on a berth cluster')
    .version(version)
    .option('--url <url>', 'the berth API (overrides BERTH_URL and the config file)')
    .option('--token <token>', 'API token (overrides BERTH_TOKEN and the config file)')
    .option('--json', 'print JSON instead of tables')
    .configureHelp({ showGlobalOptions: true })
    .configureOutput({
      outputError: (text, write) =>
        write(
          `berth: USAGE: ${text
            .replace(/^error: /, '')
            .trim()
            .replace(/\s*\n\s*/g, ' ')}\n`,
        ),
    });

  const context: ContextOf = (cmd) => {
    const { url, token, json } = cmd.optsWithGlobals<GlobalFlags>();
    const flags = { ...(url ? { url } : {}), ...(token ? { token } : {}) };
    return {
      env,
      json: json === true,
      api: async () => {
        const target = await resolveTarget(env, flags);
        return new ApiClient(target.url, target.token);
      },
    };
  };

  configCommands(program, context);
  jobCommands(program, context);
  logsCommand(program, context);
  metricsCommand(program, context);
  artifactCommands(program, context);
  datasetCommands(program, context);
  pipelineCommands(program, context);
  workersCommand(program, context);
  tokenCommands(program, context);
  userCommands(program, context);
  return program;
}
