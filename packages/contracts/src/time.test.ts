// The clock cache against toISOString, which it must match character for character.
import { isoNow } from './time.js';

describe('isoNow', () => {
  it('writes what toISOString writes, across milliseconds, seconds, days and years', () => {
    const starts = [0, 999, 1_000, 86_399_999, Date.UTC(2026, 11, 31, 23, 59, 59, 990), Date.UTC(2024, 1, 29, 12)];
    for (const start of starts) {
      for (let ms = start; ms < start + 40; ms += 3) expect(isoNow(ms)).toBe(new Date(ms).toISOString());
    }
  });

  it('follows a clock that steps back and forth between seconds', () => {
    const t = Date.UTC(2026, 10, 27, 1, 2, 3, 500);
    for (const ms of [t, t - 1_000, t + 1, t - 999, t + 60_000, t, t - 86_400_000, t + 499, t + 500]) {
      expect(isoNow(ms)).toBe(new Date(ms).toISOString());
    }
  });

  it('formats the current time', () => {
    const before = Date.now();
    const now = Date.parse(isoNow());
    expect(now).toBeGreaterThanOrEqual(before);
    expect(now).toBeLessThanOrEqual(Date.now());
  });

  it('gives dates outside four-digit years in full, and a cached second survives them', () => {
    const t = Date.UTC(2026, 10, 27, 1, 2, 3, 4);
    expect(isoNow(t)).toBe(new Date(t).toISOString());
    for (const far of [Date.UTC(10_000, 0, 1), Date.UTC(-1, 0, 1), Date.UTC(275_000, 0, 1)]) {
      expect(isoNow(far)).toBe(new Date(far).toISOString());
      expect(isoNow(far + 5)).toBe(new Date(far + 5).toISOString());
    }
    expect(isoNow(t + 1)).toBe(new Date(t + 1).toISOString());
  });

  it("rests on toISOString's shape: 24 characters for four-digit years, the first 20 set by the second alone", () => {
    // Spread over years 1970 to 9999, each at a random millisecond of its second.
    for (let i = 0; i < 1_000; i++) {
      const ms = Math.floor(Math.random() * Date.UTC(9999, 11, 31));
      const second = Math.floor(ms / 1000) * 1000;
      const text = new Date(ms).toISOString();
      expect(text).toHaveLength(24);
      expect(text.slice(0, 20)).toBe(new Date(second).toISOString().slice(0, 20));
      expect(text.slice(20)).toBe(`${String(ms - second).padStart(3, '0')}Z`);
    }
  });
});
