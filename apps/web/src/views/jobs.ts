// The jobs table: filter by state, sort by column, newer pages on demand, states updated live from /v1/events.
import type { JobRecord } from '@berth/contracts';
import { ApiError } from '../api.js';
import { Disposer, type PageFactory } from '../context.js';
import { fill, formatNumber, h, jobLink, stateBadge, time } from '../dom.js';
import { jobStates } from '@berth/contracts/job-states';

type SortKey = 'createdAt' | 'updatedAt' | 'state' | 'manifest' | 'gpus';

const columns: { key: SortKey | null; label: string }[] = [
  { key: null, label: 'Compare' },
  { key: null, label: 'Job' },
  { key: null, label: 'Name' },
  { key: 'manifest', label: 'Recipe' },
  { key: 'state', label: 'State' },
  { key: 'gpus', label: 'GPUs' },
  { key: 'createdAt', label: 'Created' },
  { key: 'updatedAt', label: 'Updated' },
  { key: null, label: 'Result' },
];

/** The figures a run ended with that say how good it is, in this order (the first two present are shown). */
const resultMetrics = ['F1', 'exact_match', 'accuracy', 'mcc', 'final_loss', 'sentences_per_second'];

function resultOf(job: JobRecord): string {
  const summary = job.summary ?? {};
  return resultMetrics
    .filter((m) => summary[m] !== undefined)
    .slice(0, 2)
    .map((m) => `${m} ${formatNumber(summary[m]!)}`)
    .join(', ');
}

/** Whether a job matches the search: its name, notes, id, recipe or labels contain the text. */
function matches(job: JobRecord, text: string): boolean {
  if (!text) return true;
  const hay = [job.id, job.spec.name, job.spec.notes, job.spec.manifest, ...Object.values(job.spec.labels ?? {})];
  return hay.some((v) => v?.toLowerCase().includes(text));
}

function sortValue(job: JobRecord, key: SortKey): string | number {
  switch (key) {
    case 'manifest':
      return job.spec.manifest;
    case 'state':
      return jobStates.indexOf(job.state);
    case 'gpus':
      return job.spec.resources.gpus ?? 0;
    default:
      return job[key];
  }
}

export const jobsPage: PageFactory = (ctx, _params, query) => {
  const d = new Disposer();
  const filter = query.get('state') ?? '';
  const jobs = new Map<string, JobRecord>();
  let sort: { key: SortKey; dir: 1 | -1 } = { key: 'createdAt', dir: -1 };
  let next: string | null = null;

  const select = h(
    'select',
    {
      id: 'state-filter',
      onchange: (e: Event) => {
        const v = (e.target as HTMLSelectElement).value;
        ctx.navigate(v ? `#/jobs?state=${v}` : '#/jobs');
      },
    },
    h('option', { value: '' }, 'all states'),
    jobStates.map((s) => h('option', { value: s, selected: s === filter }, s)),
  );
  // Runs ticked for the compare page.
  const ticked = new Set<string>();
  const compare = h(
    'button',
    {
      type: 'button',
      class: 'secondary',
      disabled: true,
      onclick: () => ctx.navigate(`#/compare?jobs=${[...ticked].join(',')}`),
    },
    'Compare',
  );
  const search = h('input', {
    id: 'job-search',
    type: 'search',
    placeholder: 'name, notes, id, recipe, label',
    oninput: () => render(),
  });
  const thead = h('thead');
  const tbody = h('tbody');
  const status = h('p', { class: 'help', 'aria-live': 'polite' });
  const more = h(
    'button',
    { type: 'button', class: 'secondary', hidden: true, onclick: () => void load(next) },
    'More',
  );
  const el = h(
    'section',
    {},
    h(
      'div',
      { class: 'page-head' },
      h('h1', {}, 'Jobs'),
      h('a', { href: '#/submit', class: 'button' }, 'Submit a job'),
    ),
    h(
      'div',
      { class: 'toolbar' },
      h('label', { for: 'state-filter' }, 'State'),
      select,
      h('label', { for: 'job-search' }, 'Search'),
      search,
      compare,
    ),
    h('div', { class: 'table-wrap' }, h('table', { class: 'jobs' }, thead, tbody)),
    more,
    status,
  );

  function renderHead() {
    fill(
      thead,
      h(
        'tr',
        {},
        columns.map(({ key, label }) => {
          if (!key) return h('th', { scope: 'col' }, label);
          const active = sort.key === key;
          return h(
            'th',
            { scope: 'col', 'aria-sort': active ? (sort.dir === 1 ? 'ascending' : 'descending') : 'none' },
            h(
              'button',
              {
                type: 'button',
                class: 'sort',
                onclick: () => {
                  sort = { key, dir: active ? (sort.dir === 1 ? -1 : 1) : key.endsWith('At') ? -1 : 1 };
                  render();
                },
              },
              label,
              h('span', { 'aria-hidden': 'true' }, active ? (sort.dir === 1 ? ' ▲' : ' ▼') : ''),
            ),
          );
        }),
      ),
    );
  }

  function row(job: JobRecord): HTMLElement {
    return h(
      'tr',
      { 'data-job': job.id, 'data-state': job.state },
      h(
        'td',
        {},
        h('input', {
          type: 'checkbox',
          'aria-label': `Compare ${job.spec.name ?? job.id}`,
          checked: ticked.has(job.id),
          onchange: (e: Event) => {
            if ((e.target as HTMLInputElement).checked) ticked.add(job.id);
            else ticked.delete(job.id);
            compare.disabled = ticked.size < 2;
          },
        }),
      ),
      h('td', {}, jobLink(job.id)),
      h('td', { class: 'name' }, job.spec.name ?? ''),
      h('td', {}, job.spec.manifest),
      h('td', {}, stateBadge(job.state), job.reason ? h('span', { class: 'reason' }, ` ${job.reason}`) : null),
      h('td', {}, job.spec.resources.gpus ?? 0),
      h('td', {}, time(job.createdAt)),
      h('td', {}, time(job.updatedAt)),
      h('td', { class: 'result' }, resultOf(job)),
    );
  }

  function render() {
    renderHead();
    const text = search.value.trim().toLowerCase();
    const list = [...jobs.values()]
      .filter((j) => matches(j, text))
      .sort((a, b) => {
        const x = sortValue(a, sort.key);
        const y = sortValue(b, sort.key);
        return (x < y ? -1 : x > y ? 1 : 0) * sort.dir;
      });
    fill(
      tbody,
      list.length === 0
        ? h(
            'tr',
            {},
            h('td', { colspan: columns.length, class: 'empty' }, filter ? `No ${filter} jobs.` : 'No jobs yet.'),
          )
        : list.map(row),
    );
    more.hidden = next === null;
  }

  async function load(cursor: string | null = null) {
    const q = new URLSearchParams({ limit: '50' });
    if (filter) q.set('state', filter);
    if (cursor) q.set('cursor', cursor);
    try {
      const page = await ctx.api.get<{ jobs: JobRecord[]; next: string | null }>(`/v1/jobs?${q}`);
      if (!cursor) jobs.clear();
      for (const j of page.jobs) jobs.set(j.id, j);
      next = page.next;
      status.textContent = '';
      render();
    } catch (err) {
      status.textContent = `Could not load jobs: ${(err as Error).message}`;
    }
  }

  async function refresh(id: string) {
    try {
      const job = await ctx.api.get<JobRecord>(`/v1/jobs/${id}`);
      if (!jobs.has(id) && filter && job.state !== filter) return;
      jobs.set(id, job);
      render();
    } catch (err) {
      // Someone else's job (404) is not ours to show.
      if (!(err instanceof ApiError && err.status === 404)) throw err;
    }
  }

  d.add(
    ctx.feed.subscribe(
      (e) => {
        const known = jobs.get(e.job);
        if (known) {
          // Show the new state at once; the full record (times, reason) follows.
          jobs.set(e.job, { ...known, state: e.state, attempt: e.attempt });
          render();
        }
        if (known || !filter || e.state === filter) void refresh(e.job).catch(() => {});
      },
      () => void load(),
    ),
  );
  render();
  void load();
  return { title: filter ? `Jobs: ${filter}` : 'Jobs', el, dispose: d.dispose };
};
