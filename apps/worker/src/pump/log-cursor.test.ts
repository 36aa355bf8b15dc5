// Re-reading a container's log from the last timestamp passes on each message exactly once.
import { LogCursor } from './log-cursor.js';

const msg = (ts: string, text: string) => Buffer.from(`${ts} ${text}\n`);
const texts = (out: (Buffer | null)[]) => out.flatMap((b) => (b ? [b.toString()] : []));

test('a re-read since the last timestamp drops what was passed on, including messages sharing that timestamp', () => {
  const c = new LogCursor();
  const first = [
    msg('2026-11-26T12:00:00.1Z', 'a'),
    msg('2026-11-26T12:00:00.25Z', 'b'),
    msg('2026-11-26T12:00:00.25Z', 'c'),
  ].map((m) => c.accept(m));
  expect(texts(first)).toEqual(['a\n', 'b\n', 'c\n']);
  // Nanoseconds with trailing zeros trimmed compare by value, not as text.
  expect(c.rewind()).toBe('1795694400.250000000');
  const again = [
    msg('2026-11-26T12:00:00.25Z', 'b'),
    msg('2026-11-26T12:00:00.25Z', 'c'),
    msg('2026-11-26T12:00:00.25Z', 'd'),
    msg('2026-11-26T12:00:00.3Z', 'e'),
    msg('2026-11-26T12:00:01Z', 'f'),
  ].map((m) => c.accept(m));
  expect(texts(again)).toEqual(['d\n', 'e\n', 'f\n']);
  // A position taken after a re-read counts every message at its timestamp, those passed on before the re-read too.
  c.rewind();
  c.accept(msg('2026-11-26T12:00:01Z', 'f'));
  c.accept(msg('2026-11-26T12:00:01Z', 'g'));
  expect(c.position()).toEqual({ since: '1795694401.000000000', atLast: 2 });
});

test('nothing read yet: a re-read starts from the beginning; frames without a timestamp pass unchanged', () => {
  const c = new LogCursor();
  expect(c.rewind()).toBeUndefined();
  expect(c.accept(Buffer.from('no stamp here\n'))?.toString()).toBe('no stamp here\n');
  // The same second as a stamp just seen, but not a stamp: passed whole too.
  expect(c.accept(msg('2026-11-26T12:00:00.5Z', 'a'))?.toString()).toBe('a\n');
  expect(c.accept(Buffer.from('2026-11-26T12:00:00.5xZ b\n'))?.toString()).toBe('2026-11-26T12:00:00.5xZ b\n');
  expect(c.accept(Buffer.from('2026-11-26T12:00:00Zed c\n'))?.toString()).toBe('2026-11-26T12:00:00Zed c\n');
});

test('a cursor made at a stored position goes on after it, as the one that stored it would', () => {
  const c = new LogCursor();
  for (const m of [msg('2026-11-26T12:00:00.1Z', 'a'), msg('2026-11-26T12:00:00.2Z', 'b')]) c.accept(m);
  const at = c.position()!;
  expect(at).toEqual({ since: '1795694400.200000000', atLast: 1 });
  const resumed = new LogCursor(at);
  expect(resumed.rewind()).toBe(at.since);
  const out = [
    msg('2026-11-26T12:00:00.2Z', 'b'),
    msg('2026-11-26T12:00:00.2Z', 'c'),
    msg('2026-11-26T12:00:00.3Z', 'd'),
  ].map((m) => resumed.accept(m));
  expect(texts(out)).toEqual(['c\n', 'd\n']);
});
