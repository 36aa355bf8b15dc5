// Loads ngc-manifests/*.yaml: parse, validate, cross-check, and reject duplicates, one clear error per broken file.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { paramSchema } from './params.js';
import { Manifest, type Param } from './schema.js';
import { BUILTINS, parseToken, referencedNames } from './template.js';

export class ManifestError extends Error {
  override readonly name = 'ManifestError';
  constructor(
    readonly file: string,
    readonly path: string,
    readonly reason: string,
  ) {
    super(`${file}: ${path}: ${reason}`);
  }
}

interface Problem {
  path: (string | number)[];
  message: string;
}

function jsonPath(path: readonly PropertyKey[]): string {
  return (
    '$' +
    path
      .map((p) =>
        typeof p === 'number'
          ? `[${p}]`
          : /^[A-Za-z_][A-Za-z0-9_]*$/.test(String(p))
            ? `.${String(p)}`
            : `['${String(p)}']`,
      )
      .join('')
  );
}

/** Checks a schema can't express: template names, defaults in range, regex groups, launcher shape. */
export function crossCheck(m: Manifest): Problem[] {
  const problems: Problem[] = [];
  const params = m.parameters;
  const known = new Set<string>([...Object.keys(params), ...BUILTINS]);

  for (const name of Object.keys(params)) {
    if ((BUILTINS as readonly string[]).includes(name) || name === 'env') {
      problems.push({ path: ['parameters', name], message: `"${name}" is reserved` });
    }
  }
  m.command.forEach((raw, i) => {
    const token = parseToken(raw);
    if (token.kind === 'mixed' && raw.includes('{{flag:')) {
      problems.push({ path: ['command', i], message: '{{flag:name}} must be a whole token' });
    }
    for (const name of referencedNames(token)) {
      if (name.startsWith('flag:')) continue;
      if (!known.has(name)) problems.push({ path: ['command', i], message: `unknown parameter "${name}"` });
      const p = params[name];
      if (p?.type === 'argv' && token.kind !== 'whole') {
        problems.push({ path: ['command', i], message: `argv parameter "${name}" must be a whole token` });
      }
      if (token.kind === 'flag' && !p) {
        problems.push({ path: ['command', i], message: `{{flag:${name}}} needs a parameter` });
      }
    }
  });
  if (m.launcher !== 'none' && !/^python3?$/.test(m.command[0] ?? '')) {
    problems.push({
      path: ['command', 0],
      message: `launcher ${m.launcher} needs a command starting with python or python3`,
    });
  }
  if ('param' in m.image) {
    if (params[m.image.param]?.type !== 'image') {
      problems.push({ path: ['image', 'param'], message: `"${m.image.param}" is not a parameter of type image` });
    }
  }
  for (const [name, p] of Object.entries(params)) {
    problems.push(...checkParam(name, p, params));
  }
  const g = m.resources.gpus;
  if (g.min > g.max || g.default < g.min || g.default > g.max) {
    problems.push({
      path: ['resources', 'gpus'],
      message: `need min ≤ default ≤ max (got ${g.min}, ${g.default}, ${g.max})`,
    });
  }
  const targets = new Set<string>();
  m.mounts.forEach((mount, i) => {
    if (targets.has(mount.target))
      problems.push({ path: ['mounts', i, 'target'], message: `${mount.target} mounted twice` });
    targets.add(mount.target);
    const rw = mount.target === '/results';
    if (mount.readOnly === rw) {
      problems.push({
        path: ['mounts', i, 'readOnly'],
        message: `${mount.target} must be ${rw ? 'read-write' : 'read-only'}`,
      });
    }
    const source = { '/data': 'dataset', '/init': 'artifact', '/results': 'results' }[mount.target];
    if (mount.source !== source) {
      problems.push({ path: ['mounts', i, 'source'], message: `${mount.target} comes from ${source}` });
    }
  });
  m.metrics.forEach((rule, i) => {
    if (rule.kind !== 'regex') return;
    try {
      new RegExp(rule.pattern);
    } catch (err) {
      problems.push({
        path: ['metrics', i, 'pattern'],
        message: `not a regular expression: ${(err as Error).message}`,
      });
      return;
    }
    const groups = new Set([...rule.pattern.matchAll(/\(\?<([A-Za-z_][A-Za-z0-9_]*)>/g)].map((x) => x[1]));
    for (const [metric, group] of Object.entries(rule.metrics)) {
      if (!groups.has(group)) {
        problems.push({
          path: ['metrics', i, 'metrics', metric],
          message: `the pattern has no named group "${group}"`,
        });
      }
    }
    for (const [metric, param] of Object.entries(rule.multiplyBy ?? {})) {
      const t = params[param]?.type;
      if (t !== 'int' && t !== 'number') {
        problems.push({
          path: ['metrics', i, 'multiplyBy', metric],
          message: `"${param}" is not an int or number parameter`,
        });
      }
    }
  });
  return problems;
}

function checkParam(name: string, p: Param, all: Record<string, Param>): Problem[] {
  const problems: Problem[] = [];
  const at = (...rest: string[]) => ['parameters', name, ...rest];
  if (p.type === 'int' || p.type === 'number') {
    if (p.min !== undefined && p.max !== undefined && p.min > p.max) {
      problems.push({ path: at('min'), message: `min ${p.min} is above max ${p.max}` });
    }
    if (
      p.default !== undefined &&
      ((p.min !== undefined && p.default < p.min) || (p.max !== undefined && p.default > p.max))
    ) {
      problems.push({
        path: at('default'),
        message: `default ${p.default} is outside [${p.min ?? '-∞'}, ${p.max ?? '∞'}]`,
      });
    }
  }
  if (p.type === 'string') {
    let re: RegExp | undefined;
    try {
      re = new RegExp(p.pattern);
    } catch (err) {
      problems.push({ path: at('pattern'), message: `not a regular expression: ${(err as Error).message}` });
    }
    if (!p.pattern.startsWith('^') || !p.pattern.endsWith('$')) {
      problems.push({ path: at('pattern'), message: 'a pattern must be anchored with ^ and $' });
    }
    if (re && p.default !== undefined && !re.test(p.default)) {
      problems.push({ path: at('default'), message: `default "${p.default}" does not match ${p.pattern}` });
    }
  }
  if (p.type === 'enum' && p.default !== undefined && !p.values.includes(p.default)) {
    problems.push({ path: at('default'), message: `default "${p.default}" is not one of ${p.values.join(', ')}` });
  }
  for (const [value, implied] of Object.entries(p.implies ?? {})) {
    for (const target of Object.keys(implied)) {
      const targetParam = all[target];
      if (!targetParam) {
        problems.push({ path: at('implies', value, target), message: `unknown parameter "${target}"` });
        continue;
      }
      const check = paramSchema(targetParam).safeParse(implied[target]);
      if (!check.success) {
        problems.push({ path: at('implies', value, target), message: check.error.issues[0]!.message });
      }
    }
  }
  return problems;
}

/** Parses and validates one recipe; `file` names it in errors. */
export function parseManifest(text: string, file: string): Manifest {
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true });
  const yamlError = doc.errors[0];
  if (yamlError) {
    const line = text.slice(0, yamlError.pos[0]).split('\n').length;
    throw new ManifestError(file, '$', `invalid YAML at line ${line}: ${yamlError.message}`);
  }
  const parsed = Manifest.safeParse(doc.toJS());
  if (!parsed.success) {
    const issue = firstIssue(parsed.error);
    throw new ManifestError(file, jsonPath(issue.path), issue.message);
  }
  const problem = crossCheck(parsed.data)[0];
  if (problem) throw new ManifestError(file, jsonPath(problem.path), problem.message);
  return parsed.data;
}

function firstIssue(error: z.ZodError): { path: PropertyKey[]; message: string } {
  const issue = error.issues[0]!;
  return { path: issue.path, message: issue.message };
}

/** Every *.yaml / *.yml in `dir`, validated; throws a ManifestError for the first broken file or duplicate id. */
export function loadManifests(dir: string): Map<string, Manifest> {
  const files = readdirSync(dir)
    .filter((f) => /\.ya?ml$/.test(f))
    .sort();
  const byId = new Map<string, Manifest>();
  const fileOf = new Map<string, string>();
  for (const f of files) {
    const file = join(dir, f);
    const manifest = parseManifest(readFileSync(file, 'utf8'), file);
    const previous = fileOf.get(manifest.id);
    if (previous) throw new ManifestError(file, '$.id', `duplicate id "${manifest.id}" (also in ${previous})`);
    byId.set(manifest.id, manifest);
    fileOf.set(manifest.id, file);
  }
  return byId;
}
