// Lines stripped and split as the trainer's Python does it: NER tokens, blank lines in corpus text and JSON lines.

// str.split() / str.strip() whitespace in Python, which differs from JavaScript's \s (\x1c-\x1f, \x85; not \ufeff).
const PY_SPACE = '\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const PY_SPLIT = new RegExp(`[${PY_SPACE}]+`);
const PY_STRIP = new RegExp(`^[${PY_SPACE}]+|[${PY_SPACE}]+$`, 'g');
const PY_NOT_SPACE = new RegExp(`[^${PY_SPACE}]`);

export function isBlank(s: string): boolean {
  return !PY_NOT_SPACE.test(s);
}

export function pyStrip(s: string): string {
  return s.replace(PY_STRIP, '');
}

export function pySplit(s: string): string[] {
  const t = pyStrip(s);
  return t === '' ? [] : t.split(PY_SPLIT);
}
