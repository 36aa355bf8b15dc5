// A few DOM helpers: build elements from tag, attributes and children; format sizes and times for people.
type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | null | undefined | ((e: Event) => void)>;

/** `h('button', {type: 'button', onclick: …}, 'Cancel')`: attributes named on* are listeners, `false`/null are left out. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: (Child | Child[])[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (typeof value === 'function') el.addEventListener(name.slice(2), value);
    else el.setAttribute(name, value === true ? '' : String(value));
  }
  append(el, children.flat());
  return el;
}

export function append(el: Element, children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.append(typeof c === 'number' ? String(c) : c);
  }
}

/** Replaces an element's children. */
export function fill(el: Element, ...children: (Child | Child[])[]): void {
  el.replaceChildren();
  append(el, children.flat());
}

/** A table that scrolls sideways on a phone: column headers and the caller's rows. */
export function table(head: string[], rows: HTMLTableRowElement[]): HTMLElement {
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      {},
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          head.map((t) => h('th', { scope: 'col' }, t)),
        ),
      ),
      h('tbody', {}, rows),
    ),
  );
}

/** A table row: each cell wrapped in a td, unless it is one already (to carry a class). */
export function row(cells: Child[], attrs: Attrs = {}): HTMLTableRowElement {
  return h(
    'tr',
    attrs,
    cells.map((c) => (c instanceof HTMLTableCellElement ? c : h('td', {}, c))),
  );
}

const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

export function formatBytes(n: number): string {
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}

export function formatTime(iso: string | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

/** `<time>` with the full date in its datetime and title, shown in local time. */
export function time(iso: string | undefined): HTMLElement {
  if (!iso) return h('span', {}, '—');
  return h('time', { datetime: iso, title: iso }, formatTime(iso));
}

export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

export function formatNumber(v: number): string {
  if (Number.isInteger(v)) return v.toLocaleString();
  const a = Math.abs(v);
  if (a >= 1e6 || a < 1e-4) return v.toExponential(2);
  if (a >= 100) return v.toLocaleString(undefined, { maximumFractionDigits: 1 });
  return String(Number(v.toPrecision(4)));
}

/** A state as a coloured badge; the text says it, the colour only helps. */
export function stateBadge(state: string): HTMLElement {
  return h('span', { class: `badge state-${state}` }, state);
}

/** A link to a job page. */
export function jobLink(id: string): HTMLElement {
  return h('a', { href: `#/jobs/${id}`, class: 'mono' }, id);
}

/** Starts a download of a signed URL the way a link click would. */
export function download(url: string, filename = ''): void {
  const a = h('a', { href: url, download: filename });
  document.body.append(a);
  a.click();
  a.remove();
}

/** A random key for Idempotency-Key (crypto.randomUUID needs a secure context; getRandomValues does not). */
export function randomKey(): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('');
}
