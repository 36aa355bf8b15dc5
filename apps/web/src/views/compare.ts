// Several runs' curves over each other: #/compare?jobs=job_a,job_b. Reached from the jobs table (tick the runs,
// then Compare). Each line is named by its run (its name, else its id) and its metric.
import type { JobRecord, MetricSeries } from '@berth/contracts';
import { MetricCharts } from '../charts.js';
import { Disposer, type PageFactory } from '../context.js';
import { fill, h, jobLink } from '../dom.js';

export const comparePage: PageFactory = (ctx, _params, query) => {
  const d = new Disposer();
  const ids = (query.get('jobs') ?? '').split(',').filter((id) => /^job_[a-z2-7]{20}$/.test(id));
  const charts = new MetricCharts();
  d.add(() => charts.dispose());
  const runs = h('ul', { class: 'runs' });
  const el = h(
    'section',
    {},
    h('p', {}, h('a', { href: '#/jobs' }, '← Jobs')),
    h('h1', {}, 'Compare runs'),
    runs,
    charts.el,
  );

  async function start() {
    if (ids.length < 2) {
      fill(runs, h('li', { class: 'empty' }, 'Tick two or more runs in the jobs table, then Compare.'));
      return;
    }
    const loaded = await Promise.all(
      ids.map(async (id) => {
        try {
          const [job, metrics] = await Promise.all([
            ctx.api.get<JobRecord>(`/v1/jobs/${id}`),
            ctx.api.get<{ series: MetricSeries[] }>(`/v1/jobs/${id}/metrics?points=500`),
          ]);
          return { job, series: metrics.series };
        } catch (err) {
          ctx.notify(`Could not load ${id}: ${(err as Error).message}`, 'error');
          return undefined;
        }
      }),
    );
    const found = loaded.filter((r): r is { job: JobRecord; series: MetricSeries[] } => r !== undefined);
    fill(
      runs,
      found.map(({ job }) => h('li', {}, jobLink(job.id), job.spec.name ? ` ${job.spec.name}` : '', ` · ${job.state}`)),
    );
    charts.loadRuns(found.map(({ job, series }) => ({ label: job.spec.name ?? job.id, series })));
  }
  void start();
  return { title: 'Compare runs', el, dispose: d.dispose };
};
