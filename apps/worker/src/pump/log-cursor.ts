// Where a reader of a container's log is, by the engine's own per-message timestamps. Docker's follow can stop early
// (the engine rotating its log file, or the container exiting while the reader is behind), so the runtime reads again
// `since` the last timestamp and uses this to drop the messages it already passed on.

/** A message timestamp as (seconds, nanoseconds): RFC 3339 with trailing zeros trimmed does not sort as text. */
interface Stamp {
  s: number;
  ns: number;
}

const stampPattern = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z$/;
const fraction = /^\d{1,9}$/;

/** The seconds of the last stamp parsed, by their text: a flood's stamps share it, so most skip the date parse. */
let lastSeconds = { text: '', s: 0 };

function parseStamp(text: string): Stamp | null {
  const seconds = text.slice(0, 19);
  const rest = text.slice(19);
  if (seconds === lastSeconds.text && rest.endsWith('Z')) {
    const digits = rest.slice(1, -1);
    if (rest === 'Z') return { s: lastSeconds.s, ns: 0 };
    if (rest[0] === '.' && fraction.test(digits)) return { s: lastSeconds.s, ns: Number(digits.padEnd(9, '0')) };
  }
  const m = stampPattern.exec(text);
  if (!m) return null;
  lastSeconds = { text: m[1]!, s: Math.floor(Date.parse(`${m[1]}Z`) / 1000) };
  return { s: lastSeconds.s, ns: Number((m[2] ?? '').padEnd(9, '0')) };
}

function compare(a: Stamp, b: Stamp): number {
  return a.s === b.s ? a.ns - b.ns : a.s < b.s ? -1 : 1;
}

export class LogCursor {
  private last: Stamp | undefined;
  /** Messages passed on that carry exactly `last`. */
  private atLast = 0;
  /** While re-reading: how many of the messages at `last` are still to be dropped. */
  private dropAtLast = 0;

  /** Splits `<timestamp> <payload>`; returns the payload, or null when the message was already passed on. */
  accept(frame: Buffer): Buffer | null {
    const space = frame.indexOf(0x20);
    const stamp = space > 0 ? parseStamp(frame.subarray(0, space).toString('latin1')) : null;
    if (!stamp) return frame;
    const payload = frame.subarray(space + 1);
    if (this.last) {
      const order = compare(stamp, this.last);
      if (order < 0) return null;
      if (order === 0) {
        if (this.dropAtLast > 0) {
          this.dropAtLast--;
          return null;
        }
        this.atLast++;
        return payload;
      }
    }
    this.last = stamp;
    this.atLast = 1;
    this.dropAtLast = 0;
    return payload;
  }

  /** Starts a re-read: the `since` to ask the engine for (inclusive), or undefined to read from the start. */
  rewind(): string | undefined {
    if (!this.last) return undefined;
    this.dropAtLast = this.atLast;
    this.atLast = 0;
    return `${this.last.s}.${String(this.last.ns).padStart(9, '0')}`;
  }
}
