// Parameter validation (every issue at once, with what is allowed), the env deny-list, JSON Schema for forms,
// and a property: whatever is accepted renders to an argument array no shell re-parses.
import fc from 'fast-check';
import { loadManifests } from './load.js';
import { FORBIDDEN_ENV, paramsJsonSchema, validateParams } from './params.js';
import { renderLaunch } from './render.js';
import type { Manifest } from './schema.js';
import { contextFor, recipesDir } from './testing/fixtures.js';

const manifests = loadManifests(recipesDir);
const get = (id: string): Manifest => manifests.get(id)!;

describe('validateParams', () => {
  it('reports every issue at once, each with the allowed range or values', () => {
    const result = validateParams(get('bert-finetune-squad'), {
      batch_size: 0,
      precision: 'fp64',
      lr: 'fast',
      bogus: 1,
      train_file: 'x; rm -rf /',
      env: { LD_PRELOAD: '/evil.so', NVIDIA_VISIBLE_DEVICES: 'all', BERTH_TOKEN: 'x', OK: 'fine' },
    });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    const byPath = Object.fromEntries(result.issues.map((i) => [i.path, i.message]));
    expect(Object.keys(byPath).sort()).toEqual(
      [
        'params.batch_size',
        'params.precision',
        'params.lr',
        'params.bogus',
        'params.train_file',
        'params.env.LD_PRELOAD',
        'params.env.NVIDIA_VISIBLE_DEVICES',
        'params.env.BERTH_TOKEN',
      ].sort(),
    );
    expect(byPath['params.batch_size']).toBe('must be an integer between 1 and 4096');
    expect(byPath['params.precision']).toBe('must be one of fp32, bf16, fp16');
    expect(byPath['params.lr']).toBe('must be a number between 0 and 1');
    expect(byPath['params.bogus']).toMatch(/unknown parameter; allowed: .*train_file/);
    expect(byPath['params.train_file']).toMatch(/^must match \^/);
  });

  it('names a required parameter that is missing', () => {
    const result = validateParams(get('custom'), { command: ['true'] });
    expect(result).toEqual({
      ok: false,
      issues: [{ path: 'params.image', message: expect.stringMatching(/is required/) }],
    });
  });

  it('fills defaults and types values', () => {
    const result = validateParams(get('tensorrt-perf'), { batch: 8 });
    expect(result).toEqual({
      ok: true,
      params: {
        values: { engine: 'model.engine', batch: 8, seq_length: 384, warmup_ms: 500, duration_s: 10, iterations: 100 },
        env: {},
      },
    });
  });

  it('rejects non-objects', () => {
    expect(validateParams(get('custom'), 'image=alpine')).toEqual({
      ok: false,
      issues: [{ path: 'params', message: 'must be an object' }],
    });
  });
});

describe('paramsJsonSchema', () => {
  it('describes each parameter with its type, range, values and default', () => {
    const schema = paramsJsonSchema(get('bert-finetune-squad')) as {
      type: string;
      properties: Record<string, Record<string, unknown>>;
      additionalProperties: boolean;
    };
    expect(schema.type).toBe('object');
    expect(schema.additionalProperties).toBe(false);
    expect(schema.properties.batch_size).toMatchObject({ type: 'integer', minimum: 1, maximum: 4096, default: 32 });
    expect(schema.properties.precision).toMatchObject({ enum: ['fp32', 'bf16', 'fp16'], default: 'bf16' });
    expect(schema.properties.train_file).toMatchObject({ type: 'string', pattern: expect.any(String) });
    expect(schema.properties.version_2).toMatchObject({ type: 'boolean', description: expect.any(String) });
    expect(schema.properties.env).toMatchObject({ type: 'object' });
  });

  it('lists required parameters', () => {
    const schema = paramsJsonSchema(get('custom')) as { required: string[] };
    expect(schema.required.sort()).toEqual(['command', 'image']);
  });
});

describe('rendering accepted params', () => {
  const shellish = fc.string({ unit: fc.constantFrom(...'ab ;|&$`\'"\\\n*?(){}<>!#~=-/.'.split('')), maxLength: 12 });
  const envKey = fc.oneof(
    fc.constantFrom(
      'NVIDIA_VISIBLE_DEVICES',
      'NVIDIA_DRIVER_CAPABILITIES',
      'LD_PRELOAD',
      'LD_LIBRARY_PATH',
      'BERTH_JOB',
    ),
    fc.stringMatching(/^[A-Z_][A-Z0-9_]{0,8}$/),
  );
  const env = fc.dictionary(envKey, fc.oneof(shellish, fc.string()), { maxKeys: 4 });

  /**
   * For each parameter, mostly a value of the right kind and range, sometimes junk: with a dozen or more parameters, an
   * even mix would almost never be accepted as a whole, and the accepted path is the one this property is about.
   */
  function paramsFor(m: Manifest) {
    const mostly = (valid: fc.Arbitrary<unknown>, junk: fc.Arbitrary<unknown>) =>
      fc.oneof({ arbitrary: valid, weight: 12 }, { arbitrary: junk, weight: 1 });
    const entries = Object.entries(m.parameters).map(([name, p]) => {
      const arb = (() => {
        switch (p.type) {
          case 'int':
            return mostly(
              fc.integer({ min: p.min ?? -10, max: p.max ?? 10 }),
              fc.integer({ min: (p.min ?? -10) - 2, max: (p.max ?? 10) + 2 }),
            );
          case 'number':
            return mostly(
              fc.double({ min: p.min ?? -10, max: p.max ?? 10, noNaN: true }),
              fc.double({ min: (p.min ?? -10) - 1, max: (p.max ?? 10) + 1, noNaN: true }),
            );
          case 'bool':
            return fc.boolean();
          case 'enum':
            return mostly(fc.constantFrom(...p.values), shellish);
          case 'image':
            return mostly(fc.constantFrom('alpine:3.20', 'nvcr.io/nvidia/pytorch:24.10-py3'), shellish);
          case 'argv':
            return fc.array(fc.oneof(shellish, fc.string()), { minLength: 1, maxLength: 5 });
          case 'string':
            return mostly(fc.stringMatching(new RegExp(p.pattern)), fc.oneof(shellish, fc.string()));
        }
      })();
      return [name, fc.option(arb as fc.Arbitrary<unknown>, { nil: undefined })] as const;
    });
    return fc.record({ ...Object.fromEntries(entries), env: fc.option(env, { nil: undefined }) });
  }

  const SHELLS = /^(?:\/(?:usr\/)?bin\/)?(?:sh|bash|dash|zsh)$/;
  const shellScripts = new Set<string>();

  it.each([...manifests.values()].map((m) => [m.id, m] as const))(
    '%s: argument array, safe env, its own image',
    (_id, m) => {
      let accepted = 0;
      fc.assert(
        fc.property(paramsFor(m), fc.integer({ min: m.resources.gpus.min, max: m.resources.gpus.max }), (raw, n) => {
          const input = Object.fromEntries(Object.entries(raw).filter(([, v]) => v !== undefined));
          const result = validateParams(m, input);
          const forbidden = Object.keys((input.env as Record<string, string> | undefined) ?? {}).filter((k) =>
            FORBIDDEN_ENV.test(k),
          );
          if (!result.ok) {
            for (const issue of result.issues) expect(issue.path).toMatch(/^params\.[a-z_]+/);
            for (const k of forbidden) expect(result.issues.map((i) => i.path)).toContain(`params.env.${k}`);
            return;
          }
          expect(forbidden).toEqual([]);
          accepted += 1;
          const launch = renderLaunch(m, result.params, contextFor(m, n));
          expect(Array.isArray(launch.command)).toBe(true);
          for (const token of launch.command) expect(typeof token).toBe('string');
          for (const key of Object.keys(launch.env)) expect(key).not.toMatch(FORBIDDEN_ENV);
          if (m.id === 'custom') {
            // The user's own argument list, verbatim and unwrapped: nothing is joined into a shell string.
            expect(launch.command).toEqual(result.params.values.command);
            expect(launch.image).toBe(result.params.values.image);
            return;
          }
          expect('gpu' in m.image && launch.image).toBe('gpu' in m.image && m.image.gpu.ref);
          // The one shell allowed is berth's own SIGTERM wrapper in front of a launcher (render.ts), which takes the
          // launcher's argv as "$@": its script must be the same whatever the user sent, so no value reaches it.
          launch.command.forEach((token, i) => {
            if (!SHELLS.test(token) || launch.command[i + 1] !== '-c') return;
            expect(launch.command[i + 3]).toBe('berth-launch');
            shellScripts.add(launch.command[i + 2]!);
            expect(shellScripts.size).toBe(1);
          });
          // Every user string arrives as (the end of) one token, never split or joined with another.
          for (const [name, value] of Object.entries(input)) {
            if (typeof value !== 'string' || m.parameters[name]?.type !== 'string') continue;
            if (!m.command.some((t) => t.includes(`{{${name}}}`) || t === `{{flag:${name}}}`)) continue;
            expect(launch.command.some((t) => t === value || t.endsWith(`/${value}`) || t.endsWith(`=${value}`))).toBe(
              true,
            );
          }
        }),
        { numRuns: 60 },
      );
      expect(accepted).toBeGreaterThanOrEqual(10);
    },
  );
});
