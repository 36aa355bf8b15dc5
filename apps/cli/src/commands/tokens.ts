// `berth tokens create|ls|revoke`: API tokens; a new token's secret is shown once.
import type { Command } from 'commander';
import type { TokenInfo } from '@berth/contracts';
import { withQuery } from '../api-client.js';
import type { ContextOf } from '../context.js';
import { positiveInt } from '../inputs.js';
import { note, printJson, printTable, time } from '../output.js';

interface CreateOptions {
  name: string;
  user?: string;
  expiresInDays?: number;
}

export function tokenCommands(program: Command, context: ContextOf): void {
  const tokens = program.command('tokens').description('API tokens');

  tokens
    .command('create')
    .description('Make a token; prints its secret, which is shown only this once')
    .requiredOption('--name <name>', 'what the token is for')
    .option('--user <id>', 'whose token (admins only; default: yours)')
    .option('--expires-in-days <n>', 'days until it expires (default: never)', positiveInt)
    .action(async (opts: CreateOptions, cmd: Command) => {
      const ctx = context(cmd);
      const body = { name: opts.name, user: opts.user, expiresInDays: opts.expiresInDays };
      const made = await (await ctx.api()).call<TokenInfo & { token: string }>('POST', '/v1/tokens', body);
      if (ctx.json) return printJson(made);
      process.stdout.write(`${made.token}\n`);
      note(`${made.id} (${made.name}); the secret above is not shown again`);
    });

  tokens
    .command('ls')
    .description('Tokens (yours; an admin may name a user)')
    .option('--user <id>', "a user's tokens (admins only)")
    .action(async (opts: { user?: string }, cmd: Command) => {
      const ctx = context(cmd);
      const { tokens: list } = await (
        await ctx.api()
      ).get<{ tokens: TokenInfo[] }>(withQuery('/v1/tokens', { user: opts.user }));
      if (ctx.json) return printJson({ tokens: list });
      printTable(
        ['ID', 'NAME', 'USER', 'CREATED', 'EXPIRES', 'LAST USED'],
        list.map((t) => [t.id, t.name, t.user, time(t.createdAt), time(t.expiresAt) || 'never', time(t.lastUsedAt)]),
      );
    });

  tokens
    .command('revoke')
    .description('Revoke a token: it stops working at once')
    .argument('<id>', 'token id (tok_…)')
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      await (await context(cmd).api()).call('DELETE', `/v1/tokens/${encodeURIComponent(id)}`);
      process.stdout.write(`revoked ${id}\n`);
    });
}
