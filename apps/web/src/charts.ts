// Live training charts: a job's metric series grouped into panels (loss, learning rate, throughput, F1/exact match,
// GPU utilisation), drawn with uPlot from GET …/metrics and extended point by point from its SSE follow.
import type { MetricPoint, MetricSeries } from '@berth/contracts';
import uPlot from 'uplot';
import { fill, formatNumber, h } from './dom.js';

interface Group {
  id: string;
  title: string;
  match(name: string): boolean;
}

export const groups: Group[] = [
  { id: 'loss', title: 'Loss', match: (n) => /loss/i.test(n) },
  { id: 'learning-rate', title: 'Learning rate', match: (n) => /^(learning_rate|lr)$/i.test(n) },
  {
    id: 'throughput',
    title: 'Throughput',
    match: (n) => /(per_second|per_sec|_per_s|throughput)$/i.test(n),
  },
  {
    id: 'quality',
    title: 'F1 and exact match',
    match: (n) => /^(eval_)?(f1|exact_match|accuracy)$/i.test(n),
  },
  { id: 'gpu', title: 'GPU utilisation', match: (n) => /^gpu\.\d+\.utilization$/.test(n) },
];

type XKind = 'step' | 'time';

interface Line {
  x: XKind;
  unit: string | undefined;
  /** Steps, or unix seconds for a series by time. */
  xs: number[];
  /** Unix seconds of each point, when known (every point followed live; a read's step series says them). */
  ts: (number | null)[];
  ys: number[];
}

/** Points kept per line in the browser; beyond it every other point is dropped (the last always stays). */
const maxPoints = 4000;
const stepIncrs = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 20_000, 50_000, 100_000, 1e6, 1e7];
const palette = ['#2563eb', '#dc2626', '#16a34a', '#d97706', '#7c3aed', '#0891b2', '#db2777', '#65a30d'] as const;

/** The i-th series' colour; the palette repeats past its end. */
function colour(i: number): string {
  return palette[i % palette.length] ?? palette[0];
}

class Panel {
  readonly el: HTMLElement;
  private readonly caption: HTMLElement;
  private readonly plotBox: HTMLElement;
  private readonly lines = new Map<string, Line>();
  private plot: uPlot | undefined;
  private plotted = '';
  /** What step series are drawn against: their steps, or the time each point was logged. */
  private axis: XKind = 'step';
  /** The lowest and highest x drawn. */
  private xExtent: [number, number] = [0, 0];
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly resize = new ResizeObserver(() => this.plot?.setSize(this.size()));

  constructor(readonly group: Group) {
    this.caption = h('figcaption');
    this.plotBox = h('div', { class: 'plot', role: 'img', 'aria-label': `${group.title} chart` });
    this.el = h('figure', { class: 'chart', 'data-chart': group.id, 'data-points': 0 }, this.caption, this.plotBox);
    this.resize.observe(this.plotBox);
    this.render();
  }

  clear(): void {
    this.lines.clear();
    this.schedule();
  }

  setAxis(axis: XKind): void {
    this.axis = axis;
    this.schedule();
  }

  setSeries(s: MetricSeries): void {
    const time = s.x === 'time';
    const xs = s.points.map(([x]) => (time ? x / 1000 : x));
    this.lines.set(s.name, {
      x: s.x,
      unit: s.unit,
      xs,
      ts: time ? xs : s.points.map((_, i) => (s.times?.[i] !== undefined ? s.times[i] / 1000 : null)),
      ys: s.points.map(([, y]) => y),
    });
    this.schedule();
  }

  addPoint(p: MetricPoint): void {
    const t = Date.parse(p.time) / 1000;
    const x = p.step ?? t;
    let line = this.lines.get(p.name);
    if (!line) {
      line = { x: p.step === null ? 'time' : 'step', unit: p.unit, xs: [], ts: [], ys: [] };
      this.lines.set(p.name, line);
    }
    // Points the first read already gave (the follow starts a little before it) are not added twice.
    const last = line.xs.at(-1);
    if (last !== undefined && x <= last) return;
    line.xs.push(x);
    line.ts.push(t);
    line.ys.push(p.value);
    if (line.xs.length > maxPoints) {
      const keep = (_: unknown, i: number) => i % 2 === 0 || i === line.xs.length - 1;
      [line.xs, line.ts, line.ys] = [line.xs.filter(keep), line.ts.filter(keep), line.ys.filter(keep)];
    }
    this.schedule();
  }

  dispose(): void {
    clearTimeout(this.timer);
    this.resize.disconnect();
    this.plot?.destroy();
  }

  private schedule(): void {
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.render();
    }, 200);
  }

  private size() {
    return { width: Math.max(this.plotBox.clientWidth, 240), height: 200 };
  }

  private render(): void {
    const all = [...this.lines.entries()];
    // Step series share a step axis; series by time (summaries, GPU samples) are charted only when there are no
    // step series, and otherwise given as values in the caption. Drawn by time, every series shares the time axis.
    const byTime = this.axis === 'time' || !all.some(([, l]) => l.x === 'step');
    const xKind: XKind = byTime ? 'time' : 'step';
    const xsOf = (l: Line): (number | null)[] => (byTime ? l.ts : l.xs);
    // A line of one point (an end-of-run figure: F1, throughput) is a value, not a curve: it is shown as a tile.
    const charted = all.filter(([, l]) => (byTime || l.x === 'step') && l.xs.length > 1);
    const tiles = all.filter(([, l]) => l.xs.length === 1);
    // What is drawn against x: points whose x is not known (a time the API did not say) are left out.
    const drawn = charted.map(([name, l]): [string, number[], number[]] => {
      const xs = xsOf(l);
      const kept = xs.flatMap((x, i) => (x === null ? [] : [i]));
      return [name, kept.map((i) => xs[i]!), kept.map((i) => l.ys[i]!)];
    });
    this.el.dataset.points = String(drawn.reduce((n, [, xs]) => n + xs.length, 0));
    const xs = drawn.flatMap(([, x]) => x);
    this.xExtent = [Math.min(...xs), Math.max(...xs)];
    this.el.dataset.axis = xKind;
    this.el.dataset.tiles = String(tiles.length);
    fill(
      this.caption,
      h('span', { class: 'title' }, this.group.title),
      all.map(([name, l]) => {
        const v = l.ys.at(-1);
        return v === undefined
          ? null
          : h(
              'span',
              { class: 'latest', 'data-metric': name },
              `${name} ${formatNumber(v)}${l.unit ? ` ${l.unit}` : ''}`,
            );
      }),
    );
    if (charted.length === 0) {
      this.plot?.destroy();
      this.plot = undefined;
      this.plotted = '';
      fill(
        this.plotBox,
        tiles.length === 0
          ? h('p', { class: 'empty' }, 'No points yet.')
          : h(
              'div',
              { class: 'tiles' },
              tiles.map(([name, l]) =>
                h(
                  'div',
                  { class: 'tile', 'data-metric': name },
                  h(
                    'span',
                    { class: 'tile-value' },
                    formatNumber(l.ys[0]!),
                    l.unit ? h('small', {}, ` ${l.unit}`) : null,
                  ),
                  h('span', { class: 'tile-name' }, name),
                ),
              ),
            ),
      );
      return;
    }
    const data = uPlot.join(drawn.map(([, xs, ys]) => [xs, ys] as uPlot.AlignedData));
    const key = `${xKind}:${charted.map(([n]) => n).join(',')}`;
    if (this.plot && key === this.plotted) {
      this.plot.setData(data);
      return;
    }
    this.plot?.destroy();
    this.plotBox.replaceChildren();
    const css = getComputedStyle(document.documentElement);
    const fg = css.getPropertyValue('--muted').trim() || '#555';
    const grid = css.getPropertyValue('--line').trim() || '#ddd';
    const axis = { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
    const values = (_u: uPlot, splits: number[]) => splits.map((v) => formatNumber(v));
    const yTitle = axisTitle(
      charted.map(([, l]) => l.unit),
      this.group.title,
    );
    // The axes' titles are drawn on the canvas; a screen reader gets them here.
    this.plotBox.setAttribute('aria-label', `${this.group.title} chart: ${yTitle} by ${xKind}`);
    this.plot = new uPlot(
      {
        ...this.size(),
        // Points logged at one time (one batch of lines) would otherwise get uPlot's axis of years: a time axis
        // spans a minute at least, around the points.
        scales: { x: xKind === 'time' ? { time: true, range: () => atLeastAMinute(this.xExtent) } : { time: false } },
        series: [
          { label: xKind === 'step' ? 'step' : 'time' },
          ...charted.map(([name, l], i) => ({
            label: l.unit ? `${name} (${l.unit})` : name,
            stroke: colour(i),
            width: 2,
            spanGaps: true,
          })),
        ],
        // Steps are whole numbers; values get enough digits to tell ticks apart (learning rates are small).
        axes: [
          xKind === 'step' ? { ...axis, incrs: stepIncrs, values, label: 'step' } : { ...axis, label: 'time' },
          {
            ...axis,
            size: 60,
            values,
            label: yTitle,
          },
        ],
        legend: { show: true },
      },
      data,
      this.plotBox,
    );
    this.plotted = key;
  }
}

function atLeastAMinute([min, max]: [number, number]): uPlot.Range.MinMax {
  const pad = Math.max(0, 60 - (max - min)) / 2;
  return [min - pad, max + pad];
}

/** The y axis's title: the lines' unit when they share one, else the panel's title. */
function axisTitle(units: (string | undefined)[], title: string): string {
  const shared = new Set(units);
  const [unit] = shared;
  return shared.size === 1 && unit ? unit : title;
}

/** Every chart panel of one job, fed by the series read so far and the points followed since. */
export class MetricCharts {
  readonly el: HTMLElement;
  private readonly panels: Panel[];
  private attempt: number | null = null;

  constructor() {
    this.panels = groups.map((g) => new Panel(g));
    this.el = h('div', { class: 'charts' }, this.axisSwitch(), ...this.panels.map((p) => p.el));
  }

  /** Step or time on x, for every panel at once: two toggle buttons, the pressed one in use. */
  private axisSwitch(): HTMLElement {
    const buttons = (['step', 'time'] as const).map((axis) =>
      h(
        'button',
        { type: 'button', class: 'secondary', 'data-axis': axis, 'aria-pressed': String(axis === 'step') },
        axis === 'step' ? 'Step' : 'Time',
      ),
    );
    for (const b of buttons) {
      b.addEventListener('click', () => {
        for (const other of buttons) other.setAttribute('aria-pressed', String(other === b));
        for (const p of this.panels) p.setAxis(b.dataset.axis as XKind);
      });
    }
    return h('div', { class: 'axis-switch', role: 'group', 'aria-label': 'x axis' }, h('span', {}, 'x axis'), buttons);
  }

  load(attempt: number | null, series: MetricSeries[]): void {
    this.attempt = attempt;
    for (const s of series) {
      if (s.kind === 'parameter') continue;
      this.panelFor(s.name)?.setSeries(s);
    }
  }

  add(p: MetricPoint): void {
    if (p.kind === 'parameter') return;
    if (this.attempt !== null && p.attempt < this.attempt) return;
    if (this.attempt !== null && p.attempt > this.attempt) for (const panel of this.panels) panel.clear();
    this.attempt = p.attempt;
    this.panelFor(p.name)?.addPoint(p);
  }

  dispose(): void {
    for (const p of this.panels) p.dispose();
  }

  /**
   * Several runs' series over each other (the compare page): each line is named by its run, then its metric, so
   * the panels and their legends tell the runs apart.
   */
  loadRuns(runs: { label: string; series: MetricSeries[] }[]): void {
    for (const { label, series } of runs) {
      for (const s of series) {
        if (s.kind === 'parameter') continue;
        this.panelFor(s.name)?.setSeries({ ...s, name: `${label}: ${s.name}` });
      }
    }
  }

  private panelFor(name: string): Panel | undefined {
    return this.panels.find((p) => p.group.match(name));
  }
}
