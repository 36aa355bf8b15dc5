// Training metrics as berth stores and serves them: one point per reported value, grouped into series by name.
import { z } from 'zod';

export const MetricKind = z.enum(['step', 'summary', 'parameter', 'gpu']);
export type MetricKind = z.infer<typeof MetricKind>;

export const MetricPoint = z.object({
  /** Stream id in Redis; also the SSE event id. */
  id: z.string(),
  attempt: z.number().int(),
  name: z.string(),
  value: z.number(),
  /** The training step it belongs to; null for summaries and samples taken by time (GPU telemetry). */
  step: z.number().nullable(),
  unit: z.string().optional(),
  kind: MetricKind,
  time: z.string(),
});
export type MetricPoint = z.infer<typeof MetricPoint>;

export const MetricSeries = z.object({
  name: z.string(),
  unit: z.string().optional(),
  kind: MetricKind,
  /** Points stored for the series (before downsampling). */
  count: z.number().int(),
  /** [step or unix ms, value] pairs, at most `points` of them; the last stored point is always included. */
  points: z.array(z.tuple([z.number(), z.number()])),
  /** What the x values are: training steps, or unix milliseconds for series without steps. */
  x: z.enum(['step', 'time']),
  /** For a series by step: the unix ms each point was logged at, one per point, so it can be drawn by time too. */
  times: z.array(z.number()).optional(),
  latest: z.number(),
});
export type MetricSeries = z.infer<typeof MetricSeries>;
