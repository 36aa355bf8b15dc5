// Form fields generated from a recipe's parameter JSON Schema (GET /v1/manifests/:id → paramsSchema), and the
// params object read back from them: only what the user filled in is sent, the API applies the defaults.
import { h } from './dom.js';

export interface PropertySchema {
  type?: string;
  enum?: unknown[];
  default?: unknown;
  minimum?: number;
  maximum?: number;
  description?: string;
  items?: { type?: string };
}

export interface ParamsSchema {
  properties?: Record<string, PropertySchema>;
  required?: string[];
}

interface Field {
  name: string;
  el: HTMLElement;
  /** undefined: leave the parameter out. Throws a message for input that cannot be read. */
  read(): unknown;
  /** Pre-selects a value the user has not set (choice fields only). */
  suggest?(value: string): void;
}

/** Parameters shown up front: what a run is about (data, model size, length, precision) and the recipes' must-haves. */
const basicParams = new Set([
  'image',
  'command',
  'train_file',
  'predict_file',
  'eval_file',
  'model_config',
  'max_steps',
  'epochs',
  'precision',
  'batch_size',
  'lr',
  'task_name',
  'onnx',
  'engine',
]);

export class SchemaForm {
  readonly el: HTMLElement;
  private readonly fields: Field[];

  constructor(schema: ParamsSchema, idPrefix = 'param') {
    const required = new Set(schema.required ?? []);
    this.fields = Object.entries(schema.properties ?? {}).map(([name, p]) =>
      field(`${idPrefix}-${name}`, name, p, required.has(name)),
    );
    // The parameters most runs set come first; the rest wait behind "Advanced", still sent when changed.
    const basic = this.fields.filter((f) => required.has(f.name) || basicParams.has(f.name));
    const advanced = this.fields.filter((f) => !basic.includes(f));
    this.el = h(
      'div',
      {},
      h(
        'div',
        { class: 'fields' },
        basic.map((f) => f.el),
      ),
      advanced.length > 0
        ? h(
            'details',
            { class: 'advanced' },
            h('summary', {}, `Advanced parameters (${advanced.length})`),
            h(
              'div',
              { class: 'fields' },
              advanced.map((f) => f.el),
            ),
          )
        : null,
    );
  }

  /** Pre-selects `value` for a choice parameter the user left at its default; other fields are left alone. */
  suggest(name: string, value: string): void {
    this.fields.find((f) => f.name === name)?.suggest?.(value);
  }

  /** The params object; throws `{field, message}` for a value that cannot be read. */
  values(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const f of this.fields) {
      let v: unknown;
      try {
        v = f.read();
      } catch (err) {
        throw new FieldError(`params.${f.name}`, (err as Error).message);
      }
      if (v !== undefined) out[f.name] = v;
    }
    return out;
  }
}

export class FieldError extends Error {
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(message);
  }
}

function field(id: string, name: string, p: PropertySchema, required: boolean): Field {
  const describedBy = `${id}-help`;
  const help = [
    p.description,
    p.minimum !== undefined || p.maximum !== undefined ? `range ${p.minimum ?? '…'} to ${p.maximum ?? '…'}` : '',
    p.default !== undefined ? `default ${JSON.stringify(p.default)}` : '',
  ]
    .filter(Boolean)
    .join('; ');
  const wrap = (control: HTMLElement, hint = help) =>
    h(
      'div',
      { class: 'field', 'data-field': `params.${name}` },
      h('label', { for: id }, name, required ? h('span', { class: 'req', 'aria-hidden': 'true' }, ' *') : null),
      control,
      h('p', { class: 'help', id: describedBy }, hint),
      h('p', { class: 'field-error', id: `${id}-error`, role: 'alert' }),
    );
  const common = { id, name, 'aria-describedby': `${describedBy} ${id}-error`, required };

  if (p.enum) {
    const select = h(
      'select',
      common,
      required ? null : h('option', { value: '' }, p.default !== undefined ? `default (${String(p.default)})` : '—'),
      p.enum.map((v) => h('option', { value: String(v) }, String(v))),
    );
    return {
      name,
      el: wrap(select),
      read: () => (select.value === '' ? undefined : (p.enum!.find((v) => String(v) === select.value) ?? select.value)),
      suggest: (value) => {
        if (select.value === '' && p.enum!.some((v) => String(v) === value)) select.value = value;
      },
    };
  }
  if (p.type === 'boolean') {
    const box = h('input', { ...common, type: 'checkbox', required: false, checked: p.default === true });
    return {
      name,
      el: h(
        'div',
        { class: 'field check', 'data-field': `params.${name}` },
        h('label', { for: id }, box, ` ${name}`),
        h('p', { class: 'help', id: describedBy }, help),
        h('p', { class: 'field-error', id: `${id}-error`, role: 'alert' }),
      ),
      read: () => (box.checked === (p.default === true) ? undefined : box.checked),
    };
  }
  if (p.type === 'integer' || p.type === 'number') {
    const input = h('input', {
      ...common,
      type: 'number',
      inputmode: p.type === 'integer' ? 'numeric' : 'decimal',
      step: p.type === 'integer' ? 1 : 'any',
      min: p.minimum,
      max: p.maximum,
      placeholder: p.default !== undefined ? String(p.default) : '',
    });
    return {
      name,
      el: wrap(input),
      read: () => (input.value === '' ? undefined : Number(input.value)),
    };
  }
  if (p.type === 'array') {
    const area = h('textarea', { ...common, rows: 4, spellcheck: 'false' });
    return {
      name,
      el: wrap(area, `${help}${help ? '; ' : ''}one item per line`),
      read: () => {
        const lines = area.value.split('\n');
        while (lines.length > 0 && lines.at(-1) === '') lines.pop();
        if (lines.length === 0) return undefined;
        return p.items?.type === 'number' || p.items?.type === 'integer' ? lines.map(Number) : lines;
      },
    };
  }
  if (p.type === 'object') {
    const area = h('textarea', { ...common, rows: 3, spellcheck: 'false', required: false });
    return {
      name,
      el: wrap(area, `${help}${help ? '; ' : ''}NAME=value, one per line`),
      read: () => {
        const entries = area.value
          .split('\n')
          .filter((l) => l.trim() !== '')
          .map((l) => {
            const i = l.indexOf('=');
            if (i < 1) throw new Error(`"${l}" is not NAME=value`);
            return [l.slice(0, i).trim(), l.slice(i + 1)] as const;
          });
        return entries.length ? Object.fromEntries(entries) : undefined;
      },
    };
  }
  const input = h('input', {
    ...common,
    type: 'text',
    spellcheck: 'false',
    placeholder: p.default !== undefined ? String(p.default) : '',
  });
  return { name, el: wrap(input), read: () => (input.value === '' ? undefined : input.value) };
}

/** Shows each issue next to its field (by path, e.g. params.batch_size); the rest are returned. */
export function showIssues(form: HTMLElement, issues: { path: string; message: string }[]): string[] {
  for (const e of form.querySelectorAll('.field-error')) e.textContent = '';
  for (const e of form.querySelectorAll('[aria-invalid]')) e.removeAttribute('aria-invalid');
  const unplaced: string[] = [];
  let first: HTMLElement | null = null;
  for (const issue of issues) {
    // A path may go deeper than the field (params.command.0, params.env.LD_PRELOAD).
    const parts = issue.path.split('.');
    let target: HTMLElement | null = null;
    for (let n = parts.length; n > 0 && !target; n--) {
      target = form.querySelector<HTMLElement>(`[data-field="${CSS.escape(parts.slice(0, n).join('.'))}"]`);
    }
    if (!target) {
      unplaced.push(`${issue.path || 'request'}: ${issue.message}`);
      continue;
    }
    const msg = target.querySelector('.field-error')!;
    msg.textContent = msg.textContent ? `${msg.textContent}; ${issue.message}` : issue.message;
    const control = target.querySelector<HTMLElement>('input, select, textarea');
    control?.setAttribute('aria-invalid', 'true');
    // A field behind "Advanced" is shown when the API has something to say about it.
    const folded = target.closest('details');
    if (folded) folded.open = true;
    first ??= control;
  }
  first?.focus();
  return unplaced;
}
