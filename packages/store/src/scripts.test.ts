// The Lua files' contract with their callers: each is loaded, says in its header what every key and argument it
// uses is and what it returns, and touches only the keys it is given (so no script makes up a key name that
// keys.ts does not know).
import { readdirSync, readFileSync } from 'node:fs';
import { scripts, withIncludes } from './scripts.js';

const dir = new URL('../lua/', import.meta.url);
const files = readdirSync(dir).filter((f) => f.endsWith('.lua'));
// A script as Redis gets it: its includes are part of what it touches.
const read = (file: string) => {
  const text = withIncludes(readFileSync(new URL(file, dir), 'utf8'));
  const end = text.indexOf(']]');
  return { header: text.slice(0, end), body: text.slice(end + 2) };
};
const numbers = (text: string, what: 'KEYS' | 'ARGV') =>
  [...new Set([...text.matchAll(new RegExp(`${what}\\[(\\d+)\\]`, 'g'))].map((m) => Number(m[1])))].sort(
    (a, b) => a - b,
  );

test('every Lua file is one of the scripts the store runs, and each is loaded under its own name', () => {
  const loaded = Object.values(scripts).map((s) => `${s.name}-${s.numKeys}.lua`);
  expect(loaded.sort()).toEqual([...files].sort());
  expect(new Set(Object.values(scripts).map((s) => s.sha)).size).toBe(loaded.length);
});

test.each(files)('%s names its keys, arguments and answers, and touches only its KEYS', (file) => {
  const { header, body } = read(file);
  const numKeys = Number(/-(\d+)\.lua$/.exec(file)![1]);
  expect(header).toMatch(/^--\[\[/);
  expect(header).toContain('Input:');
  expect(header).toContain('Output:');
  // Exactly KEYS[1] … KEYS[numKeys] are documented, and the body uses no other.
  const documented = Array.from({ length: numKeys }, (_, i) => i + 1);
  expect(numbers(header, 'KEYS')).toEqual(documented);
  expect(numbers(body, 'KEYS').every((n) => n <= numKeys)).toBe(true);
  for (const n of numbers(body, 'ARGV')) {
    expect([file, header.includes(`ARGV[${n}]`)]).toEqual([file, true]);
  }
  // The key of every command is a KEYS entry, never a name built in Lua. A PUBLISH names a channel, which is not a
  // key (Redis routes channels apart from keys), so it comes in ARGV, still never built in Lua.
  for (const call of body.matchAll(/redis\.call\('(\w+)'(?:,\s*([^,)]+))?/g)) {
    const [, command, key] = call;
    if (command === 'TIME') continue;
    const named = command === 'PUBLISH' ? /^ARGV\[\d+\]$/ : /^KEYS\[\d+\]$/;
    expect([file, command, key?.trim()]).toEqual([file, command, expect.stringMatching(named)]);
  }
});

test('an include is expanded where it is named, and a script that names none is sent as it is', () => {
  const assign = scripts.assignGpus.lua;
  expect(assign).toContain('local function takeGpus(');
  expect(assign).not.toContain('-- @include');
  expect(scripts.joinGang.lua).toContain('local function takeGpus(');
  expect(scripts.createJob.lua).toBe(readFileSync(new URL('create-job-11.lua', dir), 'utf8'));
});
