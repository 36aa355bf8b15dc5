// The validator against small good and broken datasets of each format, the bundled demo data, and the trainer's
// own readers (berth_bert.data, run by Debian's python3-torch) on the same files.
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { type DatasetFormat, type DatasetReport, type ValidateOptions, validateDataset } from './validate.js';

const repo = path.resolve(__dirname, '../../../..');
const demo = path.join(repo, 'payloads', 'bert', 'demo', 'data');
const PYTHON = '/usr/bin/python3'; // the one with python3-torch, as `npm run test:python` uses
const hasTrainer = spawnSync(PYTHON, ['-c', 'import torch']).status === 0;
const withTrainer = hasTrainer ? describe : describe.skip; // skipped only where Debian's python3-torch is missing

let top: string;
beforeAll(async () => {
  top = await mkdtemp(path.join(os.tmpdir(), 'berth-validate-'));
});
afterAll(async () => {
  await rm(top, { recursive: true, force: true });
});

async function dataset(files: Record<string, string | Buffer>): Promise<string> {
  const root = await mkdtemp(path.join(top, 'd-'));
  for (const [rel, content] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(root, rel)), { recursive: true });
    await writeFile(path.join(root, rel), content);
  }
  return root;
}

const BAD_UTF8 = Buffer.from([0x66, 0xe9, 0x74, 0xe9]); // "fété" in Latin-1
const bytes = (...parts: (string | Buffer)[]): Buffer =>
  Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : p)));

// --- fixtures -------------------------------------------------------------------------------------------------

const harbour = 'The harbour of Kavel lies on Morta Isle.';
const ship = '\u{1F6A2} The ship Kavel sails to Morta.'; // an emoji: two UTF-16 units, one Python code point
const shipKavel = Array.from(ship.slice(0, ship.indexOf('Kavel'))).length;

function squad(overrides: { start?: number; shipStart?: number; second?: number } = {}): string {
  const doc = {
    version: '1.1',
    data: [
      {
        title: 'harbours',
        paragraphs: [
          {
            context: harbour,
            qas: [
              {
                id: 'q1',
                question: 'Where is Kavel?',
                answers: [
                  { text: 'Morta Isle', answer_start: overrides.start ?? harbour.indexOf('Morta Isle') },
                  { text: 'Morta', answer_start: overrides.second ?? harbour.indexOf('Morta') },
                ],
              },
              { id: 'q2', question: 'Is there a lighthouse?', answers: [], is_impossible: true },
            ],
          },
          {
            context: ship,
            qas: [
              {
                id: 'q3',
                question: 'Which ship?',
                answers: [{ text: 'Kavel', answer_start: overrides.shipStart ?? shipKavel }],
              },
            ],
          },
        ],
      },
    ],
  };
  return JSON.stringify(doc, null, 1);
}

interface Expected {
  file: string;
  line?: number;
  message: RegExp;
}

interface Case {
  name: string;
  format: DatasetFormat;
  files: Record<string, string | Buffer>;
  options?: ValidateOptions;
  ok: boolean;
  examples?: number;
  /** The files read, when not all of `files`. */
  read?: string[];
  /** All the errors, in order. */
  errors?: Expected[];
  /**
   * What the trainer's reader does with the (single) file: the same ('agrees'), accept what we refuse on
   * purpose ('accepts'), or not compared ('skip': several files, or options the reader call does not pass).
   */
  trainer?: 'agrees' | 'accepts' | 'skip';
  /** The trainer numbers CSV records, not lines; where they differ, the line is not compared. */
  trainerLine?: false;
}

const cases: Case[] = [
  // SQuAD
  {
    name: 'good, with an emoji before an answer and a v2 unanswerable',
    format: 'squad',
    files: { 'train.json': squad() },
    ok: true,
    examples: 3,
  },
  {
    name: 'a missing comma, reported at its line as Python does',
    format: 'squad',
    files: { 'train.json': '{\n "data": [\n  {"paragraphs": []}\n  {"paragraphs": []}\n ]\n}\n' },
    ok: false,
    errors: [{ file: 'train.json', line: 4, message: /^not valid JSON: expecting ',' or '\]' \(column 3\)$/ }],
  },
  {
    name: 'a trailing comma',
    format: 'squad',
    files: { 'dev.json': '{\n "data": [1,]}' },
    ok: false,
    errors: [
      { file: 'dev.json', line: 2, message: /^not valid JSON: unexpected "\]", expecting a value \(column 13\)$/ },
    ],
  },
  {
    name: 'an unterminated string, at its start',
    format: 'squad',
    files: { 'dev.json': '{\n "a": "abc' },
    ok: false,
    errors: [{ file: 'dev.json', line: 2, message: /^not valid JSON: unterminated string \(column 7\)$/ }],
  },
  {
    name: 'a line break inside a string',
    format: 'squad',
    files: { 'dev.json': '{"data": [\n{"paragraphs": [{"context": "two\nlines", "qas": []}]}]}' },
    ok: false,
    errors: [
      {
        file: 'dev.json',
        line: 2,
        message: /a control character \(such as a line break\) inside a string \(column 33\)/,
      },
    ],
  },
  {
    name: 'a byte-order mark, which Python refuses',
    format: 'squad',
    files: { 'train.json': '\ufeff' + squad() },
    ok: false,
    errors: [
      {
        file: 'train.json',
        line: 1,
        message: /^not valid JSON: a UTF-8 byte-order mark before the JSON \(column 1\)$/,
      },
    ],
  },
  {
    name: 'Latin-1 text on line 3',
    format: 'squad',
    files: { 'train.json': bytes('{"data": [\n{"paragraphs": []},\n{"title": "', BAD_UTF8, '"}]}') },
    ok: false,
    errors: [{ file: 'train.json', line: 3, message: /^not UTF-8 text$/ }],
  },
  {
    name: 'an answer_start off by one',
    format: 'squad',
    files: { 'train.json': squad({ start: harbour.indexOf('Morta Isle') + 1 }) },
    ok: false,
    errors: [
      {
        file: 'train.json',
        message:
          /^data\[0\]\.paragraphs\[0\]\.qas\[0\] \(id "q1"\): answer "Morta Isle" is not at context offset 30 \(it is at offset 29\)$/,
      },
    ],
  },
  {
    name: 'an offset counted in UTF-16 units past an emoji',
    format: 'squad',
    files: { 'train.json': squad({ shipStart: ship.indexOf('Kavel') }) },
    ok: false,
    errors: [
      {
        file: 'train.json',
        message: /\(id "q3"\): answer "Kavel" is not at context offset 12 \(it is at offset 11\)$/,
      },
    ],
  },
  {
    name: 'a later answer off (the trainer checks only the first; we check all)',
    format: 'squad',
    files: { 'train.json': squad({ second: 3 }) },
    ok: false,
    errors: [
      { file: 'train.json', message: /\(id "q1"\): answer "Morta" is not at context offset 3 \(it is at offset 29\)$/ },
    ],
    trainer: 'accepts',
  },
  {
    name: 'not SQuAD at the top',
    format: 'squad',
    files: { 'train.json': '[{"data": []}]' },
    ok: false,
    errors: [{ file: 'train.json', message: /^not SQuAD format: expected \{"data": \[\.\.\.\]\} at the top$/ }],
  },
  {
    name: 'a paragraph without a context',
    format: 'squad',
    files: { 'train.json': '{"data": [{"paragraphs": [{"qas": []}]}]}' },
    ok: false,
    errors: [{ file: 'train.json', message: /^data\[0\]\.paragraphs\[0\]: "context" is missing or not a string$/ }],
  },
  {
    name: 'no questions at all',
    format: 'squad',
    files: { 'train.json': '{"data": [{"paragraphs": []}]}' },
    ok: false,
    errors: [{ file: 'train.json', message: /^no questions found$/ }],
  },
  {
    name: 'no JSON files',
    format: 'squad',
    files: { 'train.txt': 'text' },
    read: [],
    ok: false,
    errors: [{ file: '.', message: /^no \.json files found$/ }],
    trainer: 'skip',
  },

  // classify
  {
    name: 'good TSV (quotes are plain characters)',
    format: 'classify',
    files: { 'train.tsv': 'sentence\tlabel\nhe said "hi\t1\nit rained\t0\r\nno "quote" here\t1\n' },
    ok: true,
    examples: 3,
  },
  {
    name: 'good CSV with quoted commas, doubled quotes, a quoted line break and a blank line',
    format: 'classify',
    files: {
      'train.csv':
        'sentence1,sentence2,label\n"a, b","she said ""no""",entailment\n\n"two\nlines",plain,neutral\nx,y,contradiction\n',
    },
    ok: true,
    examples: 3,
  },
  {
    name: 'good JSON lines with a blank line, and .json read as JSON lines',
    format: 'classify',
    files: {
      'train.jsonl':
        '{"premise": "p", "hypothesis": "h", "gold_label": "entailment"}\n\n{"premise": "q", "hypothesis": "i", "gold_label": 1}\n',
      'extra.json': '{"text": "t", "label": "entailment"}\n',
    },
    ok: true,
    examples: 3,
    trainer: 'skip',
  },
  {
    name: 'a .json file, which classify reads as JSON lines',
    format: 'classify',
    files: {
      'dev.json':
        '{"question": "q", "sentence": "s", "label": "entailment"}\n{"question": "r", "sentence": "t", "label": "not_entailment"}\n',
    },
    ok: true,
    examples: 2,
  },
  {
    name: 'a TSV row without its label',
    format: 'classify',
    files: { 'train.tsv': 'sentence\tlabel\ngood\t1\nno label here\nfine\t0\n' },
    ok: false,
    errors: [{ file: 'train.tsv', line: 3, message: /^row lacks "label"$/ }],
  },
  {
    name: 'a broken JSON line',
    format: 'classify',
    files: { 'train.jsonl': '{"text": "a", "label": 1}\n{"text": "b", "label": 0}\n{"text": "c" "label": 1}\n' },
    ok: false,
    errors: [{ file: 'train.jsonl', line: 3, message: /^not a JSON object: expecting ',' or '\}' \(column 14\)$/ }],
  },
  {
    name: 'JSON lines that are not objects',
    format: 'classify',
    files: { 'train.jsonl': '["a", 1]\n["b", 0]\n' },
    ok: false,
    errors: [{ file: 'train.jsonl', line: 1, message: /^expected one JSON object per line$/ }],
  },
  {
    name: 'columns of other names',
    format: 'classify',
    files: { 'train.csv': 'body,class\nhello,1\n' },
    ok: false,
    errors: [
      {
        file: 'train.csv',
        line: 2,
        message: /^cannot find the text\/label columns among \["body","class"\]; name them with --text-column/,
      },
    ],
  },
  {
    name: 'columns of other names, named by the options',
    format: 'classify',
    files: { 'train.csv': 'body,class\nhello,1\nbye,0\n' },
    options: { textColumn: 'body', labelColumn: 'class' },
    ok: true,
    examples: 2,
    trainer: 'skip',
  },
  {
    name: 'a byte-order mark hiding the first column',
    format: 'classify',
    files: { 'train.csv': '\ufeffsentence,label\nhello,1\n' },
    ok: false,
    errors: [
      {
        file: 'train.csv',
        line: 2,
        message: /among \["label","\\ufeffsentence"\] \(the file starts with a byte-order mark\)/,
      },
    ],
  },
  {
    name: 'an unclosed quote swallowing the file past Python csv field limit',
    format: 'classify',
    files: { 'train.csv': `sentence,label\nfine,1\n"unclosed,0\n${'word '.repeat(30_000)}\nmore,1\n` },
    ok: false,
    errors: [{ file: 'train.csv', line: 3, message: /^a field longer than 131072 characters, Python's csv limit/ }],
  },
  {
    name: 'a short CSV row after blank lines: reported at its physical line',
    format: 'classify',
    files: { 'train.csv': 'text,label\n\n\na,1\n\nb\n' },
    ok: false,
    errors: [{ file: 'train.csv', line: 6, message: /^row lacks "label"$/ }],
    trainerLine: false,
  },
  {
    name: 'labels of the dev file that the training file lacks',
    format: 'classify',
    files: { 'train.tsv': 'sentence\tlabel\na\tpos\nb\tneg\n', 'dev.tsv': 'sentence\tlabel\nc\tpos\nd\tmeh\ne\tmeh\n' },
    ok: false,
    examples: 5,
    errors: [{ file: 'dev.tsv', line: 3, message: /^label "meh" does not occur in the training file$/ }],
    trainer: 'skip',
  },

  // NER
  {
    name: 'good CoNLL-2003 style with -DOCSTART-, several columns and CRLF',
    format: 'ner',
    files: {
      'train.conll':
        '-DOCSTART- -X- -X- O\r\n\r\nEU NNP B-NP B-ORG\r\nrejects VBZ B-VP O\r\n\r\nPeter NNP B-NP B-PER\r\nBlackburn NNP I-NP I-PER\r\n\r\n\r\nBRUSSELS NNP B-NP B-LOC\r\n',
    },
    ok: true,
    examples: 3,
  },
  {
    name: 'a token without a tag on line 5',
    format: 'ner',
    files: { 'train.txt': 'EU B-ORG\nrejects O\n\nPeter B-PER\nParis\n' },
    ok: false,
    errors: [{ file: 'train.txt', line: 5, message: /^expected 'token \.\.\. tag', found "Paris"$/ }],
  },
  {
    name: 'Latin-1 on line 3',
    format: 'ner',
    files: { 'train.conll': bytes('EU B-ORG\n\n', BAD_UTF8, ' B-LOC\n') },
    ok: false,
    errors: [{ file: 'train.conll', line: 3, message: /^not UTF-8 text$/ }],
  },
  {
    name: 'only blank lines and -DOCSTART-',
    format: 'ner',
    files: { 'train.conll': '-DOCSTART- O\n\n \n' },
    ok: false,
    errors: [{ file: 'train.conll', message: /^no sentences found$/ }],
  },
  {
    name: 'a dev tag the training file lacks',
    format: 'ner',
    files: { 'train.conll': 'EU B-ORG\nrejects O\n', 'dev.conll': 'Peter B-ORG\n\nGerman B-MISC\ncall O\n' },
    ok: false,
    examples: 3,
    errors: [{ file: 'dev.conll', line: 3, message: /^tag "B-MISC" does not occur in the training file$/ }],
    trainer: 'skip',
  },

  // corpus
  {
    name: 'documents split by blank, whitespace-only and CR-ended lines',
    format: 'corpus',
    files: { 'corpus.txt': 'one.\ntwo.\n\nthree.\r\n\u3000\r\nfour.\rfive.\r\r   \nsix.' },
    ok: true,
    examples: 4,
  },
  {
    name: 'Latin-1 on line 4 of a CRLF file',
    format: 'corpus',
    files: { 'wiki.txt': bytes('one\r\n\r\ntwo\r\n', BAD_UTF8, '\r\nthree\r\n') },
    ok: false,
    errors: [{ file: 'wiki.txt', line: 4, message: /^not UTF-8 text$/ }],
  },
  {
    name: 'no text',
    format: 'corpus',
    files: { 'corpus.txt': '\n \n\t\n' },
    ok: false,
    errors: [{ file: 'corpus.txt', message: /^no text found$/ }],
  },
];

describe('validateDataset', () => {
  it.each(cases.map((c) => [`${c.format}: ${c.name}`, c] as const))('%s', async (_, c) => {
    const root = await dataset(c.files);
    const report = await validateDataset(root, c.format, c.options);
    expect(report.format).toBe(c.format);
    expect(report.ok).toBe(c.ok);
    expect(report.files).toEqual(c.read ?? Object.keys(c.files).sort());
    if (c.examples !== undefined) expect(report.examples).toBe(c.examples);
    expect(report.errors).toEqual(
      (c.errors ?? []).map((e) => ({
        file: e.file,
        line: e.line,
        message: expect.stringMatching(e.message),
      })),
    );
  });

  it('passes the bundled demo data: SQuAD train + dev, and the pretraining corpus', async () => {
    const squadReport = await validateDataset(demo, 'squad');
    expect(squadReport).toMatchObject({ ok: true, files: ['dev.json', 'train.json'], errors: [] });
    const questions = ['train.json', 'dev.json']
      .map(
        (f) => JSON.parse(readFileSync(path.join(demo, f), 'utf8')) as { data: { paragraphs: { qas: unknown[] }[] }[] },
      )
      .flatMap((d) => d.data.flatMap((a) => a.paragraphs.map((p) => p.qas.length)))
      .reduce((a, b) => a + b, 0);
    expect(squadReport.examples).toBe(questions);
    // make_demo.py writes 900 training contexts and 600 more paragraphs, one document each.
    expect(await validateDataset(demo, 'corpus')).toEqual({
      format: 'corpus',
      ok: true,
      examples: 1500,
      files: ['corpus.txt'],
      errors: [],
    });
  });

  it('finds files in subfolders and skips hidden files, __MACOSX and READMEs', async () => {
    const root = await dataset({
      'ner/train.conll': 'EU B-ORG\n',
      'ner/README.txt': 'not data\n',
      '.hidden/x.conll': 'junk\n',
      '__MACOSX/ner/._train.conll': 'junk\n',
      'notes.md': 'junk\n',
    });
    expect(await validateDataset(root, 'ner')).toEqual({
      format: 'ner',
      ok: true,
      examples: 1,
      files: ['ner/train.conll'],
      errors: [],
    });
  });

  it('reports the first 20 errors and stays not ok', async () => {
    const lines = ['EU B-ORG', ...Array.from({ length: 30 }, (_, i) => `lonely${i}`)];
    const report = await validateDataset(await dataset({ 'train.conll': lines.join('\n') }), 'ner');
    expect(report.ok).toBe(false);
    expect(report.errors).toHaveLength(20);
    expect(report.errors.map((e) => e.line)).toEqual(Array.from({ length: 20 }, (_, i) => i + 2));
  });

  it('streams: a 1 GiB file that is one line is reported without being held in memory', async () => {
    const root = await dataset({});
    const file = path.join(root, 'corpus.txt');
    const fh = await open(file, 'w');
    await fh.write('first document\n\nsecond\n');
    await fh.truncate(1024 ** 3 + 23); // sparse: a gigabyte of NUL bytes, no line end
    await fh.close();
    const before = process.memoryUsage().rss;
    const report = await validateDataset(root, 'corpus');
    expect(process.memoryUsage().rss - before).toBeLessThan(256 * 1024 * 1024);
    expect(report).toEqual({
      format: 'corpus',
      ok: false,
      examples: 2,
      files: ['corpus.txt'],
      errors: [{ file: 'corpus.txt', line: 4, message: 'a line longer than 67108864 bytes' }],
    });
  });

  it('property: line numbers and documents are right wherever the 1 MiB read chunks cut the lines', async () => {
    const line = fc.oneof(
      fc.constantFrom('', ' ', 'text', 'caf\u00e9 au lait', '\u3000').map((t) => Buffer.from(t)),
      fc.constant(BAD_UTF8),
    );
    const ending = fc.constantFrom('\n', '\r\n', '\r');
    const body = fc.array(fc.tuple(line, ending), { minLength: 1, maxLength: 40 });
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 200 }), body, async (shift, parts) => {
        // The filler puts the interesting lines across the first chunk boundary.
        const filler = 'x'.repeat(1024 * 1024 - 100 - shift) + '\n';
        const buf = bytes(filler, ...parts.flatMap(([l, e]) => [l, e]));
        // The reference: split the whole file at once.
        const all = buf.toString('latin1').split(/\r\n|\r|\n/);
        if (all[all.length - 1] === '') all.pop();
        const decoder = new TextDecoder('utf-8', { fatal: true });
        const bad: number[] = [];
        let documents = 0;
        let inDocument = false;
        all.forEach((l, i) => {
          let text: string;
          try {
            text = decoder.decode(Buffer.from(l, 'latin1'));
          } catch {
            bad.push(i + 1);
            return;
          }
          if (text.trim() === '') inDocument = false;
          else if (!inDocument) {
            documents++;
            inDocument = true;
          }
        });
        const root = await dataset({ 'corpus.txt': buf });
        const report = await validateDataset(root, 'corpus');
        expect(report.errors.map((e) => e.line)).toEqual(bad.slice(0, 20));
        expect(report.examples).toBe(documents);
        await rm(root, { recursive: true });
      }),
      { numRuns: 40 },
    );
  });
});

// The trainer's readers, on the same single files; one python3 process for all of them.
const TRAINER = `
import json, sys
sys.path.insert(0, sys.argv[1])
from berth_bert.data import classify, mlm, ner, squad
from berth_bert.errors import DataError

class Tokenizer:  # mlm only keeps lines whose encoding is non-empty; every non-blank line encodes to something
    def encode(self, s):
        return [1]

out = []
for job in json.load(sys.stdin):
    fmt, path = job["format"], job["path"]
    try:
        if fmt == "squad":
            n = len(squad.read_examples(path))
        elif fmt == "classify":
            n = len(classify.read_rows(path, None, None, None))
        elif fmt == "ner":
            n = len(ner.read_sentences(path))
        else:
            n = len(mlm.read_documents(path, Tokenizer()))
        out.append({"ok": True, "examples": n})
    except DataError as e:
        out.append({"ok": False, "line": e.line, "error": str(e)})
    except Exception as e:  # not a DataError: the trainer would exit 1 with a traceback
        out.append({"ok": False, "line": None, "error": type(e).__name__ + ": " + str(e)})
print(json.dumps(out))
`;

interface TrainerResult {
  ok: boolean;
  examples?: number;
  line?: number | null;
  error?: string;
}

withTrainer('the trainer reads the same files the same way', () => {
  const compared = cases.filter((c) => c.trainer !== 'skip');
  const results = new Map<Case, { ours: DatasetReport; trainer: TrainerResult }>();

  beforeAll(async () => {
    const jobs: { format: DatasetFormat; path: string }[] = [];
    const reports: DatasetReport[] = [];
    for (const c of compared) {
      const [rel] = Object.keys(c.files);
      const root = await dataset(c.files);
      jobs.push({ format: c.format, path: path.join(root, rel!) });
      reports.push(await validateDataset(root, c.format, c.options));
    }
    const out = execFileSync(PYTHON, ['-c', TRAINER, path.join(repo, 'payloads', 'bert')], {
      input: JSON.stringify(jobs),
      maxBuffer: 16 * 1024 * 1024,
    });
    const trainer = JSON.parse(out.toString()) as TrainerResult[];
    compared.forEach((c, i) => results.set(c, { ours: reports[i]!, trainer: trainer[i]! }));
  }, 60_000);

  it.each(compared.map((c) => [`${c.format}: ${c.name}`, c] as const))('%s', (_, c) => {
    const { ours, trainer } = results.get(c)!;
    if (c.trainer === 'accepts') {
      expect({ trainer: trainer.ok, ours: ours.ok }).toEqual({ trainer: true, ours: false });
      return;
    }
    expect(ours.ok).toBe(trainer.ok);
    if (trainer.ok) expect(ours.examples).toBe(trainer.examples);
    const line = ours.errors[0]?.line;
    if (!trainer.ok && c.trainerLine !== false && typeof trainer.line === 'number' && line !== undefined) {
      expect(line).toBe(trainer.line);
    }
  });

  it('on the demo data as well', async () => {
    const out = execFileSync(PYTHON, ['-c', TRAINER, path.join(repo, 'payloads', 'bert')], {
      input: JSON.stringify([
        { format: 'squad', path: path.join(demo, 'dev.json') },
        { format: 'squad', path: path.join(demo, 'train.json') },
        { format: 'corpus', path: path.join(demo, 'corpus.txt') },
      ]),
    });
    const [dev, train, corpus] = JSON.parse(out.toString()) as TrainerResult[];
    expect((await validateDataset(demo, 'squad')).examples).toBe(dev!.examples! + train!.examples!);
    expect((await validateDataset(demo, 'corpus')).examples).toBe(corpus!.examples);
  });
});
