import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { memlockLimit } from './host-limits.js';

const limits = (memlock: string) => {
  const file = join(mkdtempSync(join(tmpdir(), 'limits-')), 'limits');
  writeFileSync(
    file,
    `Limit                     Soft Limit           Hard Limit           Units\nMax stack size            8388608              unlimited            bytes\nMax locked memory         ${memlock}            bytes\n`,
  );
  return file;
};

test('memlock is unlimited where the host allows it, else the host hard limit', () => {
  expect(memlockLimit(limits('unlimited            unlimited'))).toBe(-1);
  expect(memlockLimit(limits('8388608              8388608'))).toBe(8388608);
  expect(memlockLimit('/nonexistent')).toBe(-1);
});
