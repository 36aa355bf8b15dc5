// Pretraining text (documents separated by blank lines), as berth_bert/data/mlm.py reads it.
import type { Issues } from './issues.js';
import { lines } from './lines.js';
import { isBlank } from './python-text.js';

export async function checkCorpus(abs: string, rel: string, issues: Issues): Promise<number> {
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
