// Job states in lifecycle order. Kept here (not imported from contracts at run time) so zod stays out of the bundle;
// the type check proves the list is complete.
import type { JobState } from '@berth/contracts';

const order = {
  queued: 0,
  pulling: 1,
  starting: 2,
  running: 3,
  uploading: 4,
  succeeded: 5,
  failed: 6,
  cancelled: 7,
} satisfies Record<JobState, number>;

export const jobStates = Object.keys(order) as JobState[];

export const terminal: ReadonlySet<JobState> = new Set(['succeeded', 'failed', 'cancelled']);

export function isTerminal(state: string): boolean {
  return terminal.has(state as JobState);
}
