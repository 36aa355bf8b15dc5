// Submit a job: pick a recipe, fill the form generated from its parameter schema, check it or submit it.
import type { Artifact, Dataset, JobRecord, WorkerInfo } from '@berth/contracts';
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
  /** The user's succeeded jobs, newest first: what a job can start from. */
  let finished: JobRecord[] = [];
  /** The most GPUs a live worker has; undefined when none is live (the recipe's default stands). */
  let largest: number | undefined;

  async function start() {
    try {
      const [{ manifests }, ds, done, ws] = await Promise.all([
        ctx.api.get<{ manifests: ManifestSummary[] }>('/v1/manifests'),
        ctx.api.get<{ datasets: Dataset[] }>('/v1/datasets').catch(() => ({ datasets: [] as Dataset[] })),
        ctx.api
          .get<{ jobs: JobRecord[] }>('/v1/jobs?state=succeeded&limit=100')
          .catch(() => ({ jobs: [] as JobRecord[] })),
        ctx.api.get<{ workers: WorkerInfo[] }>('/v1/workers').catch(() => ({ workers: [] as WorkerInfo[] })),
      ]);
      datasets = ds.datasets;
      finished = done.jobs;
      const live = ws.workers.filter((w) => w.status === 'live');
      largest = live.length > 0 ? Math.max(...live.map((w) => w.gpus.length)) : undefined;
      const ordered = [...manifests].sort((a, b) => flowRank(a.id) - flowRank(b.id) || a.id.localeCompare(b.id));
      const wanted = query.get('manifest') ?? ordered[0]?.id;
      fill(
        choose,
        ordered.map((m) => h('option', { value: m.id, selected: m.id === wanted }, `${m.title} (${m.id})`)),
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
    // No more GPUs than the largest live worker has: on a cluster of CPU workers the form starts at 0.
    const gpuDefault = largest === undefined ? gpus.default : Math.max(gpus.min, Math.min(gpus.default, largest));
    const gpuInput = h('input', {
      id: 'gpus',
      type: 'number',
      min: gpus.min,
      max: gpus.max,
      step: 1,
      value: gpuDefault,
      inputmode: 'numeric',
    });
    // The CPU image trains in fp32 only.
    const cpuPrecision = () => {
      if (gpuInput.value === '0') params.suggest('precision', 'fp32');
    };
    gpuInput.addEventListener('change', cpuPrecision);
    cpuPrecision();
    const name = h('input', { id: 'name', type: 'text', maxlength: 128, placeholder: 'e.g. squad lr 3e-5' });
    const notes = h('textarea', { id: 'notes', rows: 2, maxlength: 4096 });
    const memory = h('input', { id: 'memory', type: 'text', placeholder: 'e.g. 16g', spellcheck: 'false' });
    const maxRuntime = h('input', { id: 'max-runtime', type: 'number', min: 1, step: 1, inputmode: 'numeric' });
    const mounts = new Set(m.mounts.map((x) => x.target));
    const dataset = h(
      'select',
      { id: 'dataset' },
      h('option', { value: '' }, 'none'),
      datasets.map((x) => h('option', { value: x.id }, `${x.name} (${x.format}, ${x.id})`)),
    );
    const initJob = h(
      'select',
      { id: 'init-job' },
      h('option', { value: '' }, 'none'),
      finished.map((j) =>
        h(
          'option',
          { value: j.id },
          `${j.spec.name ?? j.spec.manifest} · ${j.id} · finished ${(j.finishedAt ?? '').slice(0, 16)}`,
        ),
      ),
    );
    const initArtifact = h('select', { id: 'init-artifact', disabled: true });
    initJob.onchange = () => void artifactsOf(initJob.value);
    async function artifactsOf(jobId: string) {
      fill(initArtifact);
      initArtifact.disabled = jobId === '';
      if (!jobId) return;
      const { artifacts } = await ctx.api
        .get<{ artifacts: Artifact[] }>(`/v1/jobs/${encodeURIComponent(jobId)}/artifacts`)
        .catch(() => ({ artifacts: [] as Artifact[] }));
      const choices = startingPoints(artifacts);
      fill(
        initArtifact,
        choices.map((c, i) => h('option', { value: c.value, selected: i === 0 }, c.label)),
      );
    }
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
      h(
        'fieldset',
        {},
        h('legend', {}, 'Run'),
        h(
          'div',
          { class: 'fields' },
          simple('name', 'name', 'Name', name, 'shown in the jobs list and searched by it'),
          simple('notes', 'notes', 'Notes', notes, 'why this run, what changed'),
        ),
      ),
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
                ? simple(
                    'init-job',
                    'inputs.initFrom',
                    'Start from',
                    initJob,
                    'one of your finished jobs, mounted at /init',
                  )
                : null,
              mounts.has('/init')
                ? simple(
                    'init-artifact',
                    'inputs.initFrom.artifact',
                    'Artifact',
                    initArtifact,
                    'empty: its model, else latest',
                  )
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
      if (initJob.value) {
        inputs.initFrom = { job: initJob.value, ...(initArtifact.value ? { artifact: initArtifact.value } : {}) };
      }
      return {
        manifest: m.id,
        ...(name.value.trim() ? { name: name.value.trim() } : {}),
        ...(notes.value.trim() ? { notes: notes.value.trim() } : {}),
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

/**
 * What a job can start from, best first: its model folder, its newest checkpoint, then its other top-level folders
 * and files (never its log). The first is what the API would pick when none is named, where it has either.
 */
export function startingPoints(artifacts: readonly Artifact[]): { value: string; label: string }[] {
  const top = new Map<string, 'folder' | 'file'>();
  for (const a of artifacts) {
    // The attempt's own log is berth's, not the job's work.
    if (a.kind === 'log') continue;
    const at = a.path.indexOf('/');
    top.set(at < 0 ? a.path : a.path.slice(0, at), at < 0 ? 'file' : 'folder');
  }
  const out: { value: string; label: string }[] = [];
  if (top.get('model') === 'folder') out.push({ value: 'model', label: 'model (the trained model)' });
  if (top.get('checkpoints') === 'folder') out.push({ value: 'latest', label: 'latest checkpoint' });
  for (const [name, kind] of [...top].sort(([a], [b]) => a.localeCompare(b))) {
    if (kind === 'folder' && (name === 'model' || name === 'checkpoints')) continue;
    out.push({ value: name, label: kind === 'folder' ? `${name}/` : name });
  }
  return out;
}

/** Recipes in the order of the flow they serve: pretrain, fine-tune, export, TensorRT, then anything else. */
function flowRank(id: string): number {
  if (/pretrain/.test(id)) return 0;
  if (/finetune|squad|glue/.test(id)) return 1;
  if (/export/.test(id)) return 2;
  if (/tensorrt/.test(id)) return 3;
  return id === 'custom' ? 5 : 4;
}
