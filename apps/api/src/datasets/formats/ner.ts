// CoNLL-style NER files (a token and its tag a line, blank lines between sentences), as berth_bert/data/ner.py
// reads them.
import { type Issues, quote } from './issues.js';
import type { Labels } from './labels.js';
import { lines } from './lines.js';
import { pySplit, pyStrip } from './python-text.js';

export async function checkNer(abs: string, rel: string, issues: Issues, labels: Labels): Promise<number> {
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
