// `berth metrics <job>`: each series' latest value, and the job's summary figures.
import type { Command } from 'commander';
import type { MetricSeries } from '@berth/contracts';
import type { ContextOf } from '../context.js';
import { figure, note, printJson, printTable } from '../output.js';

interface JobMetrics {
  attempt: number | null;
  series: MetricSeries[];
  latest: Record<string, number>;
  summary?: Record<string, number>;
}

export function metricsCommand(program: Command, context: ContextOf): void {
  program
    .command('metrics')
    .description("A job's training metrics: the latest value of each series, and its summary")
    .argument('<job>', 'job id')
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      const ctx = context(cmd);
      const m = await (await ctx.api()).get<JobMetrics>(`/v1/jobs/${encodeURIComponent(id)}/metrics`);
      if (ctx.json) return printJson(m);
      if (m.series.length === 0 && !m.summary) return note(`${id} has reported no metrics`);
      // The settings a run printed (DLLogger PARAMETER records) are not metrics: counted here, listed by --json.
      const metrics = m.series.filter((s) => s.kind !== 'parameter');
      const settings = m.series.length - metrics.length;
      printTable(
        ['METRIC', 'LATEST', 'UNIT', 'KIND', 'POINTS'],
        metrics.map((s) => [s.name, figure(s.latest), s.unit ?? '', s.kind, String(s.count)]),
      );
      if (settings > 0) note(`(and ${settings} parameters the run printed: berth metrics ${id} --json)`);
      const summary = Object.entries(m.summary ?? {});
      if (summary.length === 0) return;
      process.stdout.write('\n');
      printTable(
        ['SUMMARY', 'VALUE'],
        summary.map(([k, v]) => [k, figure(v)]),
      );
    });
}
