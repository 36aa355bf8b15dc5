// Training metrics read out of a job's output one line at a time: DLLogger's JSON stream and stdout text (NVIDIA's
// BERT scripts and berth's trainer), JSON lines, and a recipe's regular expressions. Reading files is the caller's.

export interface MetricSample {
  name: string;
  value: number;
  /** `step`: progress during training; `summary`: an end-of-run figure; `parameter`: a setting the run printed. */
  kind: 'step' | 'summary' | 'parameter';
  /** The training step it belongs to; null for summaries and parameters. */
  step: number | null;
  unit?: string;
}

/** How a source prints scores: `percent` (0–100, as SQuAD does) or `fraction` (0–1, as GLUE does). */
export type ScoreScale = 'percent' | 'fraction';

interface RuleLikeBase {
  /** A file under /results; rules with one are the caller's to read, and the line parser skips them. */
  file?: string | undefined;
  /** How the source prints F1 / accuracy / exact match; default `percent`. */
  scores?: ScoreScale | undefined;
}

/**
 * A recipe's metric rule as the parser reads it. Structural, so that `@berth/manifests`' `MetricRule` values fit it
 * without telemetry depending on the manifests package.
 */
export type MetricRuleLike =
  | (RuleLikeBase & { kind: 'dllogger-json'; prefix?: string | undefined })
  | (RuleLikeBase & { kind: 'dllogger-text' })
  | (RuleLikeBase & { kind: 'jsonl' })
  | (RuleLikeBase & {
      kind: 'regex';
      pattern: string;
      /** Metric name → named group of the pattern holding its value. A group named `step` gives the step. */
      metrics: Readonly<Record<string, string>>;
      /** Metric name → parameter whose value multiplies the metric. */
      multiplyBy?: Readonly<Record<string, string>> | undefined;
    });

/** What NVIDIA's JSONStreamBackend and berth's trainer put before each JSON record. */
export const dlloggerPrefix = 'DLLL ';

/** Final figures worth copying onto a job record when a run reports them. */
export const summaryMetricNames: readonly string[] = [
  'final_loss',
  'F1',
  'exact_match',
  'accuracy',
  'mcc',
  'training_sequences_per_second',
  'inference_sequences_per_second',
  'e2e_train_time',
  'e2e_inference_time',
  'raw_train_time',
  // trtexec through tensorrt-perf's regex rules.
  'sentences_per_second',
  'queries_per_second',
  'latency_mean_ms',
  'latency_median_ms',
];

const scoreNames = new Set(['f1', 'exact_match', 'accuracy', 'acc', 'eval_accuracy', 'eval_f1']);

/**
 * berth reports F1, accuracy and exact match on a 0–100 scale. A score printed as a fraction is multiplied by 100;
 * every other metric, and every value already in percent, is returned as it is.
 */
export function normaliseScore(name: string, value: number, scale: ScoreScale): number {
  if (scale !== 'fraction' || !scoreNames.has(name.toLowerCase())) return value;
  // 15 significant digits: 0.85 × 100 reads 85, not 85.00000000000001.
  return Number((value * 100).toPrecision(15));
}

type LineFormat = (line: string) => MetricSample[];

/**
 * Turns lines of a job's output into metric samples. DLLogger JSON records behind `DLLL ` are always read, for every
 * job (custom ones included); the rules add formats. METADATA records set the unit of later samples of their metric,
 * so one parser reads one stream.
 */
export class MetricLineParser {
  private readonly formats: LineFormat[] = [];
  private readonly units = new Map<string, string | undefined>();

  /**
   * @param params the job's parameter values, for regex rules' `multiplyBy`.
   * @throws SyntaxError when a regex rule's pattern does not compile (the manifest loader refuses such recipes).
   */
  constructor(rules: readonly MetricRuleLike[] = [], params: Readonly<Record<string, unknown>> = {}) {
    // One reader per format (and per JSON prefix); the first rule naming it decides its score scale.
    const seen = new Set<string>();
    const once = (key: string): boolean => {
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    };
    for (const rule of rules) {
      if (rule.file !== undefined) continue;
      const scale = rule.scores ?? 'percent';
      switch (rule.kind) {
        case 'dllogger-json': {
          const prefix = rule.prefix ?? dlloggerPrefix;
          if (once(`json:${prefix}`)) this.formats.push((line) => this.dlloggerJson(line, prefix, scale));
          break;
        }
        case 'dllogger-text':
          if (once('text')) this.formats.push((line) => dlloggerText(line, scale));
          break;
        case 'jsonl':
          if (once('jsonl')) this.formats.push((line) => jsonLine(line, scale));
          break;
        case 'regex':
          this.formats.push(regexFormat(rule, scale, params));
          break;
      }
    }
    if (once(`json:${dlloggerPrefix}`)) {
      this.formats.push((line) => this.dlloggerJson(line, dlloggerPrefix, 'percent'));
    }
  }

  /** The samples on one line of output; a line that is no metric record, or a malformed one, yields none. */
  parse(line: string): MetricSample[] {
    const text = visibleText(line);
    return this.formats.flatMap((format) => format(text));
  }

  private dlloggerJson(line: string, prefix: string, scale: ScoreScale): MetricSample[] {
    // Not only at the start of the line: mpirun's --tag-output, or a tqdm bar on a merged stderr, lands before it.
    const at = line.indexOf(prefix);
    if (at < 0) return [];
    const record = parseJsonObject(line.slice(at + prefix.length));
    if (record === undefined) return [];

    if (record.type === 'METADATA') {
      const meta = record.metadata;
      if (typeof record.metric === 'string' && isObject(meta) && 'unit' in meta) {
        this.units.set(record.metric, unitOf(meta.unit));
      }
      return [];
    }
    if (record.type !== 'LOG' || !isObject(record.data)) return [];
    const step = jsonStep(record.step);
    if (step === undefined) return [];
    const samples: MetricSample[] = [];
    for (const [name, raw] of Object.entries(record.data)) {
      if (typeof raw !== 'number' || !Number.isFinite(raw)) continue;
      samples.push(sample(name, raw, step, this.units.get(name), scale));
    }
    return samples;
  }
}

interface StepOf {
  kind: MetricSample['kind'];
  step: number | null;
}

const parameter: StepOf = { kind: 'parameter', step: null };
const summary: StepOf = { kind: 'summary', step: null };

/** `"PARAMETER"`, `[]` (end of run) or `[epoch, iteration, …]`, whose last element is the step. */
function jsonStep(step: unknown): StepOf | undefined {
  if (step === 'PARAMETER') return parameter;
  if (Array.isArray(step)) {
    if (step.length === 0) return summary;
    const last: unknown = step[step.length - 1];
    return { kind: 'step', step: typeof last === 'number' && Number.isFinite(last) ? last : null };
  }
  if (typeof step === 'number' && Number.isFinite(step)) return { kind: 'step', step };
  if (typeof step === 'string') return { kind: 'step', step: null };
  return undefined;
}

// dllogger's StdOutBackend: `DLL <str(datetime)> - <step_format(step)> <name> : <value> <unit>` with the pairs joined by
// spaces; an unknown unit prints as nothing, a unit of None as `None`. Some scripts drop the time: `DLL - …`.
const dllText = /(?<!\w)DLL (?:\d{4}-\d\d-\d\d[ T][\d:.]+(?:[+-]\d\d:?\d\d|Z)? )?- (.*)$/;

function dlloggerText(line: string, scale: ScoreScale): MetricSample[] {
  const body = dllText.exec(line)?.[1];
  if (body === undefined) return [];
  // Names hold no spaces and the step formats hold no ` : `, so splitting there leaves the step and first name in
  // the first part, then `<value> <unit…> <next name>` in each part, and `<value> <unit…>` in the last.
  const parts = body.split(' : ');
  if (parts.length < 2) return [];
  const head = words(parts[0] ?? '');
  let name = head.pop();
  const at = textStep(head);
  const samples: MetricSample[] = [];
  for (let i = 1; i < parts.length && name !== undefined; i++) {
    const rest = words(parts[i] ?? '');
    const next = i < parts.length - 1 ? rest.pop() : undefined;
    const value = parseNumber(rest[0]);
    if (value !== undefined) samples.push(sample(name, value, at, unitOf(rest.slice(1).join(' ')), scale));
    name = next;
  }
  return samples;
}

function words(text: string): string[] {
  return text.split(/\s+/).filter((w) => w !== '');
}

/**
 * The step as the backend printed it: `PARAMETER`; `()` / `[]` / nothing at all (NVIDIA's BERT `format_step` prints
 * an empty tuple as nothing) for summaries; else a tuple `(0, 100)`, bare `0 100`, or NVIDIA's `Training Epoch: 0
 * Training Iteration: 100`, whose last element is the step.
 */
function textStep(head: string[]): StepOf {
  const text = head.join(' ');
  if (text === 'PARAMETER') return parameter;
  if (text === '' || /^(\(\s*\)|\[\s*\])$/.test(text)) return summary;
  const elements = /^[([](.*)[)\]]$/.exec(text)?.[1]?.split(',') ?? head;
  const last = elements.map((e) => e.trim()).filter((e) => e !== '');
  return { kind: 'step', step: parseNumber(last[last.length - 1]) ?? null };
}

// Fields that place a JSON line on the training axis, most specific first.
const stepFields = ['step', 'global_step', 'iteration', 'epoch'];

function jsonLine(line: string, scale: ScoreScale): MetricSample[] {
  const record = parseJsonObject(line);
  if (record === undefined) return [];
  const stepValue = stepFields
    .map((f) => record[f])
    .find((v): v is number => typeof v === 'number' && Number.isFinite(v));
  const at: StepOf = stepValue === undefined ? summary : { kind: 'step', step: stepValue };
  const samples: MetricSample[] = [];
  for (const [name, raw] of Object.entries(record)) {
    if (stepFields.includes(name) || typeof raw !== 'number' || !Number.isFinite(raw)) continue;
    samples.push(sample(name, raw, at, undefined, scale));
  }
  return samples;
}

function regexFormat(
  rule: Extract<MetricRuleLike, { kind: 'regex' }>,
  scale: ScoreScale,
  params: Readonly<Record<string, unknown>>,
): LineFormat {
  const pattern = new RegExp(rule.pattern);
  const factors = new Map<string, number | undefined>();
  for (const [metric, param] of Object.entries(rule.multiplyBy ?? {})) {
    factors.set(metric, Object.hasOwn(params, param) ? toNumber(params[param]) : undefined);
  }
  return (line) => {
    const groups = pattern.exec(line)?.groups;
    if (groups === undefined) return [];
    const step = parseNumber(groups.step);
    const at: StepOf = step === undefined ? summary : { kind: 'step', step };
    const samples: MetricSample[] = [];
    for (const [name, group] of Object.entries(rule.metrics)) {
      let value = parseNumber(groups[group]);
      if (value === undefined) continue;
      if (factors.has(name)) {
        // Without its factor the value would be a different quantity under this name: leave it out.
        const factor = factors.get(name);
        if (factor === undefined) continue;
        value *= factor;
      }
      samples.push(sample(name, value, at, undefined, scale));
    }
    return samples;
  };
}

function sample(name: string, value: number, at: StepOf, unit: string | undefined, scale: ScoreScale): MetricSample {
  const s: MetricSample = {
    name,
    value: at.kind === 'parameter' ? value : normaliseScore(name, value, scale),
    kind: at.kind,
    step: at.step,
  };
  if (unit !== undefined) s.unit = unit;
  return s;
}

/** DLLogger writes a missing unit as null (JSON) or `None` (text). */
function unitOf(unit: unknown): string | undefined {
  return typeof unit === 'string' && unit !== '' && unit !== 'None' ? unit : undefined;
}

const decimal = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

/** A number as Python prints one; non-finite values (nan, inf) are left out, as the metric contracts refuse them. */
function parseNumber(text: string | undefined): number | undefined {
  if (text === undefined || !decimal.test(text)) return undefined;
  const n = Number(text);
  return Number.isFinite(n) ? n : undefined;
}

function toNumber(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  return typeof value === 'string' ? parseNumber(value.trim()) : undefined;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

// Python's json.dumps writes NaN and ±Infinity bare, which JSON.parse refuses; outside strings they become null so a
// diverged loss does not cost the rest of its record.
const pythonNonFinite = /"(?:[^"\\]|\\.)*"|(-?Infinity|NaN)/g;

/** A JSON object as Python printed it (bare NaN and Infinity read as null); undefined for anything else. */
export function parseJsonObject(text: string): Record<string, unknown> | undefined {
  const trimmed = text.trim();
  if (!trimmed.startsWith('{')) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(trimmed);
  } catch {
    try {
      value = JSON.parse(trimmed.replace(pythonNonFinite, (m, bare?: string) => (bare === undefined ? m : 'null')));
    } catch {
      return undefined;
    }
  }
  return isObject(value) ? value : undefined;
}

/** A line as a terminal shows it: without its line ending, and after the last carriage return (progress bars). */
function visibleText(line: string): string {
  const text = line.replace(/[\r\n]+$/, '');
  const cr = text.lastIndexOf('\r');
  return cr < 0 ? text : text.slice(cr + 1);
}
