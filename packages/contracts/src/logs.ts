// A job's output as stored in its log stream and served to clients. The stream's unit is a batch: the lines one
// read of the container's output gave, from one of its streams (stdout or stderr), under one stream id. A follower
// gets one `log` event per batch, so resuming from an event id never splits or repeats a line.
import { z } from 'zod';
import { JobState } from './job.js';

const lineFields = {
  /** Stream id in Redis of the batch holding the line(s); also the SSE event id. */
  id: z.string(),
  attempt: z.number().int(),
  stream: z.enum(['stdout', 'stderr']),
  /** ISO time the worker read the line(s). */
  time: z.string(),
};

/** One `log` event of a follow: consecutive lines of one output stream, in order. */
export const LogBatch = z.object({
  ...lineFields,
  lines: z.array(z.string()),
  /** The member of a multi-node job that logged them (0 is the head), in a follow of every member's log. */
  node: z.number().int().min(0).optional(),
});
export type LogBatch = z.infer<typeof LogBatch>;

/** One line of a read: `id` is its batch's (lines of one batch share it); `after=` that id resumes past the batch. */
export const LogLine = z.object({ ...lineFields, text: z.string() });
export type LogLine = z.infer<typeof LogLine>;

/** The last entry of a job's log stream: nothing follows it. */
export const LogEnd = z.object({ id: z.string(), state: JobState });
export type LogEnd = z.infer<typeof LogEnd>;

/**
 * Stands where the live log was capped: the oldest lines were dropped from Redis (they are all in the attempt's log
 * artifact). It has no stream id of its own, so resuming is unaffected.
 */
export const LogTruncated = z.object({ dropped: z.number().int() });
export type LogTruncated = z.infer<typeof LogTruncated>;

export type LogEntry =
  ({ kind: 'lines' } & LogBatch) | ({ kind: 'end' } & LogEnd) | ({ kind: 'truncated' } & LogTruncated);

/** The lines of a read's entries, each with its batch's id, attempt, stream and time. */
export function linesOf(entries: readonly LogEntry[], attempt?: number): LogLine[] {
  const out: LogLine[] = [];
  for (const e of entries) {
    if (e.kind !== 'lines' || (attempt !== undefined && e.attempt !== attempt)) continue;
    for (const text of e.lines) out.push({ id: e.id, attempt: e.attempt, stream: e.stream, time: e.time, text });
  }
  return out;
}
