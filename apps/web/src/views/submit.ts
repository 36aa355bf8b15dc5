// Submit a job: pick a recipe, fill the form generated from its parameter schema, check it or submit it.
import type { Dataset, JobRecord } from '@berth/contracts';
import { ApiError } from '../api.js';
import { Disposer, type PageFactory } from '../context.js';
import { fill, h, randomKey } from '../dom.js';
import { FieldError, SchemaForm, showIssues, type ParamsSchema } from '../schema-form.js';

interface ManifestSummary {
  id: string;
  title: string;
  description: string;
  resources: { gpus: { default: number; min: number; max: number } };
}

interface ManifestDetail extends ManifestSummary {
  paramsSchema: ParamsSchema;
  mounts: { target: string; source: string }[];
}

export const submitPage: PageFactory = (ctx, _params, query) => {
  const d = new Disposer();
  const choose = h('select', { id: 'manifest', name: 'manifest', required: true });
  const about = h('p', { class: 'help', id: 'manifest-help' });
  const body = h('div');
  const result = h('div', { 'aria-live': 'polite' });
  const el = h(
    'section',
    {},
    h('h1', {}, 'Submit a job'),
    h('div', { class: 'field' }, h('label', { for: 'manifest' }, 'Recipe'), choose, about),
    body,
    result,
  );
  let datasets: Dataset[] = [];

  async function start() {
    try {
      const [{ manifests }, ds] = await Promise.all([
        ctx.api.get<{ manifests: ManifestSummary[] }>('/v1/manifests'),
        ctx.api.get<{ datasets: Dataset[] }>('/v1/datasets').catch(() => ({ datasets: [] as Dataset[] })),
      ]);
      datasets = ds.datasets;
      const wanted = query.get('manifest') ?? manifests[0]?.id;
      fill(
        choose,
        manifests.map((m) => h('option', { value: m.id, selected: m.id === wanted }, `${m.title} (${m.id})`)),
      );
      choose.setAttribute('aria-describedby', 'manifest-help');
      choose.onchange = () => void show(choose.value);
      if (wanted) await show(wanted);
    } catch (err) {
      fill(body, h('p', { role: 'alert' }, `Could not load the recipes: ${(err as Error).message}`));
    }
  }

  async function show(id: string) {
    let m: ManifestDetail;
    try {
      m = await ctx.api.get<ManifestDetail>(`/v1/manifests/${encodeURIComponent(id)}`);
    } catch (err) {
      fill(body, h('p', { role: 'alert' }, `Could not load ${id}: ${(err as Error).message}`));
      return;
    }
    about.textContent = m.description;
    fill(result);
    fill(body, jobForm(m));
  }

  function jobForm(m: ManifestDetail): HTMLElement {
    const params = new SchemaForm(m.paramsSchema);
    const { gpus } = m.resources;
    const gpuInput = h('input', {
      id: 'gpus',
      type: 'number',
      min: gpus.min,
      max: gpus.max,
      step: 1,
      value: gpus.default,
      inputmode: 'numeric',
    });
    const memory = h('input', { id: 'memory', type: 'text', placeholder: 'e.g. 16g', spellcheck: 'false' });
    const maxRuntime = h('input', { id: 'max-runtime', type: 'number', min: 1, step: 1, inputmode: 'numeric' });
    const mounts = new Set(m.mounts.map((x) => x.target));
    const dataset = h(
      'select',
      { id: 'dataset' },
      h('option', { value: '' }, 'none'),
      datasets.map((x) => h('option', { value: x.id }, `${x.name} (${x.format}, ${x.id})`)),
    );
    const initJob = h('input', { id: 'init-job', type: 'text', placeholder: 'job_…', spellcheck: 'false' });
    const initArtifact = h('input', { id: 'init-artifact', type: 'text', placeholder: 'latest', spellcheck: 'false' });
    const submit = h('button', { type: 'submit' }, 'Submit');
    const check = h('button', { type: 'button', class: 'secondary' }, 'Check');
    const simple = (id: string, path: string, label: string, control: HTMLElement, help: string) =>
      h(
        'div',
        { class: 'field', 'data-field': path },
        h('label', { for: id }, label),
        control,
        h('p', { class: 'help' }, help),
        h('p', { class: 'field-error', role: 'alert' }),
      );
    const form = h(
      'form',
      { class: 'job-form', novalidate: true },
      h('fieldset', {}, h('legend', {}, 'Parameters'), params.el),
      h(
        'fieldset',
        {},
        h('legend', {}, 'Resources'),
        h(
          'div',
          { class: 'fields' },
          simple('gpus', 'resources.gpus', 'GPUs', gpuInput, `${gpus.min} to ${gpus.max}; 0 runs the CPU image`),
          simple('memory', 'resources.memory', 'Memory limit', memory, 'the recipe’s when empty'),
          simple('max-runtime', 'maxRuntime', 'Max run time (s)', maxRuntime, 'stopped as TIMEOUT after it'),
        ),
      ),
      mounts.has('/data') || mounts.has('/init')
        ? h(
            'fieldset',
            {},
            h('legend', {}, 'Inputs'),
            h(
              'div',
              { class: 'fields' },
              mounts.has('/data')
                ? simple('dataset', 'inputs.dataset', 'Dataset', dataset, 'mounted read-only at /data')
                : null,
              mounts.has('/init')
                ? simple('init-job', 'inputs.initFrom', 'Start from job', initJob, 'its artifact is mounted at /init')
                : null,
              mounts.has('/init')
                ? simple('init-artifact', 'inputs.initFrom.artifact', 'Artifact', initArtifact, 'a path or latest')
                : null,
            ),
          )
        : null,
      h('div', { class: 'actions' }, submit, check),
    );

    function spec(): Record<string, unknown> {
      const resources: Record<string, unknown> = {};
      if (gpuInput.value !== '') resources.gpus = Number(gpuInput.value);
      if (memory.value.trim()) resources.memory = memory.value.trim();
      const inputs: Record<string, unknown> = {};
      if (dataset.value) inputs.dataset = dataset.value;
      if (initJob.value.trim()) {
        inputs.initFrom = { job: initJob.value.trim(), artifact: initArtifact.value.trim() || 'latest' };
      }
      return {
        manifest: m.id,
        params: params.values(),
        resources,
        ...(Object.keys(inputs).length ? { inputs } : {}),
        ...(maxRuntime.value ? { maxRuntime: Number(maxRuntime.value) } : {}),
      };
    }

    // One Idempotency-Key per distinct body: pressing Submit twice (or again after a lost answer) makes one job.
    let sent: { body: string; key: string } | undefined;

    async function send(validateOnly: boolean) {
      let body: Record<string, unknown>;
      try {
        body = spec();
      } catch (err) {
        if (err instanceof FieldError) showIssues(form, [{ path: err.path, message: err.message }]);
        return;
      }
      showIssues(form, []);
      fill(result);
      submit.disabled = check.disabled = true;
      try {
        if (validateOnly) {
          const preview = await ctx.api.post<{ launch: unknown }>('/v1/jobs/validate', body);
          fill(
            result,
            h('h2', {}, 'The launch it renders to'),
            h('pre', { class: 'preview' }, JSON.stringify(preview.launch, null, 2)),
          );
          return;
        }
        const text = JSON.stringify(body);
        if (sent?.body !== text) sent = { body: text, key: randomKey() };
        const job = await ctx.api.post<JobRecord>('/v1/jobs', body, { 'idempotency-key': sent.key });
        ctx.notify(`Submitted ${job.id}.`);
        ctx.navigate(`#/jobs/${job.id}`);
      } catch (err) {
        const e = err as ApiError;
        const rest = e instanceof ApiError ? showIssues(form, e.issues) : [];
        fill(
          result,
          h(
            'div',
            { class: 'error', role: 'alert' },
            h('p', {}, `${e.code ?? 'ERROR'}: ${e.message}`),
            rest.length
              ? h(
                  'ul',
                  {},
                  rest.map((r) => h('li', {}, r)),
                )
              : null,
          ),
        );
      } finally {
        submit.disabled = check.disabled = false;
      }
    }

    form.addEventListener('submit', (e) => {
      e.preventDefault();
      void send(false);
    });
    check.addEventListener('click', () => void send(true));
    return form;
  }

  void start();
  return { title: 'Submit a job', el, dispose: d.dispose };
};
