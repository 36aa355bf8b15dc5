// `berth workers`: hosts, their GPUs and who holds them, heartbeats.
import type { Command } from 'commander';
import type { WorkerInfo } from '@berth/contracts';
import type { ContextOf } from '../context.js';
import { printJson, printTable, time } from '../output.js';

export function workersCommand(program: Command, context: ContextOf): void {
  program
    .command('workers')
    .description('Every worker: host, mode, GPUs in use, running jobs, last heartbeat, live or lost')
    .action(async (_opts: unknown, cmd: Command) => {
      const ctx = context(cmd);
      const { workers } = await (await ctx.api()).get<{ workers: WorkerInfo[] }>('/v1/workers');
      if (ctx.json) return printJson({ workers });
      printTable(
        ['ID', 'HOST', 'STATUS', 'MODE', 'GPUS USED', 'RUNNING', 'HEARTBEAT'],
        workers.map((w) => [
          w.id,
          w.host,
          w.status,
          w.mode,
          `${w.gpus.filter((g) => g.job).length}/${w.gpus.length}`,
          w.running.join(',') || '-',
          time(w.lastHeartbeat),
        ]),
      );
    });
}
