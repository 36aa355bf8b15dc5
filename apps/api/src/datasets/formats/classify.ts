// Classification rows (TSV, CSV or JSON lines), as berth_bert/data/classify.py reads them.
import path from 'node:path';
import { type Issues, quote } from './issues.js';
import { has, isObject, jsonSyntaxError, lineAndColumn } from './json.js';
import type { Labels } from './labels.js';
import { lines } from './lines.js';
import { isBlank } from './python-text.js';

/** What the classify task's --text-column, --text-pair-column and --label-column flags would say. */
export interface ValidateOptions {
  textColumn?: string;
  textPairColumn?: string;
  labelColumn?: string;
}

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

interface Row {
  line: number;
  record: unknown;
}

export async function checkClassify(
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
