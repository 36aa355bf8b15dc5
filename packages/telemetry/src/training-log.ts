// Training output as a person reads it. NVIDIA's BERT scripts and berth's trainer print DLLogger JSON records
// (`DLLL {...}`): units and the run's parameters first, then a record a logged step, then end-of-run figures. Read
// raw that is two wrapped JSON lines a step. This renders each record as one short line (`step 40/100  loss 5.16
// lr 6.7e-4  ETA 48s`), hides the metadata, and prints the end-of-run figures as a short block with their units.
// Every other line passes through as it was printed. The CLI, the demo and the dashboard all show logs through it;
// `--raw` (or the dashboard's Raw switch) shows the lines as printed. No Node or DOM dependency: the dashboard
// bundles it.

import { dlloggerPrefix as prefix, parseJsonObject } from './metrics.js';

/** Names shown shorter on a step line; any other metric keeps its name. */
const shortNames: Readonly<Record<string, string>> = {
  step_loss: 'loss',
  average_loss: 'avg loss',
  learning_rate: 'lr',
  training_sequences_per_second: 'seq/s',
};

/** Names of end-of-run figures as a block shows them. */
const summaryNames: Readonly<Record<string, string>> = {
  e2e_train_time: 'train time (end to end)',
  raw_train_time: 'train time (steps only)',
  training_sequences_per_second: 'training throughput',
  e2e_inference_time: 'inference time',
  inference_sequences_per_second: 'inference throughput',
  final_loss: 'final loss',
  exact_match: 'exact match',
};

interface DlRecord {
  type?: unknown;
  step?: unknown;
  data?: Record<string, unknown>;
  metric?: unknown;
  metadata?: { unit?: unknown };
  elapsedtime?: unknown;
}

/** A number in at most 3 significant digits: 5.16, 77.1, 0.00067 as 6.7e-4, 12345 as 12345. */
export function formatValue(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (Number.isInteger(v)) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && a < 0.01) return Number(v.toPrecision(2)).toExponential();
  if (a >= 1000) return String(Math.round(v));
  return String(Number(v.toPrecision(3)));
}

/** Seconds as `48s`, `3m12s`, `2h05m`. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** Renders one job's training output, line by line, in order; keeps what earlier lines said (units, total steps). */
export class TrainingLog {
  private readonly units = new Map<string, string>();
  private totalSteps: number | undefined;
  /** The first logged step and the elapsed time at it: the rate the ETA is read from. */
  private first: { step: number; elapsed: number } | undefined;

  /** What a person reads for one line as printed: the line itself, its rendering, or null to hide it. */
  line(text: string): string | null {
    if (!text.startsWith(prefix)) return text;
    const record = parseJsonObject(text.slice(prefix.length)) as DlRecord | undefined;
    if (!record) return text;
    if (record.type === 'METADATA') {
      if (typeof record.metric === 'string' && typeof record.metadata?.unit === 'string') {
        this.units.set(record.metric, record.metadata.unit);
      }
      return null;
    }
    if (record.type !== 'LOG' || !record.data) return text;
    if (record.step === 'PARAMETER') {
      const steps = Number(record.data.total_steps ?? record.data.max_steps);
      if (Number.isInteger(steps) && steps > 0) this.totalSteps = steps;
      return null;
    }
    // A diverged value (Python's bare NaN) reads as null: it is shown, as NaN, not dropped.
    const numbers = Object.entries(record.data).flatMap(([k, v]): [string, number][] =>
      typeof v === 'number' ? [[k, v]] : v === null ? [[k, NaN]] : [],
    );
    if (Array.isArray(record.step) && record.step.length > 0) return this.stepLine(record, numbers);
    if (Array.isArray(record.step) || typeof record.step === 'string') return this.summary(numbers);
    return text;
  }

  private stepLine(record: DlRecord, numbers: [string, number][]): string {
    const step = Number((record.step as unknown[]).at(-1));
    const parts = [this.totalSteps ? `step ${step}/${this.totalSteps}` : `step ${step}`];
    for (const [name, v] of numbers)
      parts.push(`${shortNames[name] ?? name} ${formatValue(v)}${this.unitOf(name, true)}`);
    const elapsed = Number(record.elapsedtime);
    if (Number.isFinite(elapsed) && Number.isFinite(step)) {
      if (!this.first) this.first = { step, elapsed };
      const done = step - this.first.step;
      const took = elapsed - this.first.elapsed;
      if (this.totalSteps && done > 0 && took > 0 && step < this.totalSteps) {
        parts.push(`ETA ${formatDuration(((this.totalSteps - step) * took) / done)}`);
      }
    }
    return parts.join('  ');
  }

  private summary(numbers: [string, number][]): string | null {
    if (numbers.length === 0) return null;
    const rows = numbers.map(([name, v]) => [summaryNames[name] ?? name, `${formatValue(v)}${this.unitOf(name)}`]);
    const width = Math.max(...rows.map(([k]) => k!.length));
    return ['results:', ...rows.map(([k, v]) => `  ${k!.padEnd(width)}  ${v}`)].join('\n');
  }

  private unitOf(name: string, compact = false): string {
    const unit = this.units.get(name);
    if (!unit || unit === 'null') return '';
    if (unit === '%') return '%';
    if (compact && unit === 'sequences/s') return '';
    return ` ${unit === 'sequences/s' ? 'seq/s' : unit}`;
  }
}
