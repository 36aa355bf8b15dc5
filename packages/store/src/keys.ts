// The only place that knows berth's Redis key names. Every key starts with the deployment prefix.

export interface Keys {
  job(id: string): string;
  /** Sorted set of every job id, scored by a monotonic sequence (newest = highest). */
  jobsAll: string;
  jobsInState(state: string): string;
  jobSeq: string;
  logs(id: string): string;
  /** Hash: lines already stored per attempt, so a re-attached worker skips what it has. */
  logCount(id: string): string;
}

export function keys(prefix: string): Keys {
  return {
    job: (id) => `${prefix}:job:${id}`,
    jobsAll: `${prefix}:jobs`,
    jobsInState: (state) => `${prefix}:jobs:state:${state}`,
    jobSeq: `${prefix}:jobs:seq`,
    logs: (id) => `${prefix}:job:${id}:logs`,
    logCount: (id) => `${prefix}:job:${id}:logcount`,
  };
}

/** The BullMQ queue jobs travel on, and the prefix of its keys: producer and workers must agree on both. */
export const jobQueue = { name: 'jobs', prefix: (prefix: string) => `${prefix}:bull` } as const;
