// apps/cli/examples/ holds one example spec a recipe. Each must be a spec the API takes: checked by the API's own dry
// run (POST /v1/jobs/validate: parameters, GPU range, required inputs), so an example cannot rot as recipes change.
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse } from 'yaml';
import { startTestStack, type TestStack } from './support/stack.js';

const root = resolve(__dirname, '..');
const examples = join(root, 'apps/cli/examples');

let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack('examples', { worker: false });
});
afterAll(async () => stack?.close());

test('there is one example for every recipe, named after it', () => {
  const recipes = readdirSync(join(root, 'ngc-manifests'))
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => f.replace(/\.yaml$/, ''));
  expect(readdirSync(examples).sort()).toEqual(recipes.map((r) => `${r}.yaml`).sort());
});

test.each(readdirSync(examples))('%s is a spec the API takes, and says how to submit it', async (file) => {
  const text = readFileSync(join(examples, file), 'utf8');
  expect(text).toMatch(/^# {3}berth submit -f /m);
  const spec = parse(text) as { manifest: string };
  expect(spec.manifest).toBe(file.replace(/\.yaml$/, ''));
  const res = await stack.alice.fetch('/v1/jobs/validate', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(spec),
  });
  expect({ file, status: res.status, body: res.status === 200 ? 'ok' : await res.text() }).toEqual({
    file,
    status: 200,
    body: 'ok',
  });
});
