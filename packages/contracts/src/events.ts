// A job's events: what happened to it besides its output (pulls, retries, warnings), in order.
import { z } from 'zod';

export const JobEventType = z.enum(['pull-progress', 'pull-done', 'retry', 'warning', 'cancel-requested', 'timeout']);
export type JobEventType = z.infer<typeof JobEventType>;

export const JobEvent = z.object({
  /** Stream id in Redis; ordered. */
  id: z.string(),
  type: JobEventType,
  attempt: z.number().int(),
  time: z.string(),
  data: z.record(z.string(), z.unknown()),
});
export type JobEvent = z.infer<typeof JobEvent>;
