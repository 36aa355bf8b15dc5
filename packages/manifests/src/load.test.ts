// A broken recipe fails loading with one error naming its file, the JSON path and the reason.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadManifests, ManifestError } from './load.js';
import { recipesDir } from './testing/fixtures.js';

const good = readFileSync(join(recipesDir, 'tensorrt-perf.yaml'), 'utf8');

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'berth-manifests-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function failure(files: Record<string, string>): ManifestError {
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  try {
    loadManifests(dir);
  } catch (err) {
    expect(err).toBeInstanceOf(ManifestError);
    return err as ManifestError;
  }
  throw new Error('loadManifests accepted a broken recipe');
}

function expectError(err: ManifestError, file: string, path: string, reason: RegExp): void {
  expect(err.file).toBe(join(dir, file));
  expect(err.path).toBe(path);
  expect(err.reason).toMatch(reason);
  expect(err.message).toBe(`${join(dir, file)}: ${path}: ${err.reason}`);
}

describe('loadManifests', () => {
  it('loads a valid recipe and ignores other files', () => {
    writeFileSync(join(dir, 'perf.yaml'), good);
    writeFileSync(join(dir, 'notes.md'), '# not a recipe');
    expect([...loadManifests(dir).keys()]).toEqual(['tensorrt-perf']);
  });

  it('names the line of invalid YAML', () => {
    const err = failure({ 'bad.yaml': 'id: x\n  title: [unclosed\n' });
    expectError(err, 'bad.yaml', '$', /invalid YAML at line \d/);
  });

  it('rejects a duplicate key', () => {
    expectError(failure({ 'dup.yaml': `${good}\nid: again\n` }), 'dup.yaml', '$', /unique/);
  });

  it('names a missing field', () => {
    const err = failure({ 'a.yaml': good.replace(/^title:.*$/m, '') });
    expectError(err, 'a.yaml', '$.title', /expected string/i);
  });

  it('names a bad parameter type', () => {
    const err = failure({ 'a.yaml': good.replace('batch:\n    type: int', 'batch:\n    type: integer') });
    expectError(err, 'a.yaml', '$.parameters.batch.type', /int|number|string/);
  });

  it('names an unknown field', () => {
    const err = failure({ 'a.yaml': good.replace('batch:\n    type: int', 'batch:\n    type: int\n    maximum: 3') });
    expectError(err, 'a.yaml', '$.parameters.batch', /maximum/);
  });

  it('names a command token that refers to an unknown parameter', () => {
    const err = failure({ 'a.yaml': good.replace('--duration={{duration_s}}', '--duration={{duration_seconds}}') });
    expectError(err, 'a.yaml', '$.command[4]', /unknown parameter "duration_seconds"/);
  });

  it('names a writable-root opt-out without a reason', () => {
    const err = failure({ 'a.yaml': `${good}\ncontainer: { writableRootfs: {} }\n` });
    expectError(err, 'a.yaml', '$.container.writableRootfs.reason', /expected string/i);
  });

  it('names a CPU limit that is not a positive number', () => {
    const err = failure({ 'a.yaml': good.replace(/^resources:\n/m, 'resources:\n  cpus: 0\n') });
    expectError(err, 'a.yaml', '$.resources.cpus', /greater than 0|>0/i);
  });

  it('names a default outside the range', () => {
    const err = failure({ 'a.yaml': good.replace('default: 32', 'default: 5000') });
    expectError(err, 'a.yaml', '$.parameters.batch.default', /default 5000 is outside \[1, 4096\]/);
  });

  it('names a regex metric rule without the named group', () => {
    const err = failure({ 'a.yaml': good.replace('(?<qps>', '(?<q>') });
    expectError(err, 'a.yaml', '$.metrics[0].metrics.sentences_per_second', /no named group "qps"/);
  });

  it('names a bad image reference', () => {
    const err = failure({ 'a.yaml': good.replace('nvcr.io/nvidia/tensorrt:24.10-py3', 'NVCR.io/Bad Image') });
    expectError(err, 'a.yaml', '$.image.gpu.ref', /image reference/);
  });

  it('names a read-write /init', () => {
    const err = failure({
      'a.yaml': good.replace(
        'target: /init, source: artifact, readOnly: true',
        'target: /init, source: artifact, readOnly: false',
      ),
    });
    expectError(err, 'a.yaml', '$.mounts[0].readOnly', /must be read-only/);
  });

  it('names an implied value its target parameter would refuse', () => {
    const text = good.replace(
      '  batch:\n    type: int\n',
      "  batch:\n    type: int\n    implies: { '8': { seq_length: 4096 } }\n",
    );
    const err = failure({ 'a.yaml': text });
    expectError(err, 'a.yaml', "$.parameters.batch.implies['8'].seq_length", /between 1 and 512/);
  });

  it('rejects a duplicate id, naming both files', () => {
    const err = failure({ 'a.yaml': good, 'b.yaml': good });
    expectError(err, 'b.yaml', '$.id', /duplicate id "tensorrt-perf" \(also in .*a\.yaml\)/);
  });
});
