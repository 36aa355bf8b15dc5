// What users type besides flags: `key=value` pairs and spec files (YAML or JSON).
import { readFile } from 'node:fs/promises';
import { CliError } from './cli-error.js';

/** Commander collector for a repeatable option. */
export const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

export function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new CliError('INVALID_ARGUMENT', `not a positive whole number: ${value}`);
  return n;
}

export function wholeNumber(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new CliError('INVALID_ARGUMENT', `not a whole number: ${value}`);
  return n;
}

/** `k=v` pairs as an object; with `json`, a value that parses as JSON (`8`, `true`, `["a"]`) is taken parsed. */
export function parsePairs(pairs: string[], option: string, json: boolean): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq < 1) throw new CliError('INVALID_ARGUMENT', `${option} takes key=value, not ${JSON.stringify(pair)}`);
    const [key, raw] = [pair.slice(0, eq), pair.slice(eq + 1)];
    out[key] = json ? parseLoose(raw) : raw;
  }
  return out;
}

function parseLoose(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

/** A YAML or JSON file holding one object. */
export async function readSpecFile(path: string): Promise<Record<string, unknown>> {
  // Loaded here, not at the top: most commands read no spec file, and yaml is a third of a command's start-up.
  const { parse } = await import('yaml');
  let value: unknown;
  try {
    value = parse(await readFile(path, 'utf8'));
  } catch (err) {
    throw new CliError('SPEC_FILE_INVALID', `${path}: ${(err as Error).message}`);
  }
  if (!isObject(value))
    throw new CliError('SPEC_FILE_INVALID', `${path}: expected an object (YAML mapping or JSON object)`);
  return value;
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
