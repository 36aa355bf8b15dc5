// berth's timestamps: ISO 8601 text exactly as `new Date().toISOString()` writes it, through the clock cache.
//
// The clock cache: toISOString is slow next to the rest of a submit or a log batch, each of which pays it once
// (bench/RESULTS.md).
// So the text up to the seconds is kept for the second it names, and within that second only the milliseconds are
// written. That gives toISOString's text while toISOString writes 24 characters for four-digit years: 20 fixed by
// the second alone (`2026-11-27T01:02:03.`), then three digits of milliseconds and `Z`. Other years change the
// length and are written in full each time. time.test.ts fails if toISOString stops writing it that way.
let cachedSecond = NaN;
let cachedSecondText = '';

/** `new Date(ms).toISOString()` for the current time (or `ms`), e.g. `2026-11-27T01:02:03.456Z`. */
export function isoNow(ms: number = Date.now()): string {
  const s = Math.floor(ms / 1000);
  if (s !== cachedSecond) {
    const full = new Date(ms).toISOString();
    if (full.length !== 24) return full;
    cachedSecond = s;
    cachedSecondText = full.slice(0, 20);
  }
  const milli = ms - s * 1000;
  return `${cachedSecondText}${milli < 10 ? '00' : milli < 100 ? '0' : ''}${milli}Z`;
}
