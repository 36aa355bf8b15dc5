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

/** What an append found: the attempt's lines stored before it, and false when its lines were already there. */
export interface AppendAnswer {
  before: number;
  applied: boolean;
}

/** Consecutive lines of one output stream, packed as the log stream stores them. */
export interface PackedBatch {
  lines: number;
  packed: string;
}

/**
 * Appends batches and points; with `from` (the attempt's lines the writer knows are stored), a call whose lines are
 * already there (a retry after a lost reply) changes nothing. `mark`, when given, is stored as the attempt's resume
 * position in the same step.
 */
export async function appendToStreams(
  redis: Redis,
  streamKeys: { logs: string; metrics: string; counts: string },
  caps: AppendCaps,
  attempt: number,
  batches: readonly PackedBatch[],
  points: readonly (readonly (string | number)[])[],
  from = -1,
  mark = '',
): Promise<AppendAnswer> {
  const args: (string | number)[] = [
    caps.logLines,
    caps.logBytes,
    caps.metricPoints,
    caps.metricBytes,
    attempt,
    from,
    mark,
    batches.length,
  ];
  for (const b of batches) args.push(b.lines, b.packed);
  args.push(points.length);
  for (const fields of points) args.push(fields.length, ...fields);
  const before = Number(
    await runScript(redis, scripts.appendStreams, [streamKeys.logs, streamKeys.metrics, streamKeys.counts], args),
  );
  return { before: Math.abs(before), applied: before >= 0 };
}
