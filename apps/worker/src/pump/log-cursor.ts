// Where a reader of a container's log is, by the engine's own per-message timestamps. Docker's follow can stop early
// (the engine rotating its log file, or the container exiting while the reader is behind), so the runtime reads again
// `since` the last timestamp and uses this to drop the messages it already passed on. The same position, stored with
// the lines it covers, lets a restarted worker go on from there: a count of lines would be counted from the oldest
// line the engine still keeps, which after rotation is not the first.

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

/** A place in a container's log: the last message's timestamp, and how many messages passed on carry it. */
export interface LogPosition {
  /** `seconds.nanoseconds`, as the engine's `since` takes it. */
  since: string;
  atLast: number;
}

export class LogCursor {
  private last: Stamp | undefined;
  /** Messages passed on that carry exactly `last`. */
  private atLast = 0;
  /** While re-reading: how many of the messages at `last` are still to be dropped. */
  private dropAtLast = 0;
  /** The text of the last message passed on. */
  private lastPayload = Buffer.alloc(0);

  /** A cursor at `from` (a stored position), or at the start of the log. */
  constructor(from?: LogPosition) {
    const m = from && /^(\d+)\.(\d{9})$/.exec(from.since);
    if (m) {
      this.last = { s: Number(m[1]), ns: Number(m[2]) };
      this.atLast = from.atLast;
    }
  }

  /** Where the reader is: every message up to here has been passed on. */
  position(): LogPosition | undefined {
    return this.last ? { since: since(this.last), atLast: this.atLast } : undefined;
  }

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
        // The engine's follow can hand over the message it stopped at once more when it rotates the file: the same
        // text at the same nanosecond is that message, not a second one.
        if (payload.equals(this.lastPayload)) return null;
        this.atLast++;
        this.lastPayload = Buffer.from(payload);
        return payload;
      }
    }
    this.last = stamp;
    this.atLast = 1;
    this.dropAtLast = 0;
    this.lastPayload = Buffer.from(payload);
    return payload;
  }

  /** Starts a re-read: the `since` to ask the engine for (inclusive), or undefined to read from the start. */
  rewind(): string | undefined {
    if (!this.last) return undefined;
    // atLast keeps counting the messages at `last` passed on before the re-read: a position taken later says them.
    this.dropAtLast = this.atLast;
    return since(this.last);
  }
}

/**
 * A resume mark as the log stream stores it, `since atLast lines`: a position in the container's log and the
 * attempt's lines before it.
 */
export function markOf(position: LogPosition, lines: number): string {
  return `${position.since} ${position.atLast} ${lines}`;
}

/** The position and line count of a stored mark; undefined for none, or one this worker cannot read. */
export function parseMark(mark: string | null): { position: LogPosition; lines: number } | undefined {
  const m = mark ? /^(\d+\.\d{9}) (\d+) (\d+)$/.exec(mark) : null;
  return m ? { position: { since: m[1]!, atLast: Number(m[2]) }, lines: Number(m[3]) } : undefined;
}

function since(stamp: Stamp): string {
  return `${stamp.s}.${String(stamp.ns).padStart(9, '0')}`;
}
