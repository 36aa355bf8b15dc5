// The only place that knows berth's Redis key names. Every key starts with the deployment prefix. BullMQ's queues
// (`<prefix>:gpus-<n>:…`, job-queues.ts) share the prefix and keep their own names.

export interface Keys {
  /** Hash: json (the JobRecord), state, seq, ver, and the scheduling fields (gpus, attempt, owner, devices, …). */
  job(id: string): string;
  /** Sorted set of every job id, scored by a monotonic sequence (newest = highest). */
  jobsAll: string;
  jobsInState(state: string): string;
  jobSeq: string;
  logs(id: string): string;
  /**
   * Hash: lines already stored per attempt (so a re-attached worker skips what it has), and the job's totals: `lines`
   * and `bytes` of log written, `mbytes` of metric points held (what the byte caps trim by).
   */
  logCount(id: string): string;
  /** Stream of a job's metric points (written with its log lines), closed by one `end` entry. */
  metrics(id: string): string;
  /** Stream of every job's state changes, for GET /v1/events. */
  stateChanges: string;
  /** Stream of a job's events: state changes, pull progress, retries, warnings. */
  events(id: string): string;
  /** Hash: the job's artifact index, path → Artifact JSON. */
  artifacts(id: string): string;
  /** Hash: dataset id → Dataset JSON. */
  datasets: string;
  /** Hash: pipeline id → Pipeline JSON. */
  pipelines: string;
  /** Set of the pipelines still running (the coordinator's work list). */
  pipelinesActive: string;
  /** A short lock so one process advances a pipeline at a time. */
  pipelineLock(id: string): string;
  /** Sorted set of queued jobs with a queueTtl, scored by the time they expire (ms); left when placed. */
  deadlines: string;
  /**
   * Sorted set, the outbox of the two-step queue writes: jobs just recorded as waiting (a submit, a retry), scored by
   * when (ms). Their BullMQ add comes next; the API's housekeeper checks each a moment later, adds what is missing
   * and clears it. Nothing waits here: the jobs wait in BullMQ.
   */
  unqueued: string;
  /** Set of every worker id that ever registered. */
  workers: string;
  /** Hash: json (static WorkerInfo parts), heartbeat (ms on Redis's clock), status (live | lost). */
  worker(id: string): string;
  /** String: the token of the one housekeeper writing off silent workers, for as long as its lease lasts. */
  sweepLease: string;
  /** Hash: the worker's GPU ledger, GPU UUID → job id ('' when free). */
  ledger(workerId: string): string;
  /** Set of the job ids placed on a worker and not yet finished there. */
  active(workerId: string): string;
  /** Sorted sets of one user's jobs (all, and by state), scored like jobsAll; kept by the same scripts. */
  jobsOfUser(userId: string): string;
  jobsOfUserInState(userId: string, state: string): string;
  /** Hash: gpus = GPUs asked for by the user's unfinished jobs (the GPU quota's count). */
  userUsage(userId: string): string;
  /** String: `jobId|sha256 of the body` for a user's Idempotency-Key, kept a day. */
  idempotency(userId: string, key: string): string;
  /** Hash: user id → User JSON. */
  users: string;
  /** Hash: user name → user id. */
  userNames: string;
  /** Hash: sha256 of a token's secret → TokenRecord JSON (the secret itself is never stored). */
  tokens: string;
  /** Hash: token id → sha256 of its secret. */
  tokenIds: string;
  /** Hash: token id → when it was last used (ISO), written at most once a minute per process. */
  tokenLastUsed: string;
  /** String: the HMAC key of signed URLs, made once and shared by every API process. */
  signingKey: string;
  /** Pub/sub: a job was queued or GPUs were freed; workers try to place jobs. */
  wakeChannel: string;
  /** Pub/sub: a running job was cancelled; its owner stops it. */
  cancelChannel: string;
  /** Set of the queues of multi-node jobs (`gang-<job id>`) that may still hold an attempt: placement reads their heads. */
  gangQueues: string;
  /**
   * Hash: a gang attempt's forming or formed membership: `n` (members so far), `deadline` (Redis ms by which it must
   * complete), `complete`, and `m<rank>` = `workerId|devices` for each member. Its key names the hold.
   */
  gang(hold: string): string;
  /** Pub/sub: `jobId#attempt` — a member of that gang attempt ended, or its head did; every member stops. */
  gangStopChannel: string;
  /** Hash: how each member of a multi-node job's attempts ended, `<attempt>.<rank>` → {state, exitCode, …} JSON. */
  memberEnds(id: string): string;
}

export function keys(prefix: string): Keys {
  return {
    job: (id) => `${prefix}:job:${id}`,
    gangQueues: `${prefix}:queue:gangs`,
    gang: (hold) => `${prefix}:gang:${hold}`,
    gangStopChannel: `${prefix}:gang-stop`,
    memberEnds: (id) => `${prefix}:job:${id}:member-ends`,
    jobsAll: `${prefix}:jobs`,
    jobsInState: (state) => `${prefix}:jobs:state:${state}`,
    jobSeq: `${prefix}:jobs:seq`,
    logs: (id) => `${prefix}:job:${id}:logs`,
    logCount: (id) => `${prefix}:job:${id}:logcount`,
    events: (id) => `${prefix}:job:${id}:events`,
    metrics: (id) => `${prefix}:job:${id}:metrics`,
    stateChanges: `${prefix}:state-changes`,
    artifacts: (id) => `${prefix}:job:${id}:artifacts`,
    datasets: `${prefix}:datasets`,
    pipelines: `${prefix}:pipelines`,
    pipelinesActive: `${prefix}:pipelines:active`,
    pipelineLock: (id) => `${prefix}:pipeline:${id}:lock`,
    deadlines: `${prefix}:queue:deadlines`,
    unqueued: `${prefix}:queue:unqueued`,
    workers: `${prefix}:workers`,
    worker: (id) => `${prefix}:worker:${id}`,
    sweepLease: `${prefix}:housekeeper:lease`,
    ledger: (id) => `${prefix}:worker:${id}:gpus`,
    active: (id) => `${prefix}:worker:${id}:active`,
    jobsOfUser: (u) => `${prefix}:user:${u}:jobs`,
    jobsOfUserInState: (u, state) => `${prefix}:user:${u}:jobs:state:${state}`,
    userUsage: (u) => `${prefix}:user:${u}:usage`,
    idempotency: (u, key) => `${prefix}:user:${u}:idem:${key}`,
    users: `${prefix}:users`,
    userNames: `${prefix}:users:names`,
    tokens: `${prefix}:tokens`,
    tokenIds: `${prefix}:tokens:ids`,
    tokenLastUsed: `${prefix}:tokens:last-used`,
    signingKey: `${prefix}:signing-key`,
    wakeChannel: `${prefix}:wake`,
    cancelChannel: `${prefix}:cancel`,
  };
}
