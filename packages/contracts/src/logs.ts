// One line of a job's output as stored in its log stream and served to clients.
import { z } from 'zod';
import { JobState } from './job.js';

export const LogLine = z.object({
  /** Stream id in Redis; also the SSE event id. */
  id: z.string(),
  attempt: z.number().int(),
  stream: z.enum(['stdout', 'stderr']),
  /** ISO time the worker read the line. */
  time: z.string(),
  text: z.string(),
});
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
  ({ kind: 'line' } & LogLine) | ({ kind: 'end' } & LogEnd) | ({ kind: 'truncated' } & LogTruncated);
