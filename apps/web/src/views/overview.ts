// The queue at a glance: jobs by state, what waits and why, and each worker's GPUs with the job holding each.
import type { JobState, WorkerInfo } from '@berth/contracts';
import { Disposer, type PageFactory } from '../context.js';
import { fill, h, jobLink, row, table, time } from '../dom.js';
import { jobStates } from '@berth/contracts/job-states';

interface QueueView {
  counts: Record<JobState, number>;
  waiting: { id: string; gpus: number; position: number; reason: string; placeable: boolean }[];
  workers: { id: string; host: string; status: string; mode: string; gpus: number; free: number; used: number }[];
}

export const overviewPage: PageFactory = (ctx) => {
  const d = new Disposer();
  const counts = h('ul', { class: 'counts', 'aria-label': 'Jobs by state' });
  const waiting = h('div');
  const workers = h('div', { class: 'workers' });
  const updated = h('p', { class: 'help', 'aria-live': 'off' });
  const el = h(
    'section',
    {},
    h('h1', {}, 'Overview'),
    counts,
    h('h2', {}, 'Waiting'),
    waiting,
    h('h2', {}, 'Workers'),
    workers,
    updated,
  );

  async function load() {
    try {
      const [queue, list] = await Promise.all([
        ctx.api.get<QueueView>('/v1/queue?limit=20'),
        ctx.api.get<{ workers: WorkerInfo[] }>('/v1/workers'),
      ]);
      render(queue, list.workers);
      updated.textContent = `Updated ${new Date().toLocaleTimeString()}`;
    } catch (err) {
      updated.textContent = `Could not load the queue: ${(err as Error).message}`;
    }
  }

  function render(queue: QueueView, list: WorkerInfo[]) {
    fill(
      counts,
      jobStates.map((s) =>
        h(
          'li',
          {},
          h(
            'a',
            { href: `#/jobs?state=${s}`, class: `count state-${s}`, 'data-state': s },
            h('span', { class: 'n' }, queue.counts[s] ?? 0),
            h('span', { class: 'label' }, s),
          ),
        ),
      ),
    );
    fill(
      waiting,
      queue.waiting.length === 0
        ? h('p', { class: 'empty' }, 'Nothing is waiting.')
        : table(
            ['#', 'Job', 'GPUs', 'Why it waits'],
            queue.waiting.map((w) =>
              row([w.position, jobLink(w.id), w.gpus, h('td', { class: w.placeable ? '' : 'warn' }, w.reason)]),
            ),
          ),
    );
    const usage = new Map(queue.workers.map((w) => [w.id, w]));
    fill(
      workers,
      list.length === 0
        ? h('p', { class: 'empty' }, 'No worker has registered.')
        : list.map((w) => workerCard(w, usage.get(w.id))),
    );
  }

  void load();
  d.interval(() => void load(), 5000);
  // State changes move counts: refresh soon after one, at most every second.
  let pending: ReturnType<typeof setTimeout> | undefined;
  const soon = () => {
    pending ??= setTimeout(() => {
      pending = undefined;
      void load();
    }, 1000);
  };
  d.add(ctx.feed.subscribe(soon, soon));
  d.add(() => clearTimeout(pending));
  return { title: 'Overview', el, dispose: d.dispose };
};

function workerCard(w: WorkerInfo, usage: { free: number; used: number; gpus: number } | undefined): HTMLElement {
  const total = usage?.gpus ?? w.gpus.length;
  const used = usage?.used ?? w.gpus.filter((g) => g.job).length;
  const versions = [
    w.dockerVersion && `Docker ${w.dockerVersion}`,
    w.driverVersion && `driver ${w.driverVersion}`,
    w.cudaVersion && `CUDA ${w.cudaVersion}`,
  ].filter(Boolean);
  return h(
    'article',
    { class: 'card worker', 'data-worker': w.id },
    h(
      'h3',
      {},
      w.host,
      ' ',
      h('span', { class: `badge worker-${w.status}` }, w.status),
      ' ',
      h('span', { class: 'help' }, w.id),
    ),
    h(
      'p',
      {},
      `${w.mode}, ${w.running.length} running (up to ${w.concurrency}). GPUs: ${used} of ${total} in use. `,
      versions.join(', '),
    ),
    total > 0 ? h('meter', { min: 0, max: total, value: used, 'aria-label': `GPUs in use on ${w.host}` }) : null,
    w.gpus.length > 0
      ? h(
          'ul',
          { class: 'gpus' },
          w.gpus.map((g) =>
            h(
              'li',
              { class: g.job ? 'gpu busy' : 'gpu' },
              h('strong', {}, `GPU ${g.index}`),
              ` ${g.name}${g.memoryMiB ? `, ${Math.round(g.memoryMiB / 1024)} GiB` : ''}: `,
              g.job ? jobLink(g.job) : 'free',
            ),
          ),
        )
      : h('p', { class: 'help' }, `No GPUs (${w.gpuSource}).`),
    w.running.length > 0 ? h('p', {}, 'Running: ', ...w.running.flatMap((id) => [jobLink(id), ' '])) : null,
    h('p', { class: 'help' }, 'Last heartbeat ', time(w.lastHeartbeat)),
  );
}
