// Checks a dataset folder against what berth_bert's readers accept (payloads/bert/berth_bert/data/*.py), so a
// malformed file is reported with its line before a job is queued for it.
import { createReadStream } from 'node:fs';
import { readFile, readdir, stat } from 'node:fs/promises';
import path from 'node:path';

export type DatasetFormat = 'squad' | 'classify' | 'ner' | 'corpus';

export interface DatasetIssue {
  /** Relative to the dataset root, `/`-separated; '.' for the folder itself. */
  file: string;
  line?: number;
  message: string;
}

export interface DatasetReport {
  format: DatasetFormat;
  ok: boolean;
  /** Questions (squad), rows (classify), sentences (ner) or documents (corpus), over all files read. */
  examples: number;
  /** The files read, relative to the root, sorted. */
  files: string[];
  /** The first `MAX_ERRORS`; `ok` is false when there were any at all. */
  errors: DatasetIssue[];
}

/** What the classify task's --text-column, --text-pair-column and --label-column flags would say. */
export interface ValidateOptions {
  textColumn?: string;
  textPairColumn?: string;
  labelColumn?: string;
}

export const MAX_ERRORS = 20;

/**
 * The trainer takes any file name (`--train-file`); these are the names each format comes under. classify reads
 * `.json` as JSON lines, exactly like `.jsonl`.
 */
const EXTENSIONS: Record<DatasetFormat, string[]> = {
  squad: ['.json'],
  classify: ['.tsv', '.csv', '.jsonl', '.json'],
  ner: ['.conll', '.conll03', '.txt', '.tsv', '.iob', '.iob2', '.bio', '.ner'],
  corpus: ['.txt'],
};
const NOT_DATA = /^(readme|license|licence|notice|changelog|citation)(\.|$)/i;

// The GLUE column names classify.py looks for, in its order.
const TEXT_COLUMNS: [string, string | undefined][] = [
  ['sentence1', 'sentence2'],
  ['question1', 'question2'],
  ['#1 String', '#2 String'],
  ['question', 'sentence'],
  ['text_a', 'text_b'],
  ['premise', 'hypothesis'],
  ['sentence', undefined],
  ['text', undefined],
];
const LABEL_COLUMNS = ['label', 'gold_label', 'Quality'];

/** Python's csv module refuses longer fields (csv.field_size_limit()), and the trainer does not catch that. */
const CSV_FIELD_LIMIT = 131_072;
/** SQuAD files are parsed whole, as the trainer does; past this size a string cannot hold them safely. */
const MAX_JSON_BYTES = 256 * 1024 * 1024;
const MAX_LINE_BYTES = 64 * 1024 * 1024;
const MAX_LABELS = 10_000;

// str.split() / str.strip() whitespace in Python, which differs from JavaScript's \s (\x1c-\x1f, \x85; not \ufeff).
const PY_SPACE = '\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const PY_SPLIT = new RegExp(`[${PY_SPACE}]+`);
const PY_STRIP = new RegExp(`^[${PY_SPACE}]+|[${PY_SPACE}]+$`, 'g');
const PY_NOT_SPACE = new RegExp(`[^${PY_SPACE}]`);

/**
 * Reads the files of `format` under `root` (hidden files, `__MACOSX` and README/LICENSE-like names skipped) the way
 * the trainer would and reports what it would refuse, with line numbers for line-oriented formats and for JSON
 * syntax errors. Line-oriented files are streamed; a SQuAD file is parsed whole, as the trainer does. Files whose
 * name starts with `train` are the training set: the labels (classify) and tags (ner) of the other files must occur
 * in it, as the trainer requires of its eval file. Training files are read, and their errors listed, first.
 */
export async function validateDataset(
  root: string,
  format: DatasetFormat,
  options: ValidateOptions = {},
): Promise<DatasetReport> {
  const extensions = EXTENSIONS[format];
  const files = await datasetFiles(root, extensions);
  const issues = new Issues();
  let examples = 0;
  if (files.length === 0) issues.add('.', `no ${extensions.join(', ')} files found`);
  // Labels and tags of the other files must occur in the training file (the trainer's "was not seen" errors),
  // so the training files are read first.
  const training = files.filter((f) => path.posix.basename(f).toLowerCase().startsWith('train'));
  const trainLabels = new Labels();
  for (const rel of [...training, ...files.filter((f) => !training.includes(f))]) {
    const abs = path.join(root, ...rel.split('/'));
    const labels = training.includes(rel) ? trainLabels : new Labels();
    try {
      switch (format) {
        case 'squad':
          examples += await checkSquad(abs, rel, issues);
          break;
        case 'classify':
          examples += await checkClassify(abs, rel, issues, options, labels);
          break;
        case 'ner':
          examples += await checkNer(abs, rel, issues, labels);
          break;
        case 'corpus':
          examples += await checkCorpus(abs, rel, issues);
          break;
      }
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      issues.add(rel, `cannot read: ${code ?? (err as Error).message}`);
      continue;
    }
    if (labels === trainLabels || trainLabels.first.size === 0 || trainLabels.overflow) continue;
    for (const [label, line] of labels.first) {
      if (!trainLabels.first.has(label)) {
        const what = format === 'ner' ? 'tag' : 'label';
        issues.add(rel, `${what} ${quote(label)} does not occur in the training file`, line);
      }
    }
  }
  return { format, ok: issues.count === 0, examples, files, errors: issues.list };
}

class Issues {
  readonly list: DatasetIssue[] = [];
  count = 0;

  add(file: string, message: string, line?: number): void {
    this.count++;
    if (this.list.length < MAX_ERRORS) this.list.push(line === undefined ? { file, message } : { file, line, message });
  }
}

/** The labels (or tags) of a file and the line each first occurs on. */
class Labels {
  readonly first = new Map<string, number>();
  /** Past MAX_LABELS distinct values it is no label column, and the cross-check is skipped. */
  overflow = false;

  note(label: string, line: number): void {
    if (this.overflow || this.first.has(label)) return;
    if (this.first.size >= MAX_LABELS) this.overflow = true;
    else this.first.set(label, line);
  }
}

async function datasetFiles(root: string, extensions: string[]): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string, rel: string): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true });
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      if (e.name.startsWith('.') || e.name === '__MACOSX') continue;
      const r = rel === '' ? e.name : `${rel}/${e.name}`;
      if (e.isDirectory()) await walk(path.join(dir, e.name), r);
      else if (e.isFile() && extensions.includes(path.extname(e.name).toLowerCase()) && !NOT_DATA.test(e.name)) {
        out.push(r);
      }
    }
  };
  await walk(root, '');
  return out;
}

interface Line {
  n: number;
  /** Undefined when the line could not be read as text; `problem` says why. */
  text: string | undefined;
  problem?: string;
}

/**
 * The lines of a file as Python's text mode gives them (`\n`, `\r\n` and `\r` all end a line), streamed in
 * batches, each line strict UTF-8 on its own so that a bad byte is reported at its line. A byte-order mark is
 * kept, as Python's 'utf-8' codec keeps it. A line past MAX_LINE_BYTES is reported, not held.
 */
async function* lines(file: string): AsyncGenerator<Line[]> {
  const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  let carry: Buffer[] = [];
  let carried = 0;
  let tooLong = false;
  let afterCR = false;
  let n = 0;
  const decode = (bytes: Buffer): Line => {
    n++;
    try {
      return { n, text: decoder.decode(bytes) };
    } catch {
      return { n, text: undefined, problem: 'not UTF-8 text' };
    }
  };
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
    let from = afterCR && chunk[0] === 0x0a ? 1 : 0;
    afterCR = false;
    const last = Math.max(chunk.lastIndexOf(0x0a), chunk.lastIndexOf(0x0d));
    if (last < from) {
      hold(chunk.subarray(from));
      continue;
    }
    const batch: Line[] = [];
    if (tooLong) {
      // The overlong line ends at the first line end here.
      const end = firstLineEnd(chunk, from);
      batch.push({ n: ++n, text: undefined, problem: `a line longer than ${MAX_LINE_BYTES} bytes` });
      tooLong = false;
      from = end + (chunk[end] === 0x0d && chunk[end + 1] === 0x0a ? 2 : 1);
    }
    if (from <= last) {
      // Complete lines from here to the last line end (a \r\n counts as one).
      const end = chunk[last] === 0x0a && last > from && chunk[last - 1] === 0x0d ? last - 1 : last;
      const segment = carried > 0 ? Buffer.concat([...carry, chunk.subarray(from, end)]) : chunk.subarray(from, end);
      carry = [];
      carried = 0;
      let text: string | undefined;
      try {
        text = decoder.decode(segment);
      } catch {
        text = undefined; // a bad line somewhere in here: decode them one by one to find it
      }
      if (text !== undefined) {
        for (const t of text.split(/\r\n|\r|\n/)) batch.push({ n: ++n, text: t });
      } else {
        for (let i = 0; i <= segment.length;) {
          const lineEnd = firstLineEnd(segment, i);
          batch.push(decode(segment.subarray(i, lineEnd)));
          i = lineEnd + (segment[lineEnd] === 0x0d && segment[lineEnd + 1] === 0x0a ? 2 : 1);
        }
      }
    }
    // A \r at the very end may be the first half of a \r\n.
    afterCR = chunk[last] === 0x0d && last === chunk.length - 1;
    hold(chunk.subarray(last + 1));
    yield batch;
  }
  if (tooLong) yield [{ n: n + 1, text: undefined, problem: `a line longer than ${MAX_LINE_BYTES} bytes` }];
  else if (carried > 0) yield [decode(Buffer.concat(carry))];

  function hold(b: Buffer): void {
    if (tooLong || b.length === 0) return;
    if (carried + b.length > MAX_LINE_BYTES) {
      tooLong = true;
      carry = [];
      carried = 0;
      return;
    }
    carry.push(b);
    carried += b.length;
  }
}

/** The index of the first \n or \r at or after `from`, or `buf.length`. */
function firstLineEnd(buf: Buffer, from: number): number {
  for (let i = from; i < buf.length; i++) {
    const c = buf[i];
    if (c === 0x0a || c === 0x0d) return i;
  }
  return buf.length;
}

function isBlank(s: string): boolean {
  return !PY_NOT_SPACE.test(s);
}

function pyStrip(s: string): string {
  return s.replace(PY_STRIP, '');
}

function pySplit(s: string): string[] {
  const t = pyStrip(s);
  return t === '' ? [] : t.split(PY_SPLIT);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function has(record: Record<string, unknown>, key: string): boolean {
  return Object.hasOwn(record, key);
}

/** JSON text, with invisible characters (a byte-order mark, zero-width and bidi marks) escaped too. */
function quote(s: unknown): string {
  return JSON.stringify(s).replace(
    /[\u007f-\u009f\u00ad\u200b-\u200f\u2028-\u202e\u2060-\u2064\ufeff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

// --- SQuAD ------------------------------------------------------------------------------------------------

async function checkSquad(abs: string, rel: string, issues: Issues): Promise<number> {
  const { size } = await stat(abs);
  if (size > MAX_JSON_BYTES) {
    issues.add(rel, `larger than ${MAX_JSON_BYTES / 1024 / 1024} MiB, too large to check as one JSON document`);
    return 0;
  }
  const buf = await readFile(abs);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(buf);
  } catch {
    issues.add(rel, 'not UTF-8 text', firstBadUtf8Line(buf));
    return 0;
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    const found = jsonSyntaxError(text);
    if (!found) {
      issues.add(rel, `not valid JSON: ${(err as Error).message}`);
      return 0;
    }
    const { line, column } = lineAndColumn(text, found.offset);
    issues.add(rel, `not valid JSON: ${found.message} (column ${column})`, line);
    return 0;
  }
  return checkSquadDocument(doc, rel, issues);
}

function checkSquadDocument(doc: unknown, rel: string, issues: Issues): number {
  if (!isObject(doc) || !Array.isArray(doc.data)) {
    issues.add(rel, 'not SQuAD format: expected {"data": [...]} at the top');
    return 0;
  }
  const errorsBefore = issues.count;
  const bad = (message: string): void => issues.add(rel, message);
  let questions = 0;
  doc.data.forEach((article: unknown, a) => {
    const at = `data[${a}]`;
    if (!isObject(article) || !Array.isArray(article.paragraphs)) {
      bad(`${at}: expected an object with a "paragraphs" array`);
      return;
    }
    article.paragraphs.forEach((para: unknown, p) => {
      const pat = `${at}.paragraphs[${p}]`;
      if (!isObject(para)) return bad(`${pat}: expected an object with "context" and "qas"`);
      const context = para.context;
      if (typeof context !== 'string') return bad(`${pat}: "context" is missing or not a string`);
      if (!Array.isArray(para.qas)) return bad(`${pat}: "qas" is missing or not an array`);
      // Python indexes strings by code point; JavaScript by UTF-16 unit. They differ only past U+FFFF.
      const points = /[\ud800-\udfff]/.test(context) ? Array.from(context) : undefined;
      para.qas.forEach((qa: unknown, q) => {
        const qat = `${pat}.qas[${q}]`;
        questions++;
        if (!isObject(qa)) return bad(`${qat}: expected an object with "id", "question" and "answers"`);
        const where = typeof qa.id === 'string' || typeof qa.id === 'number' ? `${qat} (id ${quote(qa.id)})` : qat;
        if (!has(qa, 'id') || qa.id === null) bad(`${qat}: "id" is missing`);
        if (typeof qa.question !== 'string') bad(`${where}: "question" is missing or not a string`);
        if (pyTruthy(qa.is_impossible)) return; // SQuAD 2.0: no answer to find
        if (!has(qa, 'answers')) return;
        if (!Array.isArray(qa.answers)) return bad(`${where}: "answers" is not an array`);
        qa.answers.forEach((answer: unknown, k) => {
          if (!isObject(answer) || typeof answer.text !== 'string') {
            return bad(`${where}: answers[${k}] has no "text" string`);
          }
          // The trainer needs the first answer's offset (its training target); later ones are checked if given.
          if (!has(answer, 'answer_start') && k > 0) return;
          const start = answer.answer_start;
          if (typeof start !== 'number' || !Number.isInteger(start) || start < 0) {
            return bad(`${where}: answers[${k}].answer_start is missing or not a non-negative integer`);
          }
          const text = answer.text;
          const found = points
            ? points.slice(start, start + Array.from(text).length).join('')
            : context.slice(start, start + text.length);
          if (found !== text) {
            const index = context.indexOf(text);
            const hint =
              index === -1
                ? 'it is not in the context'
                : `it is at offset ${Array.from(context.slice(0, index)).length}`;
            bad(`${where}: answer ${quote(text)} is not at context offset ${start} (${hint})`);
          }
        });
      });
    });
  });
  if (questions === 0 && issues.count === errorsBefore) issues.add(rel, 'no questions found');
  return questions;
}

function pyTruthy(v: unknown): boolean {
  if (Array.isArray(v)) return v.length > 0;
  if (isObject(v)) return Object.keys(v).length > 0;
  return Boolean(v);
}

function firstBadUtf8Line(buf: Buffer): number {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let line = 1;
  for (let start = 0; start < buf.length; line++) {
    const nl = buf.indexOf(0x0a, start);
    const end = nl === -1 ? buf.length : nl;
    try {
      decoder.decode(buf.subarray(start, end));
    } catch {
      return line;
    }
    start = end + 1;
  }
  return line;
}

function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = text.indexOf('\n'); i !== -1 && i < offset; i = text.indexOf('\n', i + 1)) {
    line++;
    lineStart = i + 1;
  }
  return { line, column: Array.from(text.slice(lineStart, offset)).length + 1 };
}

/**
 * Where and why `text` is not JSON. Only called after JSON.parse refused it: V8's messages carry no position for
 * some errors. Undefined if it finds nothing wrong.
 */
function jsonSyntaxError(text: string): { offset: number; message: string } | undefined {
  let i = 0;
  const closers: string[] = [];
  const fail = (message: string): { offset: number; message: string } => ({ offset: i, message });
  const skip = (): void => {
    for (let c = text.charCodeAt(i); c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d; c = text.charCodeAt(++i));
  };
  const string = (): string | undefined => {
    const opening = i++;
    for (;;) {
      if (i >= text.length) {
        i = opening; // where Python's json reports it, too
        return 'unterminated string';
      }
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        i++;
        return undefined;
      }
      if (c < 0x20) return 'a control character (such as a line break) inside a string';
      if (c !== 0x5c) {
        i++;
        continue;
      }
      const e = text[i + 1];
      if (e === 'u') {
        if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) return 'a bad \\u escape';
        i += 6;
      } else if (e !== undefined && '"\\/bfnrt'.includes(e)) {
        i += 2;
      } else {
        return 'a bad escape';
      }
    }
  };
  const member = (): { offset: number; message: string } | undefined => {
    skip();
    if (text[i] !== '"') return fail('expecting a double-quoted property name');
    const e = string();
    if (e) return fail(e);
    skip();
    if (text[i] !== ':') return fail("expecting ':' after a property name");
    i++;
    return undefined;
  };
  const number = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
  for (;;) {
    skip();
    if (i >= text.length) return fail('unexpected end of the file, expecting a value');
    const c = text[i]!;
    if (c === '{' || c === '[') {
      i++;
      skip();
      const closer = c === '{' ? '}' : ']';
      if (text[i] === closer) {
        i++;
      } else {
        closers.push(closer);
        if (closer === '}') {
          const e = member();
          if (e) return e;
        }
        continue;
      }
    } else if (c === '"') {
      const e = string();
      if (e) return fail(e);
    } else if (text.startsWith('true', i) || text.startsWith('null', i)) {
      i += 4;
    } else if (text.startsWith('false', i)) {
      i += 5;
    } else {
      number.lastIndex = i;
      const m = number.exec(text);
      if (!m) {
        return fail(
          i === 0 && c === '\ufeff'
            ? 'a UTF-8 byte-order mark before the JSON'
            : `unexpected ${quote(c)}, expecting a value`,
        );
      }
      i += m[0].length;
    }
    // After a value: close what it ends, or take a comma and go on to the next value.
    for (;;) {
      skip();
      const closer = closers[closers.length - 1];
      if (closer === undefined) return i < text.length ? fail('unexpected text after the JSON value') : undefined;
      if (i >= text.length) return fail(`unexpected end of the file, expecting ',' or '${closer}'`);
      if (text[i] === closer) {
        i++;
        closers.pop();
        continue;
      }
      if (text[i] !== ',') return fail(`expecting ',' or '${closer}'`);
      i++;
      if (closer === '}') {
        const e = member();
        if (e) return e;
      }
      break;
    }
  }
}

// --- classify ---------------------------------------------------------------------------------------------

interface Row {
  line: number;
  record: unknown;
}

async function checkClassify(
  abs: string,
  rel: string,
  issues: Issues,
  options: ValidateOptions,
  labels: Labels,
): Promise<number> {
  const ext = path.extname(abs).toLowerCase();
  const records = ext === '.jsonl' || ext === '.json' ? jsonLines(abs, rel, issues) : csvRecords(abs, rel, issues, ext);
  let rows = 0;
  let columns: { a: string; b: string | undefined; label: string } | null | undefined;
  for await (const { line, record } of records) {
    rows++;
    if (columns === undefined) {
      if (!isObject(record)) {
        issues.add(rel, 'expected one JSON object per line', line);
        columns = null;
        continue;
      }
      columns = findColumns(record, options);
      if (columns === null) {
        const keys = Object.keys(record).sort();
        const bom = keys.some((k) => k.startsWith('\ufeff')) ? ' (the file starts with a byte-order mark)' : '';
        issues.add(
          rel,
          `cannot find the text/label columns among ${quote(keys)}${bom}; name them with ` +
            '--text-column/--text-pair-column/--label-column',
          line,
        );
      }
    }
    if (columns === null) continue;
    const wanted = [columns.a, ...(columns.b === undefined ? [] : [columns.b]), columns.label];
    const missing = isObject(record) ? wanted.filter((c) => !has(record, c) || record[c] === null) : wanted;
    if (missing.length > 0) {
      issues.add(rel, `row lacks ${missing.map(quote).join(', ')}`, line);
      continue;
    }
    labels.note(pyStr((record as Record<string, unknown>)[columns.label]), line);
  }
  if (rows === 0) issues.add(rel, 'no rows found');
  return rows;
}

function findColumns(
  first: Record<string, unknown>,
  options: ValidateOptions,
): { a: string; b: string | undefined; label: string } | null {
  let a = options.textColumn;
  let b = options.textPairColumn;
  if (a === undefined) {
    const hit = TEXT_COLUMNS.find(([x, y]) => has(first, x) && (y === undefined || has(first, y)));
    a = hit?.[0];
    b = hit?.[1];
  }
  const label = options.labelColumn ?? LABEL_COLUMNS.find((c) => has(first, c));
  if (a === undefined || label === undefined || !has(first, a) || !has(first, label)) return null;
  return { a, b, label };
}

function pyStr(v: unknown): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  if (typeof v === 'number') return String(v);
  return JSON.stringify(v);
}

async function* jsonLines(abs: string, rel: string, issues: Issues): AsyncGenerator<Row> {
  for await (const batch of lines(abs)) {
    for (const l of batch) {
      if (l.text === undefined) {
        issues.add(rel, l.problem ?? 'unreadable', l.n);
        continue;
      }
      if (isBlank(l.text)) continue;
      let record: unknown;
      try {
        record = JSON.parse(l.text);
      } catch (err) {
        const found = jsonSyntaxError(l.text);
        const why = found
          ? `${found.message} (column ${lineAndColumn(l.text, found.offset).column})`
          : (err as Error).message;
        issues.add(rel, `not a JSON object: ${why}`, l.n);
        continue;
      }
      yield { line: l.n, record };
    }
  }
}

/**
 * csv.DictReader as classify.py opens it: a header row, then one record per row keyed by it (a short row's
 * missing columns are None); blank lines skipped. CSV quotes as Python's default dialect reads them (doubled
 * quotes, quoted line breaks, lenient about stray quotes); TSV with QUOTE_NONE, so quotes are plain characters.
 * `line` is the physical line a record starts on (the trainer counts records instead).
 */
async function* csvRecords(abs: string, rel: string, issues: Issues, ext: string): AsyncGenerator<Row> {
  const delimiter = ext === '.tsv' ? '\t' : ',';
  const quoting = ext === '.csv';
  let header: string[] | undefined;
  let fields: string[] = [];
  let field = '';
  let state: 'start' | 'field' | 'quoted' | 'quote-in-quoted' = 'start';
  let start = 0;
  const record = (line: number, row: string[]): Row | undefined => {
    if (header === undefined) {
      header = row;
      return undefined;
    }
    const rec: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
    header.forEach((name, i) => {
      rec[name] = i < row.length ? row[i] : null;
    });
    return { line, record: rec };
  };
  for await (const batch of lines(abs)) {
    for (const l of batch) {
      if (l.text === undefined) {
        issues.add(rel, l.problem ?? 'unreadable', l.n);
        state = 'start';
        fields = [];
        field = '';
        continue;
      }
      const s = l.text;
      if (state === 'quoted') {
        field += '\n';
      } else {
        fields = [];
        field = '';
        state = 'start';
        start = l.n;
        if (s === '') continue; // a blank line is an empty row, which DictReader skips
        if (!quoting || !s.includes('"')) {
          const row = s.split(delimiter);
          if (row.some((f) => f.length > CSV_FIELD_LIMIT)) return fieldTooLong(issues, rel, l.n);
          const r = record(start, row);
          if (r) yield r;
          continue;
        }
      }
      for (const c of s) {
        switch (state) {
          case 'start':
            if (c === '"') state = 'quoted';
            else if (c === delimiter) fields.push('');
            else {
              field = c;
              state = 'field';
            }
            break;
          case 'field':
            if (c === delimiter) {
              fields.push(field);
              field = '';
              state = 'start';
            } else field += c;
            break;
          case 'quoted':
            if (c === '"') state = 'quote-in-quoted';
            else field += c;
            break;
          case 'quote-in-quoted':
            if (c === '"') {
              field += c;
              state = 'quoted';
            } else if (c === delimiter) {
              fields.push(field);
              field = '';
              state = 'start';
            } else {
              field += c;
              state = 'field';
            }
            break;
        }
        if (field.length > CSV_FIELD_LIMIT) return fieldTooLong(issues, rel, start);
      }
      if (state === 'quoted') continue; // the quoted field goes on on the next line
      fields.push(field);
      state = 'start';
      const r = record(start, fields);
      if (r) yield r;
    }
  }
  if (state === 'quoted') {
    // Python's csv (strict=False) ends the field at the end of the file.
    fields.push(field);
    const r = record(start, fields);
    if (r) yield r;
  }
}

function fieldTooLong(issues: Issues, rel: string, line: number): void {
  issues.add(
    rel,
    `a field longer than ${CSV_FIELD_LIMIT} characters, Python's csv limit: the trainer stops reading here ` +
      '(an unclosed quote does this too)',
    line,
  );
}

// --- NER and corpus ---------------------------------------------------------------------------------------

async function checkNer(abs: string, rel: string, issues: Issues, labels: Labels): Promise<number> {
  let sentences = 0;
  let words = 0;
  for await (const batch of lines(abs)) {
    for (const l of batch) {
      if (l.text === undefined) {
        issues.add(rel, l.problem ?? 'unreadable', l.n);
        continue;
      }
      const parts = pySplit(l.text);
      if (parts.length === 0 || parts[0] === '-DOCSTART-') {
        if (words > 0) sentences++;
        words = 0;
        continue;
      }
      if (parts.length < 2) {
        issues.add(rel, `expected 'token ... tag', found ${quote(pyStrip(l.text))}`, l.n);
        continue;
      }
      words++;
      labels.note(parts[parts.length - 1]!, l.n);
    }
  }
  if (words > 0) sentences++;
  if (sentences === 0) issues.add(rel, 'no sentences found');
  return sentences;
}

async function checkCorpus(abs: string, rel: string, issues: Issues): Promise<number> {
  let documents = 0;
  let inDocument = false;
  for await (const batch of lines(abs)) {
    for (const l of batch) {
      if (l.text === undefined) {
        issues.add(rel, l.problem ?? 'unreadable', l.n);
        continue;
      }
      if (isBlank(l.text)) {
        inDocument = false;
      } else if (!inDocument) {
        documents++;
        inDocument = true;
      }
    }
  }
  if (documents === 0) issues.add(rel, 'no text found');
  return documents;
}
