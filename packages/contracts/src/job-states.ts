// Job states in lifecycle order, without zod: the CLI and the dashboard import this module on its own
// (`@berth/contracts/job-states`), so a `berth` command starts without loading every schema and the web bundle carries
// no validator. job.ts builds the zod enum from the same list.
export const jobStates = [
  'queued',
  'pulling',
  'starting',
  'running',
  'uploading',
  'succeeded',
  'failed',
  'cancelled',
] as const;
export type JobState = (typeof jobStates)[number];

export const terminalStates: ReadonlySet<JobState> = new Set(['succeeded', 'failed', 'cancelled']);

/** Whether a state (as the API sent it) is one a job never leaves. */
export function isTerminal(state: string): boolean {
  return terminalStates.has(state as JobState);
}
