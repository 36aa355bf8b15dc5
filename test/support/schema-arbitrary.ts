// fast-check arbitraries from the JSON Schemas in the API's OpenAPI document: values that fit a schema, and values
// that almost fit (wrong types, unknown fields, missing ones, edge numbers, huge or odd strings, deep nesting).
import fc from 'fast-check';

export type JsonSchema = {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  propertyNames?: JsonSchema;
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  allOf?: JsonSchema[];
  enum?: unknown[];
  const?: unknown;
  nullable?: boolean;
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number | boolean;
  exclusiveMaximum?: number | boolean;
  minItems?: number;
  maxItems?: number;
  $ref?: string;
};

export interface SchemaHints {
  /** Real values (ids of the caller's objects) offered for strings whose pattern they match, beside random ones. */
  known?: string[];
  /** Each recipe's params schema: an object with `manifest` and `params` gets params meant for its recipe. */
  paramsSchemas?: Record<string, JsonSchema>;
}

const MAX_DEPTH = 5;

/** Strings that have broken parsers, validators and loggers before. */
const oddStrings = [
  '',
  ' ',
  '\u0000',
  '\n\r\t',
  '\uD800',
  '\uFEFF',
  '💥🚀',
  'é'.normalize('NFD'),
  '\u202Eevil',
  '../../etc/passwd',
  '%2e%2e%2f',
  '${jndi:ldap://x}',
  '<script>alert(1)</script>',
  "'; DROP TABLE jobs; --",
  '__proto__',
  'constructor',
  'toString',
  '-1',
  '1e309',
  'NaN',
  'null',
  'true',
  '[]',
  '{}',
];

/** Numbers at and across the edges every integer field has: sign, zero, safe-integer and float limits. */
const edgeNumbers = [
  0,
  -0,
  -1,
  1,
  0.5,
  -0.5,
  2 ** 31,
  -(2 ** 31),
  2 ** 53,
  2 ** 53 + 2,
  -(2 ** 53),
  1e21,
  1e308,
  -1e308,
];

const hugeString = fc.constantFrom(100, 10_000, 100_000, 1_100_000).map((n) => 'x'.repeat(n));

/** Arrays (or objects) nested `depth` deep with a value at the bottom. */
export const deeplyNested = fc.tuple(fc.integer({ min: 50, max: 3000 }), fc.boolean()).map(([depth, asObject]) => {
  let value: unknown = 1;
  for (let i = 0; i < depth; i++) value = asObject ? { a: value } : [value];
  return value;
});

function typesOf(schema: JsonSchema): string[] {
  if (Array.isArray(schema.type)) return schema.type;
  if (schema.type) return [schema.type];
  if (schema.properties || schema.additionalProperties !== undefined) return ['object'];
  if (schema.items) return ['array'];
  return [];
}

function bound(value: number | boolean | undefined, fallback: number | undefined): number | undefined {
  return typeof value === 'number' ? value : fallback;
}

const byPattern = new Map<string, fc.Arbitrary<string>>();

/** fc.stringMatching, built once per pattern: building one from a long regex takes a while. */
function matching(pattern: string): fc.Arbitrary<string> {
  let arb = byPattern.get(pattern);
  if (!arb) byPattern.set(pattern, (arb = fc.stringMatching(new RegExp(pattern))));
  return arb;
}

/** Values that fit the schema (patterns by fc.stringMatching, so "fit" is as good as the regex is exact). */
export function conforming(schema: JsonSchema, hints: SchemaHints = {}, depth = 0): fc.Arbitrary<unknown> {
  if (schema.$ref) throw new Error(`schema-arbitrary does not follow $ref (${schema.$ref}): resolve it first`);
  if (schema.const !== undefined) return fc.constant(schema.const);
  if (schema.enum) return fc.constantFrom(...schema.enum);
  const alternatives = schema.anyOf ?? schema.oneOf;
  if (alternatives) return fc.oneof(...alternatives.map((s) => conforming(s, hints, depth)));
  if (schema.allOf) return conforming(Object.assign({}, ...schema.allOf) as JsonSchema, hints, depth);
  const types = typesOf(schema);
  if (types.length === 0) return fc.jsonValue({ maxDepth: 2 });
  const arbs = types.map((type) => conformingOfType(type, schema, hints, depth));
  if (schema.nullable) arbs.push(fc.constant(null));
  return arbs.length === 1 ? arbs[0]! : fc.oneof(...arbs);
}

function conformingOfType(type: string, schema: JsonSchema, hints: SchemaHints, depth: number): fc.Arbitrary<unknown> {
  switch (type) {
    case 'string': {
      const maxLength = Math.min(schema.maxLength ?? 64, 256);
      const minLength = Math.min(schema.minLength ?? 0, maxLength);
      if (!schema.pattern) return fc.string({ minLength, maxLength, unit: 'grapheme' });
      const pattern = new RegExp(schema.pattern);
      const random = matching(schema.pattern).map((s) => s.slice(0, schema.maxLength ?? Infinity));
      const known = (hints.known ?? []).filter((k) => pattern.test(k));
      return known.length ? fc.oneof(fc.constantFrom(...known), random) : random;
    }
    case 'integer':
    case 'number': {
      const min = bound(schema.minimum, undefined) ?? bound(schema.exclusiveMinimum, -1e9)! + 1;
      const max = bound(schema.maximum, undefined) ?? bound(schema.exclusiveMaximum, 1e9)! - 1;
      return type === 'integer'
        ? fc.integer({ min: Math.ceil(min), max: Math.floor(max) })
        : fc.double({ min, max, noNaN: true, noDefaultInfinity: true });
    }
    case 'boolean':
      return fc.boolean();
    case 'null':
      return fc.constant(null);
    case 'array': {
      const maxLength = depth >= MAX_DEPTH ? (schema.minItems ?? 0) : Math.min(schema.maxItems ?? 4, 4);
      return fc.array(conforming(schema.items ?? {}, hints, depth + 1), {
        minLength: Math.min(schema.minItems ?? 0, maxLength),
        maxLength,
      });
    }
    case 'object':
      return objectOf(schema, hints, depth, conforming);
    default:
      throw new Error(`schema-arbitrary does not know the type ${type}`);
  }
}

type Make = (schema: JsonSchema, hints: SchemaHints, depth: number) => fc.Arbitrary<unknown>;

function objectOf(schema: JsonSchema, hints: SchemaHints, depth: number, make: Make): fc.Arbitrary<unknown> {
  const properties = schema.properties ?? {};
  const names = Object.keys(properties);
  // Keys of a map: as the schema names them, or identifier-like when fitting (a validator may check more than the
  // document says), or anything at all when fuzzing.
  const keys = schema.propertyNames?.pattern
    ? matching(schema.propertyNames.pattern)
    : make === conforming
      ? matching('^[a-z][a-z0-9_.-]{0,15}$')
      : fc.string({ minLength: 1, maxLength: 12 });
  const extra =
    typeof schema.additionalProperties === 'object' && depth < MAX_DEPTH
      ? fc.dictionary(keys, make(schema.additionalProperties, hints, depth + 1), { maxKeys: 3 })
      : fc.constant({});
  const model = Object.fromEntries(names.map((n) => [n, make(properties[n]!, hints, depth + 1)]));
  const record = fc.record(model, { requiredKeys: (schema.required ?? []).filter((n) => n in properties) });
  const base = fc.tuple(extra, record).map(([e, r]) => ({ ...e, ...r }) as Record<string, unknown>);
  // A recipe and params written for it: the params schema is the recipe's, not the body's free-form object.
  const recipes = Object.keys(hints.paramsSchemas ?? {});
  if (!('manifest' in properties && 'params' in properties) || recipes.length === 0) return base;
  const fitted = fc.oneof(
    ...recipes.map((id) =>
      fc
        .tuple(base, make(hints.paramsSchemas![id]!, hints, depth + 1))
        .map(([obj, params]) => ({ ...obj, manifest: id, params })),
    ),
  );
  return fc.oneof({ arbitrary: fitted, weight: 3 }, { arbitrary: base, weight: 1 });
}

/** Any JSON value of a type the schema does not allow (or any at all when it allows everything). */
function wrongType(schema: JsonSchema): fc.Arbitrary<unknown> {
  const allowed = new Set(typesOf(schema));
  if (allowed.has('integer')) allowed.add('number');
  const all: [string, fc.Arbitrary<unknown>][] = [
    ['string', fc.string({ maxLength: 20 })],
    ['number', fc.oneof(fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }))],
    ['boolean', fc.boolean()],
    ['null', fc.constant(null)],
    ['array', fc.array(fc.jsonValue({ maxDepth: 1 }), { maxLength: 3 })],
    ['object', fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 3 })],
  ];
  const others = all.filter(([t]) => !allowed.has(t)).map(([, a]) => a);
  return others.length ? fc.oneof(...others) : fc.jsonValue({ maxDepth: 2 });
}

/** Values at or just past the schema's limits, and generally nasty ones of its own type. */
function edges(schema: JsonSchema): fc.Arbitrary<unknown> {
  const types = typesOf(schema);
  const arbs: fc.Arbitrary<unknown>[] = [fc.constantFrom(...oddStrings)];
  if (types.includes('string')) {
    arbs.push(hugeString, fc.string({ unit: 'binary', maxLength: 64 }), fc.string({ unit: 'grapheme', maxLength: 64 }));
    if (schema.maxLength !== undefined) arbs.push(fc.constant('a'.repeat(schema.maxLength + 1)));
  }
  if (types.includes('integer') || types.includes('number')) {
    const limits = [schema.minimum, schema.maximum].filter((n): n is number => typeof n === 'number');
    arbs.push(fc.constantFrom(...edgeNumbers, ...limits, ...limits.flatMap((n) => [n - 1, n + 1, n + 0.5])));
  }
  if (types.includes('array') && schema.maxItems !== undefined) {
    arbs.push(fc.constant(Array.from({ length: schema.maxItems + 1 }, () => null)));
  }
  return fc.oneof(...arbs);
}

/** Mostly-fitting values with something wrong somewhere: the shape a careless or hostile client sends. */
export function fuzzing(schema: JsonSchema, hints: SchemaHints = {}, depth = 0): fc.Arbitrary<unknown> {
  if (depth >= MAX_DEPTH) return fc.oneof(conforming(schema, hints, depth), wrongType(schema));
  const alternatives = schema.anyOf ?? schema.oneOf;
  const types = typesOf(schema);
  let structural: fc.Arbitrary<unknown>;
  if (alternatives) {
    structural = fc.oneof(...alternatives.map((s) => fuzzing(s, hints, depth)));
  } else if (types.includes('object') && !schema.enum) {
    const fuzzed = objectOf(schema, hints, depth, fuzzing);
    // Unknown fields beside known ones (strict objects must name them), and required ones left out.
    structural = fc
      .tuple(
        fuzzed,
        fc.dictionary(fc.constantFrom('surprise', '__proto__', 'constructor', '', '💥', 'a.b'), fc.jsonValue(), {
          maxKeys: 2,
        }),
        fc.subarray(schema.required ?? []),
      )
      .map(([obj, unknown, drop]) => {
        const out: Record<string, unknown> = { ...(obj as object) };
        for (const [k, v] of Object.entries(unknown)) Object.defineProperty(out, k, { value: v, enumerable: true });
        for (const k of drop) delete out[k];
        return out;
      });
  } else if (types.includes('array')) {
    structural = fc.array(fuzzing(schema.items ?? {}, hints, depth + 1), {
      maxLength: Math.min((schema.maxItems ?? 4) + 1, 6),
    });
  } else {
    structural = conforming(schema, hints, depth);
  }
  return fc.oneof(
    { arbitrary: structural, weight: 5 },
    { arbitrary: conforming(schema, hints, depth), weight: 2 },
    { arbitrary: wrongType(schema), weight: 1 },
    { arbitrary: edges(schema), weight: 1 },
    ...(depth <= 2 ? [{ arbitrary: deeplyNested, weight: 1 }] : []),
  );
}
