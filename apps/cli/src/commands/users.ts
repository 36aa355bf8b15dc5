// `berth users create|ls|set` (admins): people and worker accounts, their roles and quotas.
import type { Command } from 'commander';
import type { User } from '@berth/contracts';
import type { ContextOf } from '../context.js';
import { positiveInt } from '../inputs.js';
import { printJson, printTable, time } from '../output.js';

interface QuotaOptions {
  queuedJobs?: number;
  gpus?: number;
}

const quotasOf = (o: QuotaOptions) =>
  o.queuedJobs === undefined && o.gpus === undefined
    ? undefined
    : {
        queuedJobs: o.queuedJobs,
        gpus: o.gpus,
      };

const limit = (n: number | null) => (n === null ? '-' : String(n));

export function userCommands(program: Command, context: ContextOf): void {
  const users = program.command('users').description('Users and worker accounts (admins only)');

  users
    .command('create')
    .description('Add a user: a member (default), an admin, or a worker account for a worker process')
    .argument('<name>', 'lower-case name, e.g. alice or worker-gpu1')
    .option('--role <role>', 'admin, member or worker', 'member')
    .option('--queued-jobs <n>', 'most jobs waiting at once', positiveInt)
    .option('--gpus <n>', 'most GPUs asked for by unfinished jobs', positiveInt)
    .action(async (name: string, opts: QuotaOptions & { role: string }, cmd: Command) => {
      const ctx = context(cmd);
      const quotas = quotasOf(opts);
      const user = await (await ctx.api()).call<User>('POST', '/v1/users', { name, role: opts.role, quotas });
      if (ctx.json) return printJson(user);
      process.stdout.write(`${user.id}\n`);
    });

  users
    .command('ls')
    .description('Every user with role and quotas')
    .action(async (_opts: unknown, cmd: Command) => {
      const ctx = context(cmd);
      const { users: list } = await (await ctx.api()).get<{ users: User[] }>('/v1/users');
      if (ctx.json) return printJson({ users: list });
      printTable(
        ['ID', 'NAME', 'ROLE', 'QUEUED JOBS', 'GPUS', 'CREATED'],
        list.map((u) => [u.id, u.name, u.role, limit(u.quotas.queuedJobs), limit(u.quotas.gpus), time(u.createdAt)]),
      );
    });

  users
    .command('set')
    .description("Change a user's role or quotas")
    .argument('<id>', 'user id (usr_…)')
    .option('--role <role>', 'admin, member or worker')
    .option('--queued-jobs <n>', 'most jobs waiting at once', positiveInt)
    .option('--gpus <n>', 'most GPUs asked for by unfinished jobs', positiveInt)
    .action(async (id: string, opts: QuotaOptions & { role?: string }, cmd: Command) => {
      const ctx = context(cmd);
      const body = { role: opts.role, quotas: quotasOf(opts) };
      const user = await (await ctx.api()).call<User>('PATCH', `/v1/users/${encodeURIComponent(id)}`, body);
      if (ctx.json) return printJson(user);
      process.stdout.write(
        `${user.id} ${user.name} ${user.role} queued ${limit(user.quotas.queuedJobs)} gpus ${limit(user.quotas.gpus)}\n`,
      );
    });
}
