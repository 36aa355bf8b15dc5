// A job's log as it arrives: the last lines kept on the page, a search that narrows them, follow-the-end scrolling.
import type { LogLine } from '@berth/contracts';
import { h } from './dom.js';

/** Lines kept on the page; the whole log is one download away. */
const maxLines = 5000;

export class LogView {
  readonly el: HTMLElement;
  private readonly box: HTMLElement;
  private readonly search: HTMLInputElement;
  private readonly stick: HTMLInputElement;
  private readonly count: HTMLElement;
  private readonly note: HTMLElement;
  private attempt: number | undefined;
  private total = 0;

  constructor(toolbar: (HTMLElement | string)[]) {
    this.search = h('input', {
      id: 'log-search',
      type: 'search',
      placeholder: 'text in the line',
      oninput: () => this.applyFilter(),
    });
    this.stick = h('input', { id: 'log-follow', type: 'checkbox', checked: true });
    this.count = h('span', { class: 'help', 'aria-live': 'polite' });
    this.note = h('p', { class: 'help', hidden: true });
    this.box = h('div', { class: 'log', role: 'log', 'aria-label': 'Job log', tabindex: '0' });
    this.el = h(
      'div',
      { class: 'log-view' },
      h(
        'div',
        { class: 'toolbar' },
        h('label', { for: 'log-search' }, 'Search'),
        this.search,
        h('label', { class: 'check' }, this.stick, ' Follow the end'),
        ...toolbar,
        this.count,
      ),
      this.note,
      this.box,
    );
    this.updateCount();
  }

  add(lines: LogLine[]): void {
    if (lines.length === 0) return;
    const q = this.query();
    const frag = document.createDocumentFragment();
    for (const l of lines) {
      if (this.attempt !== undefined && l.attempt !== this.attempt) {
        frag.append(h('div', { class: 'log-mark' }, `— attempt ${l.attempt} —`));
      }
      this.attempt = l.attempt;
      const line = h('div', { class: l.stream === 'stderr' ? 'line stderr' : 'line', 'data-id': l.id }, l.text);
      if (q && !l.text.toLowerCase().includes(q)) line.hidden = true;
      frag.append(line);
      this.total++;
    }
    this.box.append(frag);
    let dropped = 0;
    while (this.box.childElementCount > maxLines) {
      this.box.firstElementChild!.remove();
      dropped++;
    }
    if (dropped > 0) this.mark(`Older lines are not shown here; download the log for all of it.`);
    this.updateCount();
    if (this.stick.checked) this.box.scrollTop = this.box.scrollHeight;
  }

  /** The live log was capped by the API: its oldest lines are only in the attempt's log artifact. */
  mark(message: string): void {
    this.note.textContent = message;
    this.note.hidden = false;
  }

  private query(): string {
    return this.search.value.trim().toLowerCase();
  }

  private applyFilter(): void {
    const q = this.query();
    for (const line of this.box.querySelectorAll<HTMLElement>('.line')) {
      line.hidden = q !== '' && !(line.textContent ?? '').toLowerCase().includes(q);
    }
    this.updateCount();
  }

  private updateCount(): void {
    const q = this.query();
    const shown = this.box.querySelectorAll('.line').length;
    if (!q) {
      this.count.textContent = `${this.total} lines`;
      return;
    }
    const matching = this.box.querySelectorAll('.line:not([hidden])').length;
    this.count.textContent = `${matching} of ${shown} lines match`;
  }
}
