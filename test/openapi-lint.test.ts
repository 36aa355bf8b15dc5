// The OpenAPI document passes Redocly's recommended rules.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startTestStack, type TestStack } from './support/stack.js';

let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack('openapi', { worker: false });
});
afterAll(async () => stack.close());

test('redocly lint accepts /openapi.json', async () => {
  const file = join(mkdtempSync(join(tmpdir(), 'openapi-')), 'openapi.json');
  writeFileSync(file, await (await fetch(`${stack.url}/openapi.json`)).text());
  const redocly = resolve(__dirname, '../node_modules/.bin/redocly');
  // execFileSync throws (failing the test) when the linter reports an error.
  const out = execFileSync(redocly, ['lint', file, '--format=summary'], {
    encoding: 'utf8',
    env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  expect(out).not.toMatch(/^error/m);
});
