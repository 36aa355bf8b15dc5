// A job's log as it arrives: the last lines kept on the page, a search that narrows them, follow-the-end scrolling.
// Lines are shown as `berth logs` shows them (TrainingLog: one line a training step, metadata hidden); the Raw switch
// shows them as the job printed them.
import type { LogLine } from '@berth/contracts';
import { TrainingLog } from '@berth/telemetry/training-log';
import { h } from './dom.js';

/** Lines kept on the page; the whole log is one download away. */
const maxLines = 5000;

export class LogView {
  readonly el: HTMLElement;
  private readonly box: HTMLElement;
  private readonly search: HTMLInputElement;
  private readonly stick: HTMLInputElement;
  private readonly raw: HTMLInputElement;
  private readonly reading = new TrainingLog();
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
    this.raw = h('input', { id: 'log-raw', type: 'checkbox', onchange: () => this.showRaw() });
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
        h('label', { class: 'check' }, this.raw, ' Raw'),
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
      const shown = this.reading.line(l.text);
      const line = h(
        'div',
        { class: l.stream === 'stderr' ? 'line stderr' : 'line', 'data-id': l.id },
        this.raw.checked ? l.text : (shown ?? l.text),
      );
      line.dataset.raw = l.text;
      // A line the reading view hides (DLLogger metadata) is there in the raw view only.
      if (shown === null) line.dataset.meta = '';
      else line.dataset.shown = shown;
      line.hidden = this.hides(line, q);
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

  private hides(line: HTMLElement, q: string): boolean {
    if (line.dataset.meta !== undefined && !this.raw.checked) return true;
    return q !== '' && !(line.textContent ?? '').toLowerCase().includes(q);
  }

  private showRaw(): void {
    for (const line of this.box.querySelectorAll<HTMLElement>('.line')) {
      line.textContent = this.raw.checked ? (line.dataset.raw ?? '') : (line.dataset.shown ?? line.dataset.raw ?? '');
    }
    this.applyFilter();
  }

  private applyFilter(): void {
    const q = this.query();
    for (const line of this.box.querySelectorAll<HTMLElement>('.line')) line.hidden = this.hides(line, q);
    this.updateCount();
  }

  private updateCount(): void {
    const q = this.query();
    const shown = this.box.querySelectorAll(this.raw.checked ? '.line' : '.line:not([data-meta])').length;
    if (!q) {
      this.count.textContent = `${this.total} lines`;
      return;
    }
    const matching = this.box.querySelectorAll('.line:not([hidden])').length;
    this.count.textContent = `${matching} of ${shown} lines match`;
  }
}
