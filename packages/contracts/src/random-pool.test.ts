// The id pool: every byte it hands out is fresh from the kernel and handed out once.
import { RandomPool } from './random-pool.js';

/**
 * Takes `n` bytes `takes` times, as callers do (reading them at once), and checks each take: inside the pool, and
 * sharing no byte with a take since the pool was last refilled (seen as its bytes changing). Returns the bytes.
 */
function draw(pool: RandomPool, n: number, takes: number): Buffer[] {
  const wrong: string[] = [];
  let before = Buffer.from(pool.bytes);
  let handedOut: [number, number][] = [];
  const chunks = Array.from({ length: takes }, () => {
    const at = pool.take(n);
    if (at < 0 || at + n > pool.bytes.length) wrong.push(`bytes ${at}..${at + n - 1} are outside the pool`);
    if (!pool.bytes.equals(before)) handedOut = [];
    for (const [from, to] of handedOut) {
      if (at < to && at + n > from) wrong.push(`bytes ${at}..${at + n - 1} were handed out before, from ${from}`);
    }
    handedOut.push([at, at + n]);
    before = Buffer.from(pool.bytes);
    return Buffer.from(pool.bytes.subarray(at, at + n));
  });
  expect(wrong).toEqual([]);
  return chunks;
}

/** Whether any 8-byte run occurs twice in `chunks` (by chance about 1 in 10^12 for these sizes). */
function repeats(chunks: Buffer[]): boolean {
  const seen = new Set<string>();
  for (const chunk of chunks) {
    for (let i = 0; i + 8 <= chunk.length; i++) {
      const run = chunk.toString('hex', i, i + 8);
      if (seen.has(run)) return true;
      seen.add(run);
    }
  }
  return false;
}

test('takes that do not fill the pool evenly never share a byte, across many refills', () => {
  // 64 bytes hold three takes of 20: every fourth take refills, and the 4 bytes left over are never handed out.
  expect(repeats(draw(new RandomPool(64), 20, 300))).toBe(false);
});

test('takes that fill the pool exactly never share a byte either', () => {
  expect(repeats(draw(new RandomPool(64), 16, 300))).toBe(false);
});

test('a take of the whole pool refills it every time', () => {
  expect(repeats(draw(new RandomPool(32), 32, 50))).toBe(false);
});

test('the bytes are random: each of the 256 values turns up in 64 KiB of them', () => {
  const all = Buffer.concat(draw(new RandomPool(4096), 20, 3300));
  expect(new Set(all).size).toBe(256);
});
