// JSON as the trainer's json module reads it, for SQuAD documents and classify's JSON lines: where a text it refuses
// goes wrong, and the checks on the objects it gives.
import { quote } from './issues.js';

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function has(record: Record<string, unknown>, key: string): boolean {
  return Object.hasOwn(record, key);
}

export function lineAndColumn(text: string, offset: number): { line: number; column: number } {
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
export function jsonSyntaxError(text: string): { offset: number; message: string } | undefined {
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
