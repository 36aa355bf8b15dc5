// Whether an attempt succeeded by its recipe's rule, not only by its exit code: NVIDIA's DLE wrappers exit 0 after a
// crash, so a recipe can also require final metrics (DLLogger records) or result files.
import type { Manifest } from '@berth/manifests';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

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

export function dlloggerPrefixes(m: Manifest): string[] {
  return m.metrics.flatMap((r) => (r.kind === 'dllogger-json' && !r.file ? [r.prefix] : []));
}

export function judge(m: Manifest, exitCode: number, resultsDir: string, fromLog: MetricNames): Verdict {
  if (!m.success.exitCodes.includes(exitCode)) {
    return { ok: false, reason: 'EXIT_NONZERO', message: `the container exited with code ${exitCode}` };
  }
  const files = listFiles(resultsDir);
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
      const path = join(resultsDir, rule.file.slice('/results/'.length));
      if (!existsSync(path)) continue;
      const fileNames = new MetricNames([rule.prefix]);
      for (const line of readFileSync(path, 'utf8').split('\n')) fileNames.observe(line);
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

function listFiles(root: string): string[] {
  if (!existsSync(root)) return [];
  return readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => relative(root, join(d.parentPath, d.name)));
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
