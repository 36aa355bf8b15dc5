// The one write path into a job's log and metric streams: appends, and keeps each stream within its caps in lines
// (or points) and in bytes, in the same atomic step.
import type { Redis } from 'ioredis';
import { runScript, scripts } from './scripts.js';

export interface AppendCaps {
  logLines: number;
  logBytes: number;
  metricPoints: number;
  metricBytes: number;
}

/** Consecutive lines of one output stream, packed as the log stream stores them. */
export interface PackedBatch {
  lines: number;
  packed: string;
}

export async function appendToStreams(
  redis: Redis,
  streamKeys: { logs: string; metrics: string; counts: string },
  caps: AppendCaps,
  attempt: number,
  batches: readonly PackedBatch[],
  points: readonly (readonly (string | number)[])[],
): Promise<void> {
  const args: (string | number)[] = [
    caps.logLines,
    caps.logBytes,
    caps.metricPoints,
    caps.metricBytes,
    attempt,
    batches.length,
  ];
  for (const b of batches) args.push(b.lines, b.packed);
  args.push(points.length);
  for (const fields of points) args.push(fields.length, ...fields);
  await runScript(redis, scripts.appendStreams, [streamKeys.logs, streamKeys.metrics, streamKeys.counts], args);
}
