import { isoNow } from './time.js';

describe('isoNow', () => {
  it('writes what toISOString writes, across milliseconds, seconds, days and years', () => {
    const starts = [0, 999, 1_000, 86_399_999, Date.UTC(2026, 11, 31, 23, 59, 59, 990), Date.UTC(2024, 1, 29, 12)];
    for (const start of starts) {
      for (let ms = start; ms < start + 40; ms += 3) expect(isoNow(ms)).toBe(new Date(ms).toISOString());
    }
  });

  it('formats the current time', () => {
    const before = Date.now();
    const now = Date.parse(isoNow());
    expect(now).toBeGreaterThanOrEqual(before);
    expect(now).toBeLessThanOrEqual(Date.now());
  });

  it('gives dates outside four-digit years in full', () => {
    const far = Date.UTC(10_000, 0, 1);
    expect(isoNow(far)).toBe(new Date(far).toISOString());
    expect(isoNow(far + 5)).toBe(new Date(far + 5).toISOString());
  });
});
