// Pipelines: the list, a form for the domain-adapt template (or steps as JSON), and one pipeline's steps live.
import type { Dataset, Pipeline } from '@berth/contracts';
import { ApiError } from '../api.js';
import { Disposer, type PageFactory } from '../context.js';
import { fill, h, jobLink, stateBadge, time } from '../dom.js';

export const pipelinesPage: PageFactory = (ctx) => {
  const d = new Disposer();
  const list = h('div');
  const corpus = h('select', { id: 'pl-corpus', required: true });
  const squad = h('select', { id: 'pl-squad', required: true });
  const name = h('input', { id: 'pl-name', type: 'text', placeholder: 'domain-adapt' });
  const modelConfig = h(
    'select',
    { id: 'pl-model' },
    ['tiny', 'mini', 'base', 'large'].map((m) => h('option', { value: m, selected: m === 'base' }, m)),
  );
  const gpus = h('input', { id: 'pl-gpus', type: 'number', min: 0, max: 8, step: 1, value: 1, inputmode: 'numeric' });
  const steps = h('textarea', { id: 'pl-steps', rows: 8, spellcheck: 'false' });
  const outcome = h('div', { 'aria-live': 'polite' });
  const field = (id: string, label: string, control: HTMLElement, help = '') =>
    h(
      'div',
      { class: 'field' },
      h('label', { for: id }, label),
      control,
      help ? h('p', { class: 'help' }, help) : null,
    );

  const template = h(
    'form',
    { class: 'card' },
    h('h2', {}, 'Domain adaptation'),
    h(
      'p',
      { class: 'help' },
      'Masked-LM pretraining on your corpus → SQuAD fine-tune from its model → ONNX export → TensorRT build → ' +
        'TensorRT perf (the TensorRT steps are skipped where no GPU worker is live).',
    ),
    h(
      'div',
      { class: 'fields' },
      field('pl-name', 'Name', name),
      field('pl-corpus', 'Corpus dataset', corpus),
      field('pl-squad', 'SQuAD dataset', squad),
      field('pl-model', 'Model size', modelConfig),
      field('pl-gpus', 'GPUs per step', gpus, '0 runs the CPU image'),
    ),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Start pipeline')),
  );
  template.addEventListener('submit', (e) => {
    e.preventDefault();
    void create({
      ...(name.value.trim() ? { name: name.value.trim() } : {}),
      template: 'domain-adapt',
      params: { corpus: corpus.value, squad: squad.value, modelConfig: modelConfig.value, gpus: Number(gpus.value) },
    });
  });

  const custom = h(
    'form',
    { class: 'card' },
    h('h2', {}, 'Steps'),
    field(
      'pl-steps',
      'Pipeline as JSON',
      steps,
      '{"name": …, "steps": [{"name", "manifest", "params", "inputs": {"initFrom": {"step": …}}, "dependsOn"}]}',
    ),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Start pipeline')),
  );
  custom.addEventListener('submit', (e) => {
    e.preventDefault();
    let body: unknown;
    try {
      body = JSON.parse(steps.value);
    } catch (err) {
      fill(outcome, h('p', { class: 'error', role: 'alert' }, `Not JSON: ${(err as Error).message}`));
      return;
    }
    void create(body);
  });

  async function create(body: unknown) {
    fill(outcome);
    try {
      const p = await ctx.api.post<Pipeline>('/v1/pipelines', body);
      ctx.notify(`Started pipeline ${p.name}.`);
      ctx.navigate(`#/pipelines/${p.id}`);
    } catch (err) {
      const e = err as ApiError;
      fill(
        outcome,
        h(
          'div',
          { class: 'error', role: 'alert' },
          h('p', {}, `${e.code ?? 'ERROR'}: ${e.message}`),
          e.issues?.length
            ? h(
                'ul',
                {},
                e.issues.map((i) => h('li', {}, `${i.path}: ${i.message}`)),
              )
            : null,
        ),
      );
    }
  }

  async function load() {
    try {
      const [{ pipelines }, { datasets }] = await Promise.all([
        ctx.api.get<{ pipelines: Pipeline[] }>('/v1/pipelines'),
        ctx.api.get<{ datasets: Dataset[] }>('/v1/datasets'),
      ]);
      const options = (format: string) => {
        const matching = datasets.filter((x) => x.format === format);
        return matching.length
          ? matching.map((x) => h('option', { value: x.id }, `${x.name} (${x.id})`))
          : h('option', { value: '' }, `no ${format} dataset: upload one`);
      };
      fill(corpus, options('corpus'));
      fill(squad, options('squad'));
      fill(
        list,
        pipelines.length === 0
          ? h('p', { class: 'empty' }, 'No pipelines yet.')
          : h(
              'ul',
              { class: 'plain' },
              pipelines.map((p) =>
                h(
                  'li',
                  {},
                  h('a', { href: `#/pipelines/${p.id}` }, p.name),
                  ' ',
                  stateBadge(p.state),
                  ' ',
                  h('span', { class: 'help' }, `${p.steps.length} steps, `, time(p.createdAt)),
                ),
              ),
            ),
      );
    } catch (err) {
      fill(list, h('p', { role: 'alert' }, `Could not list pipelines: ${(err as Error).message}`));
    }
  }

  void load();
  d.add(
    ctx.feed.subscribe(
      () => {},
      () => void load(),
    ),
  );
  const el = h(
    'section',
    {},
    h('h1', {}, 'Pipelines'),
    list,
    h('h2', {}, 'Start a pipeline'),
    h('div', { class: 'columns' }, template, custom),
    outcome,
  );
  return { title: 'Pipelines', el, dispose: d.dispose };
};

export const pipelinePage: PageFactory = (ctx, [id = '']) => {
  const d = new Disposer();
  const head = h('div', { class: 'page-head' });
  const body = h('div');
  const el = h('article', {}, h('p', {}, h('a', { href: '#/pipelines' }, '← Pipelines')), head, body);
  let jobs = new Set<string>();

  async function load() {
    let p: Pipeline;
    try {
      p = await ctx.api.get<Pipeline>(`/v1/pipelines/${id}`);
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) {
        fill(el, h('h1', {}, 'Pipeline not found'), h('p', {}, `There is no pipeline ${id} you can see.`));
        d.dispose();
      }
      return;
    }
    jobs = new Set(p.steps.flatMap((s) => (s.job ? [s.job] : [])));
    fill(
      head,
      h(
        'div',
        { class: 'title-line' },
        h('h1', {}, p.name),
        stateBadge(p.state),
        h('span', { class: 'help mono' }, p.id),
      ),
      h(
        'div',
        { class: 'actions' },
        h(
          'button',
          { type: 'button', class: 'danger', disabled: p.state !== 'running', onclick: () => void cancel() },
          'Cancel pipeline',
        ),
      ),
    );
    fill(
      body,
      h(
        'ol',
        { class: 'steps' },
        p.steps.map((s) => {
          const def = p.definition.find((x) => x.name === s.name);
          return h(
            'li',
            { 'data-step': s.name, 'data-state': s.state },
            h('strong', {}, s.name),
            ' ',
            stateBadge(s.state),
            def ? h('span', { class: 'help' }, ` ${def.manifest}`) : null,
            s.job ? h('span', {}, ' ', jobLink(s.job)) : null,
            s.reason ? h('div', { class: 'reason' }, s.reason) : null,
          );
        }),
      ),
      h('p', { class: 'help' }, 'Started ', time(p.createdAt), ', updated ', time(p.updatedAt)),
    );
  }

  async function cancel() {
    if (!confirm('Cancel every step that has not ended?')) return;
    try {
      await ctx.api.post(`/v1/pipelines/${id}/cancel`);
      void load();
    } catch (err) {
      ctx.notify(`Could not cancel: ${(err as Error).message}`, 'error');
    }
  }

  d.add(
    ctx.feed.subscribe(
      (e) => {
        if (jobs.has(e.job)) void load();
      },
      () => void load(),
    ),
  );
  // New steps get their jobs without a state change of a known job.
  d.interval(() => void load(), 5000);
  void load();
  return { title: 'Pipeline', el, dispose: d.dispose };
};
