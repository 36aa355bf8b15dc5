// The two names of one attempt on a worker, built and read only here. The owner token (`workerId|attempt`) is what a
// job's record holds while a worker runs it: every guarded write of that worker names it, so an attempt that was
// written off cannot write. The hold (`jobId#attempt`) is what the worker's GPU ledger and active set hold.

export function ownerToken(workerId: string, attempt: number): string {
  return `${workerId}|${attempt}`;
}

export function parseOwner(token: string): { workerId: string; attempt: number } {
  const at = token.lastIndexOf('|');
  return { workerId: token.slice(0, at), attempt: Number(token.slice(at + 1)) };
}

export function holdOf(jobId: string, attempt: number): string {
  return `${jobId}#${attempt}`;
}

export function parseHold(hold: string): { jobId: string; attempt: number } {
  const at = hold.lastIndexOf('#');
  return { jobId: hold.slice(0, at), attempt: Number(hold.slice(at + 1)) };
}
