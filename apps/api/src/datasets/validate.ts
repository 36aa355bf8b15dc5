// Checks a dataset folder against what berth_bert's readers accept (payloads/bert/berth_bert/data/*.py), so a
// malformed file is reported with its line before a job is queued for it.
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { checkClassify, type ValidateOptions } from './formats/classify.js';
import { checkCorpus } from './formats/corpus.js';
import { type DatasetIssue, Issues, quote } from './formats/issues.js';
import { Labels } from './formats/labels.js';
import { checkNer } from './formats/ner.js';
import { checkSquad } from './formats/squad.js';

export { type DatasetIssue, MAX_ERRORS } from './formats/issues.js';
export type { ValidateOptions } from './formats/classify.js';

export type DatasetFormat = 'squad' | 'classify' | 'ner' | 'corpus';

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
