// The current time as an ISO 8601 string, as `new Date().toISOString()` writes it, at a fraction of the cost: Node 20
// takes ~1.4 µs for that call, once per submit and per log batch. The text up to the seconds is kept for the second
// it names; within it only the milliseconds are written.
let second = NaN;
let head = '';

/** `new Date(ms).toISOString()` for the current time (or `ms`), e.g. `2026-11-27T01:02:03.456Z`. */
export function isoNow(ms: number = Date.now()): string {
  const s = Math.floor(ms / 1000);
  if (s !== second) {
    const full = new Date(ms).toISOString();
    // Years beyond 9999 or before 0 change the length: those are formatted in full every time.
    if (full.length !== 24) return full;
    second = s;
    head = full.slice(0, 20);
  }
  const milli = ms - s * 1000;
  return `${head}${milli < 10 ? '00' : milli < 100 ? '0' : ''}${milli}Z`;
}
