// The one-slot parse cache: the spec schema's parameter check is reused by resolveSpec only for the very object zod
// returned, and a parse must leave that object in the slot.
import { loadManifests, validateParams } from '@berth/manifests';
import { validatorCompiler } from 'fastify-type-provider-zod';
import { join } from 'node:path';
import { jobSpecSchema, resolveSpec } from './job-spec.js';
import { isLastChecked } from './last-params-check.js';

const manifests = loadManifests(join(__dirname, '../../../../ngc-manifests'));
const custom = manifests.get('custom')!;
const schema = jobSpecSchema(manifests);
const spec = { manifest: 'custom', params: { image: 'berth/fixture:dev', command: ['true'] } };

test('the spec schema leaves the very params object it returns in the slot: zod does not copy after refining', () => {
  const parsed = schema.parse(spec);
  expect(isLastChecked(custom, parsed.params)).toBe(true);
  // submitJob's path (safeParse) and POST /v1/jobs's (Fastify's validator with this schema as the body).
  const safe = schema.safeParse(spec);
  expect(safe.success && isLastChecked(custom, safe.data.params)).toBe(true);
  const validator = validatorCompiler({ schema, method: 'POST', url: '/v1/jobs', httpPart: 'body' });
  const validated = validator(spec) as { value?: typeof parsed };
  expect(validated.value && isLastChecked(custom, validated.value.params)).toBe(true);
  // Parameters left out default to a fresh object each parse, and that one is the object checked too.
  const bare = schema.parse({ manifest: 'dle-bert-pretrain', inputs: { dataset: 'ds_aaaaaaaaaaaaaaaaaaaa' } });
  expect(isLastChecked(manifests.get('dle-bert-pretrain')!, bare.params)).toBe(true);
});

test("resolveSpec's answer from the slot is what a fresh validation gives", () => {
  const parsed = schema.parse(spec);
  expect(isLastChecked(custom, parsed.params)).toBe(true);
  const fresh = validateParams(custom, parsed.params);
  expect(fresh.ok).toBe(true);
  expect(resolveSpec(manifests, parsed).params).toEqual(fresh.ok && fresh.params);
});

test('any other object is validated afresh, even one equal to the last', () => {
  const parsed = schema.parse(spec);
  expect(isLastChecked(custom, { ...parsed.params })).toBe(false);
  expect(isLastChecked(manifests.get('bert-pretrain')!, parsed.params)).toBe(false);
  // Same content as the object just checked but another object with a bad value: not taken for the checked one.
  const changed = { ...parsed, params: { ...parsed.params, command: 'not an argument list' } };
  expect(() => resolveSpec(manifests, changed)).toThrow('resolveSpec on an unchecked spec');
});
