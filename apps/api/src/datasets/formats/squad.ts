// SQuAD JSON, as berth_bert/data/squad.py reads it: one document per file, parsed whole.
import { readFile, stat } from 'node:fs/promises';
import { type Issues, quote } from './issues.js';
import { has, isObject, jsonSyntaxError, lineAndColumn } from './json.js';

/** SQuAD files are parsed whole, as the trainer does; past this size a string cannot hold them safely. */
const MAX_JSON_BYTES = 256 * 1024 * 1024;

export async function checkSquad(abs: string, rel: string, issues: Issues): Promise<number> {
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
