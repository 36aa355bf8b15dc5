// `berth config set url|token …` and `berth login`: where the API is and who we are, kept in the config file.
import { Argument, type Command } from 'commander';
import type { User } from '@berth/contracts';
import { CliError } from '../cli-error.js';
import { checkUrl, saveConfig } from '../config.js';
import type { ContextOf } from '../context.js';
import { printJson } from '../output.js';

interface Me {
  user: Pick<User, 'id' | 'name' | 'role' | 'quotas'>;
  token: { id: string; name: string; expiresAt: string | null };
}

export function configCommands(program: Command, context: ContextOf): void {
  program
    .command('config')
    .description('The config file ($XDG_CONFIG_HOME/berth/config.json, by default ~/.config/berth/config.json)')
    .command('set')
    .description('Save the API url or token in the config file (mode 0600)')
    .addArgument(new Argument('<key>', 'what to set').choices(['url', 'token']))
    .argument('<value>')
    .action(async (key: 'url' | 'token', value: string, _opts: unknown, cmd: Command) => {
      const { env } = context(cmd);
      await saveConfig(env.configPath, { [key]: key === 'url' ? checkUrl(value) : value });
      process.stdout.write(`${key} saved in ${env.configPath}\n`);
    });

  program
    .command('login')
    .description('Check --url and --token with the API (GET /v1/me), then save them in the config file')
    .action(async (_opts: unknown, cmd: Command) => {
      const ctx = context(cmd);
      const api = await ctx.api();
      if (!api.token) throw new CliError('INVALID_ARGUMENT', 'login needs a token: --token TOKEN');
      const me = await api.get<Me>('/v1/me').catch((err: unknown) => {
        if (err instanceof CliError && err.code === 'UNAUTHENTICATED') {
          throw new CliError(
            'UNAUTHENTICATED',
            `${api.url} refused this token (mistyped, revoked or expired): nothing was saved. ` +
              'Make a new one with berth tokens create (signed in), or ask an admin: berth users create',
            err.status,
          );
        }
        throw err;
      });
      await saveConfig(ctx.env.configPath, { url: api.url, token: api.token });
      if (ctx.json) printJson(me);
      else process.stdout.write(`logged in to ${api.url} as ${me.user.name} (${me.user.role})\n`);
    });
}
