// The line reader the line-oriented formats (corpus, NER, classify's TSV, CSV and JSON lines) share.
import { createReadStream } from 'node:fs';

const MAX_LINE_BYTES = 64 * 1024 * 1024;

export interface Line {
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
export async function* lines(file: string): AsyncGenerator<Line[]> {
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
