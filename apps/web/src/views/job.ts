// One job: what it is and where it stands (timeline with reasons and attempts), its live log and charts, its
// artifacts, and cancel / retry / resume.
import type { Artifact, JobEvent, JobRecord, LogBatch, LogLine, MetricPoint, MetricSeries } from '@berth/contracts';
import { ApiError } from '../api.js';
import { MetricCharts } from '../charts.js';
import { Disposer, type Ctx, type PageFactory } from '../context.js';
import {
  download,
  fill,
  formatBytes,
  formatDuration,
  formatNumber,
  h,
  jobLink,
  row,
  stateBadge,
  table,
  time,
} from '../dom.js';
import { follow, type Follower } from '../live.js';
import { LogView } from '../log-view.js';
import { isTerminal } from '@berth/contracts/job-states';

interface LogRead {
  lines: LogLine[];
  ended: boolean;
  truncated?: number;
}

interface MetricsRead {
  attempt: number | null;
  series: MetricSeries[];
  summary?: Record<string, number>;
}

/** The follow of a job's metrics starts this long before the server's clock at the first read (ids are times). */
const metricsOverlapMs = 10_000;

export const jobPage: PageFactory = (ctx, [id = '']) => {
  const d = new Disposer();
  const base = `/v1/jobs/${id}`;
  let job: JobRecord | undefined;

  const heading = h('h1', { class: 'mono' }, id);
  const badge = h('span');
  const actions = h('div', { class: 'actions' });
  const details = h('dl', { class: 'details' });
  const timeline = h('ol', { class: 'timeline', 'aria-label': 'State history' });
  const attempts = h('div');
  const events = h('div');
  const artifacts = h('div');
  const charts = new MetricCharts();
  d.add(() => charts.dispose());
  const logDownload = h(
    'button',
    {
      type: 'button',
      class: 'secondary',
      // An ended attempt's whole log is an artifact; the log route pages what Redis holds (at most 8 MiB a read).
      onclick: () => {
        const attempt = job && isTerminal(job.state) ? job.attempts.at(-1)?.attempt : undefined;
        const path = attempt ? `${base}/artifacts/logs/attempt-${attempt}.log` : `${base}/logs`;
        void downloadPath(ctx, path, `${id}.log`);
      },
    },
    'Download log',
  );
  const log = new LogView([logDownload]);
  const streamNote = h('span', { class: 'help', 'aria-live': 'polite' });

  const el = h(
    'article',
    { class: 'job', 'data-job': id },
    h('p', {}, h('a', { href: '#/jobs' }, '← Jobs')),
    h('div', { class: 'page-head' }, h('div', { class: 'title-line' }, heading, badge), actions),
    details,
    h(
      'div',
      { class: 'columns' },
      h('section', {}, h('h2', {}, 'Timeline'), timeline),
      h('section', {}, h('h2', {}, 'Attempts'), attempts, h('h2', {}, 'Events'), events),
    ),
    h('section', {}, h('h2', {}, 'Metrics'), charts.el),
    h('section', {}, h('h2', {}, 'Log ', streamNote), log.el),
    h('section', {}, h('h2', {}, 'Artifacts'), artifacts),
  );

  async function loadJob() {
    try {
      job = await ctx.api.get<JobRecord>(base);
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) {
        fill(el, h('h1', {}, 'Job not found'), h('p', {}, `There is no job ${id} you can see.`));
        d.dispose();
        return;
      }
      ctx.notify(`Could not load the job: ${(err as Error).message}`, 'error');
      return;
    }
    renderJob(job);
    void loadEvents();
    void loadArtifacts();
  }

  function renderJob(j: JobRecord) {
    el.dataset.state = j.state;
    fill(badge, stateBadge(j.state), j.reason ? h('span', { class: 'reason' }, ` ${j.reason}`) : null);
    const ended = isTerminal(j.state);
    fill(
      actions,
      h('button', { type: 'button', class: 'danger', disabled: ended, onclick: () => void cancel() }, 'Cancel'),
      h('button', { type: 'button', class: 'secondary', disabled: !ended, onclick: () => void retry() }, 'Retry'),
      // Continues from the newest checkpoint; the API says why when there is nothing to continue.
      j.state === 'failed' || j.state === 'cancelled'
        ? h('button', { type: 'button', class: 'secondary', onclick: () => void resume() }, 'Resume')
        : null,
    );
    const params = j.spec.params as Record<string, unknown>;
    const started = j.startedAt ? Date.parse(j.startedAt) : undefined;
    const finished = j.finishedAt ? Date.parse(j.finishedAt) : Date.now();
    const inputs = j.spec.inputs ?? {};
    const rest = Object.entries(params).filter(([k]) => k !== 'image' && k !== 'command');
    fill(
      details,
      j.spec.name ? item('Name', j.spec.name) : null,
      j.spec.notes ? item('Notes', j.spec.notes) : null,
      item('Recipe', j.spec.manifest),
      // Lineage: what the run read and what it started from.
      inputs.dataset ? item('Dataset', h('code', {}, inputs.dataset)) : null,
      inputs.initFrom
        ? item(
            'Started from',
            h('span', {}, jobLink(inputs.initFrom.job), ` · ${inputs.initFrom.artifact ?? 'latest'} at /init`),
          )
        : null,
      inputs.resumeFrom ? item('Resumed from', jobLink(inputs.resumeFrom)) : null,
      params.image !== undefined ? item('Image', h('code', {}, String(params.image))) : null,
      Array.isArray(params.command) ? item('Command', h('code', {}, params.command.map(shellWord).join(' '))) : null,
      item('GPUs', String(j.spec.resources.gpus ?? 0)),
      item('Created', time(j.createdAt)),
      started !== undefined ? item('Run time', formatDuration(finished - started)) : null,
      j.worker ? item('Worker', j.worker) : null,
      j.exitCode !== undefined ? item('Exit code', String(j.exitCode)) : null,
      j.reason ? item('Reason', `${j.reason}${j.message ? `: ${j.message}` : ''}`) : null,
      j.queue ? item('Queue', `#${j.queue.position}: ${j.queue.reason}`) : null,
      ...Object.entries(j.summary ?? {}).map(([k, v]) => item(k, formatNumber(v))),
      rest.length > 0
        ? item(
            'Parameters',
            h(
              'dl',
              { class: 'params' },
              rest.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, h('code', {}, paramText(v)))]),
            ),
          )
        : null,
    );
    fill(
      timeline,
      j.history.map((c) =>
        h(
          'li',
          { 'data-state': c.state },
          stateBadge(c.state),
          ' ',
          time(c.at),
          c.attempt > 0 ? h('span', { class: 'help' }, ` attempt ${c.attempt}`) : null,
          c.reason ? h('div', { class: 'reason' }, c.reason, c.message ? `: ${c.message}` : '') : null,
          !c.reason && c.message ? h('div', { class: 'help' }, c.message) : null,
        ),
      ),
    );
    fill(
      attempts,
      j.attempts.length === 0
        ? h('p', { class: 'empty' }, 'Not started yet.')
        : table(
            ['#', 'Worker', 'GPUs', 'Started', 'Finished', 'Outcome'],
            j.attempts.map((a) =>
              row([
                String(a.attempt),
                a.worker,
                a.gpus.length ? a.gpus.join(', ') : 'none',
                time(a.startedAt),
                time(a.finishedAt),
                h(
                  'span',
                  {},
                  a.state ? stateBadge(a.state) : '—',
                  a.reason ? ` ${a.reason}` : '',
                  a.exitCode !== undefined ? ` (exit ${a.exitCode})` : '',
                  a.message ? h('div', { class: 'help' }, a.message) : null,
                ),
              ]),
            ),
          ),
    );
  }

  async function loadEvents() {
    try {
      const { events: list } = await ctx.api.get<{ events: JobEvent[] }>(`${base}/events`);
      const recent = list.slice(-20).reverse();
      fill(
        events,
        recent.length === 0
          ? h('p', { class: 'empty' }, 'None.')
          : h(
              'ul',
              { class: 'events' },
              recent.map((e) =>
                h('li', {}, time(e.time), ` ${e.type} (attempt ${e.attempt}) `, h('code', {}, JSON.stringify(e.data))),
              ),
            ),
      );
    } catch {
      // The events are a detail; the timeline already says what matters.
    }
  }

  async function loadArtifacts() {
    try {
      const { artifacts: list } = await ctx.api.get<{ artifacts: Artifact[] }>(`${base}/artifacts`);
      // The trained model, when the job made one: the whole folder in one download, a tar named after it.
      const model = list.some((a) => a.path.startsWith('model/'))
        ? h(
            'button',
            {
              type: 'button',
              class: 'model-download',
              onclick: () => void downloadPath(ctx, `${base}/artifacts/model`, 'model.tar'),
            },
            'Download the model (model.tar, Hugging Face layout)',
          )
        : null;
      fill(
        artifacts,
        model,
        list.length === 0
          ? h('p', { class: 'empty' }, 'None yet.')
          : h(
              'ul',
              { class: 'artifacts' },
              list.map((a) =>
                h(
                  'li',
                  { 'data-path': a.path },
                  h(
                    'div',
                    {},
                    h('code', { class: 'path' }, a.path),
                    h(
                      'div',
                      { class: 'help' },
                      `${a.kind} · attempt ${a.attempt} · `,
                      h('span', { class: 'size' }, formatBytes(a.size)),
                    ),
                    h('div', { class: 'help' }, 'sha256 ', h('code', { class: 'hash' }, a.sha256)),
                  ),
                  h(
                    'button',
                    {
                      type: 'button',
                      class: 'secondary',
                      'data-artifact': a.path,
                      'aria-label': `Download ${a.path}`,
                      onclick: () =>
                        void downloadPath(
                          ctx,
                          `${base}/artifacts/${a.path.split('/').map(encodeURIComponent).join('/')}`,
                          a.path.split('/').at(-1) ?? a.path,
                        ),
                    },
                    'Download',
                  ),
                ),
              ),
            ),
      );
    } catch {
      fill(artifacts, h('p', { class: 'empty' }, 'Could not list the artifacts.'));
    }
  }

  async function cancel() {
    if (!confirm(`Cancel ${id}? A running job is stopped (SIGTERM, then SIGKILL after the grace period).`)) return;
    try {
      job = await ctx.api.post<JobRecord>(`${base}/cancel`);
      renderJob(job);
      ctx.notify(job.state === 'cancelled' ? 'Cancelled.' : 'Cancel requested: the worker is stopping the job.');
    } catch (err) {
      ctx.notify(`Could not cancel: ${(err as Error).message}`, 'error');
    }
  }

  async function retry() {
    try {
      const next = await ctx.api.post<JobRecord>(`${base}/retry`);
      ctx.notify(`Submitted ${next.id}, a retry of ${id}.`);
      ctx.navigate(`#/jobs/${next.id}`);
    } catch (err) {
      ctx.notify(`Could not retry: ${(err as Error).message}`, 'error');
    }
  }

  async function resume() {
    try {
      const next = await ctx.api.post<JobRecord>(`${base}/resume`);
      ctx.notify(`Submitted ${next.id}: ${id} continued from its newest checkpoint.`);
      ctx.navigate(`#/jobs/${next.id}`);
    } catch (err) {
      ctx.notify(`Could not resume: ${(err as Error).message}`, 'error');
    }
  }

  async function startLog() {
    let read: LogRead;
    try {
      read = await ctx.api.get<LogRead>(`${base}/logs?tail=1000`);
    } catch {
      return;
    }
    if (read.truncated) log.mark(`The live log was capped: download the log for its ${read.truncated} oldest lines.`);
    log.add(read.lines);
    if (read.ended) {
      streamNote.textContent = '(ended)';
      return;
    }
    const from = read.lines.at(-1)?.id;
    const logs: Follower = follow(ctx.api, {
      path: (after = from) => `${base}/logs?follow=true${after ? `&after=${after}` : ''}`,
      on: {
        log: (data) => {
          const { lines, node, ...batch } = data as LogBatch;
          // A multi-node job's follow brings every member's lines; those after the head's say whose they are.
          const mark = node ? `[n${node}] ` : '';
          log.add(lines.map((text) => ({ ...batch, text: mark + text })));
        },
        truncated: (t) => log.mark((t as { message: string }).message),
      },
      onStatus: (s) => (streamNote.textContent = s === 'live' ? '(live)' : s === 'ended' ? '(ended)' : `(${s}…)`),
    });
    d.add(() => logs.close());
  }

  async function startMetrics() {
    let read: { data: MetricsRead; headers: Headers };
    try {
      read = await ctx.api.getWithHeaders<MetricsRead>(`${base}/metrics?points=500`);
    } catch {
      return;
    }
    charts.load(read.data.attempt, read.data.series);
    if (job && isTerminal(job.state)) return;
    // Metric ids are Redis stream ids (milliseconds-sequence): follow from a little before this read, by the
    // server's clock; points the read already had are dropped by the charts.
    const serverNow = Date.parse(read.headers.get('date') ?? '') || Date.now();
    const from = `${serverNow - metricsOverlapMs}-0`;
    const metrics = follow(ctx.api, {
      path: (after = from) => `${base}/metrics?follow=true&after=${after}`,
      on: { metric: (p) => charts.add(p as MetricPoint) },
    });
    d.add(() => metrics.close());
  }

  d.add(
    ctx.feed.subscribe(
      (e) => {
        if (e.job === id) void loadJob();
      },
      () => void loadJob(),
    ),
  );
  // Queue places and run times move without state changes.
  d.interval(() => {
    if (job && !isTerminal(job.state)) void loadJob();
  }, 10_000);
  void loadJob().then(() => {
    void startLog();
    void startMetrics();
  });
  return { title: id, el, dispose: d.dispose };
};

function item(term: string, value: string | HTMLElement): HTMLElement[] {
  return [h('dt', {}, term), h('dd', {}, value)];
}

/** A parameter's value as it reads: numbers and text as they are, anything else as JSON. */
function paramText(v: unknown): string {
  return typeof v === 'number' ? formatNumber(v) : typeof v === 'string' ? v : JSON.stringify(v);
}

/** An argument as a shell would need it written, so a command reads as it would be typed. */
function shellWord(arg: unknown): string {
  const s = String(arg);
  return /^[A-Za-z0-9_./:=@%+,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Signs a GET path and downloads it (the token never goes into the URL). */
async function downloadPath(ctx: Ctx, path: string, filename: string) {
  try {
    const { url } = await ctx.api.sign(path);
    download(url, filename);
  } catch (err) {
    ctx.notify(`Could not download: ${(err as Error).message}`, 'error');
  }
}
