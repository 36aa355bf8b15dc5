// Datasets: upload a file or archive with progress (XMLHttpRequest reports upload progress; fetch does not), list
// them with their validation report, delete.
import type { Dataset } from '@berth/contracts';
import { errorFrom } from '../api.js';
import { Disposer, type PageFactory } from '../context.js';
import { fill, formatBytes, h, row, table, time } from '../dom.js';

const formats = ['squad', 'classify', 'ner', 'corpus'] as const;
const archive = /\.(tar|tar\.gz|tgz|zip)$/i;

export const datasetsPage: PageFactory = (ctx) => {
  const d = new Disposer();
  const list = h('div');
  const file = h('input', { id: 'ds-file', type: 'file', required: true });
  const name = h('input', { id: 'ds-name', type: 'text', required: true, spellcheck: 'false' });
  const format = h(
    'select',
    { id: 'ds-format' },
    formats.map((f) => h('option', { value: f }, f)),
  );
  const progress = h('progress', { id: 'ds-progress', max: 100, value: 0, hidden: true });
  const progressText = h('span', { class: 'help', 'aria-live': 'polite' });
  const outcome = h('div', { 'aria-live': 'polite' });
  const upload = h('button', { type: 'submit' }, 'Upload');
  const cancelUpload = h('button', { type: 'button', class: 'secondary', hidden: true }, 'Stop upload');
  let xhr: XMLHttpRequest | undefined;
  d.add(() => xhr?.abort());

  file.addEventListener('change', () => {
    const f = file.files?.[0];
    if (f && !name.value) name.value = f.name.replace(archive, '').replace(/\.[^.]+$/, '');
  });

  const form = h(
    'form',
    { class: 'card upload' },
    h('h2', {}, 'Upload'),
    h(
      'div',
      { class: 'fields' },
      h('div', { class: 'field' }, h('label', { for: 'ds-file' }, 'File'), file),
      h('div', { class: 'field' }, h('label', { for: 'ds-name' }, 'Name'), name),
      h('div', { class: 'field' }, h('label', { for: 'ds-format' }, 'Format'), format),
    ),
    h(
      'p',
      { class: 'help' },
      'One file (its name is kept, e.g. train.json) or a .tar, .tar.gz or .zip of files. ' +
        'It is unpacked safely and checked against the format before it can be used.',
    ),
    h('div', { class: 'actions' }, upload, cancelUpload, progress, progressText),
    outcome,
  );
  cancelUpload.addEventListener('click', () => xhr?.abort());
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const f = file.files?.[0];
    if (!f || !name.value.trim()) {
      fill(outcome, h('p', { class: 'error', role: 'alert' }, 'Choose a file and give it a name.'));
      return;
    }
    send(f);
  });

  function send(f: File) {
    const q = new URLSearchParams({ name: name.value.trim(), format: format.value });
    if (!archive.test(f.name)) q.set('filename', f.name.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^[._-]+/, ''));
    const req = new XMLHttpRequest();
    xhr = req;
    req.open('POST', `/v1/datasets?${q}`);
    req.setRequestHeader('authorization', ctx.api.authHeader);
    req.setRequestHeader('content-type', 'application/octet-stream');
    req.upload.onprogress = (e) => {
      if (!e.lengthComputable) return;
      const pct = Math.round((e.loaded / e.total) * 100);
      progress.value = pct;
      progressText.textContent = `${pct}% (${formatBytes(e.loaded)} of ${formatBytes(e.total)})`;
    };
    req.upload.onload = () => (progressText.textContent = 'Uploaded; checking…');
    const done = () => {
      xhr = undefined;
      upload.disabled = false;
      cancelUpload.hidden = true;
      progress.hidden = true;
    };
    req.onload = () => {
      done();
      if (req.status === 201) {
        const ds = JSON.parse(req.responseText) as Dataset;
        progressText.textContent = '';
        fill(
          outcome,
          h('p', { class: 'ok' }, `${ds.name} is ready: ${ds.report.examples} examples in ${ds.files} files.`),
        );
        form.reset();
        void load();
        return;
      }
      const err = errorFrom(req.status, req.responseText);
      const report = (err.details.report ?? undefined) as Dataset['report'] | undefined;
      progressText.textContent = '';
      fill(
        outcome,
        h(
          'div',
          { class: 'error', role: 'alert' },
          h('p', {}, `${err.code}: ${err.message}`),
          report?.errors.length
            ? h(
                'ul',
                {},
                report.errors.map((x) => h('li', {}, `${x.file}${x.line ? `:${x.line}` : ''}: ${x.message}`)),
              )
            : null,
        ),
      );
    };
    req.onerror = () => {
      done();
      fill(outcome, h('p', { class: 'error', role: 'alert' }, 'The upload failed: the connection was lost.'));
    };
    req.onabort = () => {
      done();
      progressText.textContent = 'Upload stopped.';
    };
    upload.disabled = true;
    cancelUpload.hidden = false;
    progress.hidden = false;
    progress.value = 0;
    fill(outcome);
    req.send(f);
  }

  async function remove(ds: Dataset) {
    if (!confirm(`Delete dataset ${ds.name} (${ds.id})?`)) return;
    try {
      await ctx.api.delete(`/v1/datasets/${ds.id}`);
      ctx.notify(`Deleted ${ds.name}.`);
      void load();
    } catch (err) {
      ctx.notify(`Could not delete: ${(err as Error).message}`, 'error');
    }
  }

  async function load() {
    try {
      const { datasets } = await ctx.api.get<{ datasets: Dataset[] }>('/v1/datasets');
      fill(
        list,
        datasets.length === 0
          ? h('p', { class: 'empty' }, 'No datasets yet.')
          : table(
              ['Name', 'Id', 'Format', 'Examples', 'Files', 'Size', 'Created', ''],
              datasets.map((ds) =>
                row(
                  [
                    ds.name,
                    h('td', { class: 'mono' }, ds.id),
                    ds.format,
                    ds.report.examples,
                    ds.files,
                    formatBytes(ds.bytes),
                    time(ds.createdAt),
                    h(
                      'button',
                      {
                        type: 'button',
                        class: 'danger',
                        'aria-label': `Delete ${ds.name}`,
                        onclick: () => void remove(ds),
                      },
                      'Delete',
                    ),
                  ],
                  { 'data-dataset': ds.id },
                ),
              ),
            ),
      );
    } catch (err) {
      fill(list, h('p', { role: 'alert' }, `Could not list datasets: ${(err as Error).message}`));
    }
  }

  void load();
  const el = h('section', {}, h('h1', {}, 'Datasets'), form, h('h2', {}, 'Datasets'), list);
  return { title: 'Datasets', el, dispose: d.dispose };
};
