import { LineSplitter, maxLineBytes, truncationMarker } from './line-splitter.js';

const split = (...chunks: (string | Buffer)[]) => {
  const s = new LineSplitter();
  return [...chunks.flatMap((c) => s.push(Buffer.isBuffer(c) ? c : Buffer.from(c))), ...s.end()];
};

test('lines split across chunk boundaries are joined; a last line without newline still counts', () => {
  expect(split('ab', 'c\nde', 'f\n\ng')).toEqual(['abc', 'def', '', 'g']);
});

test('a multi-byte character cut between chunks survives; invalid bytes become U+FFFD', () => {
  const euro = Buffer.from('€\n');
  expect(split(euro.subarray(0, 1), euro.subarray(1))).toEqual(['€']);
  expect(split(Buffer.from([0x61, 0xff, 0x62, 0x0a]))).toEqual(['a\uFFFDb']);
});

test('carriage-return progress bars collapse to their last state; CRLF is one line end', () => {
  expect(split('10%\r50%\r100%\n', 'dos\r\n')).toEqual(['100%', 'dos']);
});

test('a line over 64 KiB is cut with a marker and the rest of it dropped', () => {
  const out = split('x'.repeat(maxLineBytes + 5000), 'y'.repeat(10), '\nnext\n');
  expect(out).toHaveLength(2);
  expect(out[0]).toBe('x'.repeat(maxLineBytes) + truncationMarker);
  expect(out[1]).toBe('next');
});
