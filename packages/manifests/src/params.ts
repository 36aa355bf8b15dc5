// A recipe's parameters as a zod schema: validation with messages that say what is allowed, and JSON Schema for forms.
import { z } from 'zod';
import { IMAGE_REF, type Manifest, type Param } from './schema.js';

export type ParamValue = string | number | boolean | string[];

export interface ParamValues {
  values: Record<string, ParamValue>;
  /** User environment, already checked against the forbidden names. */
  env: Record<string, string>;
}

export interface ParamIssue {
  path: string;
  message: string;
}

export type ValidateResult = { ok: true; params: ParamValues } | { ok: false; issues: ParamIssue[] };

/** Names a user may not set: they steer the GPU runtime, the dynamic loader, or berth itself. */
export const FORBIDDEN_ENV = /^(NVIDIA_|BERTH_)|^(LD_PRELOAD|LD_LIBRARY_PATH)$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function describeRange(min?: number, max?: number): string {
  if (min !== undefined && max !== undefined) return ` between ${min} and ${max}`;
  if (min !== undefined) return ` of at least ${min}`;
  if (max !== undefined) return ` of at most ${max}`;
  return '';
}

/** The schema one parameter's value must satisfy. */
export function paramSchema(p: Param): z.ZodType {
  switch (p.type) {
    case 'int':
    case 'number': {
      const what = `${p.type === 'int' ? 'an integer' : 'a number'}${describeRange(p.min, p.max)}`;
      let s = z.number({ error: `must be ${what}` });
      if (p.type === 'int') s = s.int({ error: `must be ${what}` });
      if (p.min !== undefined) s = s.min(p.min, { error: `must be ${what}` });
      if (p.max !== undefined) s = s.max(p.max, { error: `must be ${what}` });
      return s.describe(p.description);
    }
    case 'string':
      return z
        .string({ error: `must be a string matching ${p.pattern}` })
        .max(p.maxLength, { error: `must be at most ${p.maxLength} characters` })
        .regex(new RegExp(p.pattern), { error: `must match ${p.pattern}` })
        .describe(p.description);
    case 'bool':
      return z.boolean({ error: 'must be true or false' }).describe(p.description);
    case 'enum':
      return z
        .enum(p.values as [string, ...string[]], { error: `must be one of ${p.values.join(', ')}` })
        .describe(p.description);
    case 'image':
      return z
        .string({ error: 'must be an image reference' })
        .max(255)
        .regex(IMAGE_REF, { error: 'must be an image reference (registry/repository:tag[@sha256:digest])' })
        .describe(p.description);
    case 'argv':
      return z
        .array(z.string().max(8192, { error: 'arguments are at most 8192 characters' }), {
          error: 'must be a list of strings',
        })
        .min(1, { error: 'must hold at least one argument' })
        .max(256, { error: 'must hold at most 256 arguments' })
        .describe(p.description);
  }
}

const envSchema = z
  .record(
    z.string().regex(ENV_NAME, { error: 'environment variable names are letters, digits and _' }),
    z.string().max(32768),
  )
  .describe('extra environment variables (not NVIDIA_*, BERTH_*, LD_PRELOAD or LD_LIBRARY_PATH)');

const compiled = new WeakMap<Manifest, z.ZodObject>();

/**
 * The user-facing schema: every parameter optional unless required without a default. Built once per recipe (recipes
 * do not change while a process runs): building it per request was a third of the API's time under a submit load.
 */
export function paramsSchema(m: Manifest): z.ZodObject {
  let schema = compiled.get(m);
  if (!schema) {
    schema = buildParamsSchema(m);
    compiled.set(m, schema);
  }
  return schema;
}

function buildParamsSchema(m: Manifest): z.ZodObject {
  const shape: Record<string, z.ZodType> = {};
  for (const [name, p] of Object.entries(m.parameters)) {
    const s = paramSchema(p);
    shape[name] = p.default !== undefined ? s.default(p.default) : p.required ? s : s.optional();
  }
  shape.env = envSchema.optional();
  return z.strictObject(shape);
}

export function paramsJsonSchema(m: Manifest): Record<string, unknown> {
  return z.toJSONSchema(paramsSchema(m), { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
}

/** Every problem at once; implied values (e.g. phase 2 → seq 512) fill what the user left unset. */
export function validateParams(m: Manifest, input: unknown): ValidateResult {
  const issues: ParamIssue[] = [];
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    return { ok: false, issues: [{ path: 'params', message: 'must be an object' }] };
  }
  const raw = input as Record<string, unknown>;
  for (const key of Object.keys(raw)) {
    if (key !== 'env' && !(key in m.parameters)) {
      issues.push({
        path: `params.${key}`,
        message: `unknown parameter; allowed: ${Object.keys(m.parameters).join(', ') || 'none'}`,
      });
    }
  }
  const known = Object.fromEntries(Object.entries(raw).filter(([k]) => k === 'env' || k in m.parameters));
  const parsed = paramsSchema(m).safeParse(known);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const name = issue.path.map(String).join('.');
      const p = m.parameters[String(issue.path[0])];
      const message =
        issue.code === 'invalid_type' && issue.path.length === 1 && raw[String(issue.path[0])] === undefined
          ? `is required (${p?.description ?? 'a value'})`
          : issue.message;
      issues.push({ path: `params.${name}`, message });
    }
  }
  const env = (raw.env ?? {}) as Record<string, unknown>;
  if (typeof env === 'object' && env !== null) {
    for (const key of Object.keys(env)) {
      if (FORBIDDEN_ENV.test(key)) {
        issues.push({
          path: `params.env.${key}`,
          message: 'NVIDIA_*, BERTH_*, LD_PRELOAD and LD_LIBRARY_PATH cannot be set',
        });
      }
    }
  }
  if (issues.length > 0 || !parsed.success) return { ok: false, issues };

  const { env: userEnv, ...values } = parsed.data as Record<string, ParamValue> & { env?: Record<string, string> };
  for (const [name, p] of Object.entries(m.parameters)) {
    const value = values[name];
    const implied = value === undefined ? undefined : p.implies?.[String(value)];
    for (const [target, v] of Object.entries(implied ?? {})) {
      if (raw[target] === undefined) values[target] = v;
    }
  }
  return { ok: true, params: { values, env: userEnv ?? {} } };
}
