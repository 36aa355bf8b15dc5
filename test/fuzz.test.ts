// Fuzzing from the OpenAPI document: every JSON request body and every GET query string gets values derived from its
// schema (fitting, nearly fitting, wrong types, unknown fields, edge numbers, huge, odd and deeply nested values) and
// arbitrary JSON and non-JSON. Whatever arrives, the API answers within 5 s, never with a 5xx, every 4xx is a JSON
// error with a code, and it still answers /healthz afterwards.
import fc from 'fast-check';
import { createConnection } from 'node:net';
import { conforming, deeplyNested, fuzzing, type JsonSchema, type SchemaHints } from './support/schema-arbitrary.js';
import { addUser, fixtureJob, startTestStack, submit, type TestClient, type TestStack } from './support/stack.js';

jest.setTimeout(120_000);

/** Runs per operation: together about 2,650 requests, well under a minute on a busy 2-core machine. */
const BODY_RUNS = 250;
const QUERY_RUNS = 150;
const ANSWER_WITHIN_MS = 5000;

interface Parameter {
  in: 'path' | 'query' | 'header';
  name: string;
  required?: boolean;
  schema: JsonSchema;
}

interface Operation {
  operationId?: string;
  parameters?: Parameter[];
  requestBody?: { content?: Record<string, { schema: JsonSchema }> };
}

interface Request {
  method: string;
  path: string;
  body?: string;
  headers?: Record<string, string>;
}

/** What one fuzzed request got: its status and, for an error, the error's code. */
interface Outcome {
  status: number;
  code?: string;
}

let stack: TestStack;
let doc: { paths: Record<string, Record<string, Operation>> };
let hints: SchemaHints;
/** Real ids for path parameters, by the path's first segment under /v1. */
const realIds: Record<string, string[]> = {};

beforeAll(async () => {
  stack = await startTestStack('fuzz', { worker: false });
  doc = (await (await fetch(`${stack.url}/openapi.json`)).json()) as typeof doc;
  // A job of the member's (it stays queued: no worker) and a user the admin may change at will.
  const { status, body: job } = await submit(stack.alice, fixtureJob(['echo', 'fuzz']));
  expect(status).toBe(201);
  const target = await addUser(stack.admin, 'fuzz-target', 'member');
  realIds.jobs = [job.id];
  realIds.users = [target.user.id];
  const manifests = (await (await stack.alice.fetch('/v1/manifests')).json()) as { manifests: { id: string }[] };
  const paramsSchemas: Record<string, JsonSchema> = {};
  for (const { id } of manifests.manifests) {
    const m = (await (await stack.alice.fetch(`/v1/manifests/${id}`)).json()) as { paramsSchema: JsonSchema };
    paramsSchemas[id] = m.paramsSchema;
  }
  // Images the allowlist takes, so some fuzzed jobs get past it to the checks behind it.
  const images = ['berth/fixture:dev', 'nvcr.io/nvidia/pytorch:24.01-py3'];
  hints = { known: [job.id, stack.alice.user.id, target.user.id, ...images], paramsSchemas };
});

afterAll(async () => stack?.close());

async function send(client: TestClient, req: Request): Promise<Outcome> {
  const signal = AbortSignal.timeout(ANSWER_WITHIN_MS);
  const headers: Record<string, string> = { ...req.headers };
  if (req.body !== undefined) headers['content-type'] = 'application/json';
  let res: Response;
  try {
    res = await client.fetch(req.path, {
      method: req.method,
      headers,
      ...(req.body !== undefined ? { body: req.body } : {}),
      signal,
    });
  } catch (err) {
    throw new Error(`${req.method} ${show(req.path)}: no answer within ${ANSWER_WITHIN_MS} ms (${String(err)})`);
  }
  const type = res.headers.get('content-type') ?? '';
  // A live stream (logs or metrics with follow=true) answers at once and then stays open: its headers are the answer.
  if (res.status === 200 && type.includes('text/event-stream')) {
    await res.body?.cancel();
    return { status: 200 };
  }
  let text: string;
  try {
    text = await res.text();
  } catch (err) {
    throw new Error(
      `${req.method} ${req.path}: the body did not arrive within ${ANSWER_WITHIN_MS} ms (${String(err)})`,
    );
  }
  const say = (what: string) =>
    new Error(
      `${req.method} ${show(req.path)} → ${res.status} ${what}: ${text.slice(0, 300)} (sent ${show(req.body)})`,
    );
  if (res.status >= 500) throw say('a server error');
  if (res.status >= 400) {
    if (!type.includes('application/json')) throw say(`with content-type ${type}, not a JSON error`);
    let code: unknown;
    try {
      code = (JSON.parse(text) as { error?: { code?: unknown } }).error?.code;
    } catch {
      throw say('with a body that is not JSON');
    }
    if (typeof code !== 'string' || !code) throw say('without error.code');
    return { status: res.status, code };
  }
  return { status: res.status };
}

function show(body: string | undefined): string {
  if (body === undefined) return 'no body';
  return body.length > 300 ? `${body.slice(0, 300)}… (${body.length} characters)` : body;
}

/** Bodies that are not what a schema describes at all: any JSON, no JSON, and nesting deep enough to hurt a parser. */
const rawBodies = fc.oneof(
  fc.jsonValue().map((v) => JSON.stringify(v)),
  fc.string({ unit: 'binary', maxLength: 200 }),
  fc.constantFrom('', '{', '{"a":', 'nul', '1e999', '"\\ud800"', '{"a":1,"a":2}', '\u0000', '[]', 'null', '{}'),
  fc.integer({ min: 1000, max: 200_000 }).map((n) => '['.repeat(n) + ']'.repeat(n)),
  fc.integer({ min: 1000, max: 100_000 }).map((n) => '{"a":'.repeat(n) + '1' + '}'.repeat(n)),
  deeplyNested.map((v) => JSON.stringify(v)),
);

function bodies(schema: JsonSchema): fc.Arbitrary<string> {
  return fc.oneof(
    { arbitrary: fuzzing(schema, hints).map((v) => JSON.stringify(v) ?? ''), weight: 6 },
    { arbitrary: rawBodies, weight: 2 },
  );
}

/** A path parameter: mostly a real id of the right kind, else any string, percent-encoded. */
function pathValue(template: string, name: string): fc.Arbitrary<string> {
  const kind = /^\/v1\/([^/]+)/.exec(template)?.[1] ?? '';
  const random = fc
    .oneof(fc.string({ unit: 'grapheme', minLength: 1, maxLength: 80 }), fc.constantFrom('..', '.', '%', 'null'))
    .map((s) => encodeURIComponent(s));
  const real = name === 'id' ? (realIds[kind] ?? []) : [];
  return real.length ? fc.oneof({ arbitrary: fc.constantFrom(...real), weight: 4 }, random) : random;
}

function pathOf(template: string, parameters: Parameter[]): fc.Arbitrary<string> {
  const names = parameters.filter((p) => p.in === 'path').map((p) => p.name);
  return fc
    .tuple(...names.map((n) => pathValue(template, n)))
    .map((values) => names.reduce((path, n, i) => path.replace(`{${n}}`, values[i]!), template));
}

/** A query value: one that fits, or any string, or the strings numbers and booleans are parsed from. */
function queryValue(schema: JsonSchema): fc.Arbitrary<string> {
  return fc.oneof(
    conforming(schema, hints).map((v) => String(v)),
    fc.string({ unit: 'grapheme', maxLength: 40 }),
    fc.constantFrom(
      '',
      ' ',
      '-1',
      '0',
      '1.5',
      '1e309',
      'NaN',
      'Infinity',
      '0x1F',
      'true',
      'false',
      'yes',
      '[]',
      'null',
    ),
    fc.constantFrom(1000, 8000).map((n) => '9'.repeat(n)),
    fc.integer().map(String),
  );
}

/** A query string from the operation's parameters: some left out, some repeated, unknown ones, raw or encoded. */
function queryOf(parameters: Parameter[]): fc.Arbitrary<string> {
  const query = parameters.filter((p) => p.in === 'query');
  const pairs = fc.tuple(
    ...query.map((p) => fc.option(fc.array(queryValue(p.schema), { minLength: 1, maxLength: 2 }), { freq: 2 })),
    fc.dictionary(fc.constantFrom('surprise', 'access_token', '__proto__', 'sig', ''), fc.string({ maxLength: 8 }), {
      maxKeys: 2,
    }),
  );
  return fc.tuple(pairs, fc.boolean()).map(([values, encode]) => {
    const unknown = values.at(-1) as Record<string, string>;
    const list: [string, string][] = [];
    (values.slice(0, -1) as (string[] | null)[]).forEach((vs, i) => vs?.forEach((v) => list.push([query[i]!.name, v])));
    list.push(...Object.entries(unknown));
    const e = encode ? encodeURIComponent : (s: string) => s.replace(/[#&\s]/g, encodeURIComponent);
    let q = list.length ? `?${list.map(([k, v]) => `${e(k)}=${e(v)}`).join('&')}` : '';
    // Under Node's 16 KiB limit on the request line and headers together: past it, Fastify never sees the request.
    while (q.length > 12_000) q = q.slice(0, q.lastIndexOf('&'));
    return q;
  });
}

/** Header parameters (last-event-id): printable ASCII only, as fetch sends nothing else. */
function headersOf(parameters: Parameter[]): fc.Arbitrary<Record<string, string>> {
  const header = parameters.filter((p) => p.in === 'header');
  const value = (schema: JsonSchema) =>
    fc.oneof(
      conforming(schema, hints).map(String),
      fc.string({ unit: 'grapheme-ascii', maxLength: 40 }).map((s) => s.replace(/[^\x20-\x7e]/g, '').trim()),
    );
  return fc
    .tuple(...header.map((p) => fc.option(value(p.schema))))
    .map((vs) => Object.fromEntries(header.flatMap((p, i) => (vs[i] ? [[p.name, vs[i]!]] : []))));
}

/** Bodies fuzzing once answered with a 5xx: any resources.memory that is not a size was a 500 (a RenderError). */
const foundBefore: Record<string, unknown[]> = {
  'POST /v1/jobs': [{ manifest: 'custom', resources: { memory: '' }, params: { image: 'a', command: [] } }],
  'POST /v1/jobs/validate': [{ manifest: 'bert-pretrain', resources: { memory: 'lots' } }],
};

interface Tally {
  operation: string;
  fuzzed: 'body' | 'query';
  as: string;
  runs: number;
  ms: number;
  slowest: { ms: number; request: string };
  statuses: Record<string, number>;
}

test('fuzzed bodies and query strings never get a 5xx, a non-JSON error or no answer; the API stays up', async () => {
  const tallies: Tally[] = [];
  const notFuzzed: string[] = [];
  const failures: string[] = [];

  for (const [template, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const parameters = op.parameters ?? [];
      const jsonBody = op.requestBody?.content?.['application/json']?.schema;
      const hasQuery = parameters.some((p) => p.in === 'query');
      const name = `${method.toUpperCase()} ${template}`;
      const fuzzed = jsonBody ? 'body' : method === 'get' && hasQuery ? 'query' : undefined;
      if (!fuzzed) {
        const why = op.requestBody
          ? `body is ${Object.keys(op.requestBody.content ?? {}).join(', ')}, not JSON`
          : hasQuery
            ? 'query parameters, but not a GET'
            : 'no request body and no query parameters';
        notFuzzed.push(`${name} (${why})`);
        continue;
      }

      // Admin routes refuse a member before looking at the input: fuzz them as the admin, or nothing is fuzzed.
      const path = fc.sample(pathOf(template, parameters), { numRuns: 1, seed: 1 })[0]!;
      const probe = await send(stack.alice, {
        method: method.toUpperCase(),
        path,
        ...(jsonBody ? { body: '{}' } : {}),
      });
      const [who, client] = probe.code === 'FORBIDDEN' ? ['admin', stack.admin] : ['member', stack.alice];

      const requests: fc.Arbitrary<Request> = fc
        .tuple(
          pathOf(template, parameters),
          fuzzed === 'query' ? queryOf(parameters) : fc.constant(''),
          fuzzed === 'body' ? bodies(jsonBody!) : fc.constant(undefined),
          headersOf(parameters),
        )
        .map(([p, q, body, headers]) => ({
          method: method.toUpperCase(),
          path: p + q,
          headers,
          ...(body !== undefined ? { body } : {}),
        }));
      const tally: Tally = {
        operation: name,
        fuzzed,
        as: who,
        runs: 0,
        ms: 0,
        slowest: { ms: 0, request: '' },
        statuses: {},
      };
      const started = Date.now();
      tallies.push(tally);
      const details = await fc.check(
        fc.asyncProperty(requests, async (req) => {
          const t0 = Date.now();
          const outcome = await send(client, req);
          if (Date.now() - t0 > tally.slowest.ms) {
            tally.slowest = { ms: Date.now() - t0, request: `${show(req.path)} ${show(req.body).slice(0, 120)}` };
          }
          tally.runs++;
          const key = outcome.code ? `${outcome.status} ${outcome.code}` : String(outcome.status);
          tally.statuses[key] = (tally.statuses[key] ?? 0) + 1;
        }),
        {
          numRuns: fuzzed === 'body' ? BODY_RUNS : QUERY_RUNS,
          // What earlier runs found goes first every time, so a fixed bug stays fixed.
          examples: (foundBefore[name] ?? []).map((body): [Request] => [
            { method: method.toUpperCase(), path: template, headers: {}, body: JSON.stringify(body) },
          ]),
        },
      );
      tally.ms = Date.now() - started;
      if (details.failed) {
        const error =
          details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance);
        failures.push(
          `${name} as ${who}: ${error} [fast-check seed ${details.seed}, path ${details.counterexamplePath}]`,
        );
      }
      const health = await fetch(`${stack.url}/healthz`, { signal: AbortSignal.timeout(ANSWER_WITHIN_MS) });
      if (health.status !== 200) failures.push(`/healthz answered ${health.status} after fuzzing ${name}`);
    }
  }

  console.log(
    [
      `fuzzed ${tallies.length} operations:`,
      ...tallies.map(
        (t) =>
          `  ${t.operation} — ${t.fuzzed}, as ${t.as}, ${t.runs} requests in ${t.ms} ms: ` +
          Object.entries(t.statuses)
            .sort(([a], [b]) => a.localeCompare(b))
            .map(([s, n]) => `${s}×${n}`)
            .join(', ') +
          `; slowest ${t.slowest.ms} ms: ${t.slowest.request}`,
      ),
      `not fuzzed (${notFuzzed.length}):`,
      ...notFuzzed.map((n) => `  ${n}`),
    ].join('\n'),
  );

  expect(failures).toEqual([]);
  // The fuzzing reached every operation's validation (not only its auth check), and some bodies got through it.
  for (const t of tallies) {
    expect({ [t.operation]: Object.keys(t.statuses).some((s) => s.startsWith('400 ')) }).toEqual({
      [t.operation]: true,
    });
  }
  expect(tallies.filter((t) => t.fuzzed === 'body').length).toBeGreaterThanOrEqual(7);
  expect(tallies.filter((t) => t.fuzzed === 'query').length).toBeGreaterThanOrEqual(6);
  expect(tallies.some((t) => Object.keys(t.statuses).some((s) => /^20[01]$/.test(s)))).toBe(true);
  expect((await fetch(`${stack.url}/healthz`)).status).toBe(200);
});

/** One request written straight to the socket, and the whole answer. */
async function rawHttp(request: string): Promise<{ status: number; type: string; body: string }> {
  const { port } = new URL(stack.url);
  const socket = createConnection(Number(port), '127.0.0.1');
  socket.setTimeout(ANSWER_WITHIN_MS, () => socket.destroy(new Error(`no answer within ${ANSWER_WITHIN_MS} ms`)));
  socket.end(request);
  let answer = '';
  for await (const chunk of socket) answer += (chunk as Buffer).toString('latin1');
  const [head = '', body = ''] = answer.split('\r\n\r\n');
  return {
    status: Number(head.split(' ')[1]),
    type: /^content-type:\s*(.*)$/im.exec(head)?.[1] ?? '',
    body,
  };
}

test('requests the HTTP parser refuses before Fastify routes them still get a JSON error with a code', async () => {
  const auth = `Authorization: Bearer ${stack.alice.token}\r\n`;
  const cases: Record<string, string> = {
    'a request line over 16 KiB': `GET /v1/jobs?state=${'x'.repeat(17_000)} HTTP/1.1\r\nHost: x\r\n${auth}\r\n`,
    'a header line without a colon': `GET /v1/jobs HTTP/1.1\r\nHost: x\r\n${auth}no colon here\r\n\r\n`,
  };
  const answers: Record<string, { status: number; json: boolean; code: unknown; body: string }> = {};
  for (const [what, request] of Object.entries(cases)) {
    const { status, type, body } = await rawHttp(request);
    let code: unknown;
    try {
      code = (JSON.parse(body) as { error?: { code?: unknown } }).error?.code;
    } catch {
      code = undefined;
    }
    answers[what] = { status, json: type.includes('application/json'), code, body };
  }
  const wanted = { status: expect.any(Number), json: true, code: expect.any(String), body: expect.any(String) };
  expect(answers).toEqual(Object.fromEntries(Object.keys(cases).map((what) => [what, wanted])));
  expect((await fetch(`${stack.url}/healthz`)).status).toBe(200);
});
