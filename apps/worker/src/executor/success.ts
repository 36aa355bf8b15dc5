// Whether an attempt succeeded by its recipe's rule, not only by its exit code: NVIDIA's DLE wrappers exit 0 after a
// crash, so a recipe can also require final metrics (DLLogger records) or result files.
import type { Manifest } from '@berth/manifests';
import { createInterface } from 'node:readline';
import type { ResultsScan, ResultsTree } from '../artifacts/results-tree.js';

export type Verdict = { ok: true } | { ok: false; reason: 'EXIT_NONZERO' | 'INCOMPLETE_RESULT'; message: string };

/** Collects the metric names of DLLogger JSON records (`<prefix>{"type": "LOG", "data": {...}}`). */
export class MetricNames {
  readonly seen = new Set<string>();

  constructor(private readonly prefixes: readonly string[]) {}

  observe(line: string): void {
    const prefix = this.prefixes.find((p) => line.startsWith(p));
    if (prefix === undefined) return;
    try {
      const record = JSON.parse(line.slice(prefix.length)) as { type?: string; data?: Record<string, unknown> };
      if (record.type === 'LOG' && record.data) for (const name of Object.keys(record.data)) this.seen.add(name);
    } catch {
      // Not a record after all: a line that happens to start with the prefix.
    }
  }
}

/**
 * The last lines a container wrote to stderr, kept to say why it failed: a trainer's last words (an argparse error, a
 * Python exception) are the cause that an exit code only hints at. Bounded in lines and in characters a line.
 */
export class StderrTail {
  private readonly lines: string[] = [];

  constructor(
    private readonly maxLines = 5,
    private readonly maxChars = 400,
  ) {}

  push(text: string): void {
    const line = text.trimEnd();
    if (line === '') return;
    this.lines.push(line.length > this.maxChars ? `${line.slice(0, this.maxChars)}…` : line);
    if (this.lines.length > this.maxLines) this.lines.shift();
  }

  /** `message`, followed by the lines kept (if any). */
  explain(message: string): string {
    return this.lines.length === 0 ? message : `${message}; its last lines on stderr:\n${this.lines.join('\n')}`;
  }
}

export function dlloggerPrefixes(m: Manifest): string[] {
  return m.metrics.flatMap((r) => (r.kind === 'dllogger-json' && !r.file ? [r.prefix] : []));
}

/** How much of a metric file under /results is read for final metrics: the job says how long it is, not the worker. */
const metricFileMaxBytes = 64 * 1024 ** 2;

export async function judge(
  m: Manifest,
  exitCode: number,
  results: { tree: ResultsTree; scan: ResultsScan },
  fromLog: MetricNames,
): Promise<Verdict> {
  if (!m.success.exitCodes.includes(exitCode)) {
    return { ok: false, reason: 'EXIT_NONZERO', message: `the container exited with code ${exitCode}` };
  }
  const files = results.scan.files.map((f) => f.path);
  const missing = (m.success.requireFiles ?? []).filter((glob) => !files.some((f) => globToRegExp(glob).test(f)));
  if (missing.length > 0) {
    return {
      ok: false,
      reason: 'INCOMPLETE_RESULT',
      message: `exit code ${exitCode}, but /results lacks ${missing.join(', ')}`,
    };
  }
  const wanted = m.success.requireMetric;
  if (wanted) {
    const seen = new Set(fromLog.seen);
    for (const rule of m.metrics) {
      if (rule.kind !== 'dllogger-json' || !rule.file) continue;
      const fileNames = new MetricNames([rule.prefix]);
      await readLines(results.tree, rule.file.slice('/results/'.length), (line) => fileNames.observe(line));
      for (const name of fileNames.seen) seen.add(name);
    }
    if (!wanted.some((name) => seen.has(name))) {
      return {
        ok: false,
        reason: 'INCOMPLETE_RESULT',
        message: `exit code ${exitCode}, but no final metric (${wanted.join(', ')}) was reported: the run did not finish`,
      };
    }
  }
  return { ok: true };
}

/** Feeds the lines of a result file to `onLine`, up to a bound, through the tree (never following a link). */
async function readLines(tree: ResultsTree, path: string, onLine: (line: string) => void): Promise<void> {
  const opened = await tree.open(path);
  if (!opened) return;
  if (opened.size === 0) return opened.handle.close();
  // The stream owns the handle from here and closes it when it ends or is destroyed.
  const stream = opened.handle.createReadStream({ start: 0, end: Math.min(opened.size, metricFileMaxBytes) - 1 });
  try {
    for await (const line of createInterface({ input: stream, crlfDelay: Infinity })) onLine(line);
  } finally {
    stream.destroy();
  }
}

/** `**` any path, `*` and `?` within one path segment. */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*' && glob[i + 1] === '*') {
      re += '.*';
      i++;
      if (glob[i + 1] === '/') i++;
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}
