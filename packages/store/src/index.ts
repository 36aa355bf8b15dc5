export { ArtifactIndex } from './artifact-index.js';
export { AuthStore, hashToken, newTokenSecret } from './auth-store.js';
export { PipelineStore } from './pipeline-store.js';
export { DatasetStore } from './dataset-store.js';
export {
  defaultRetryPolicy,
  endAttempt,
  retryDelay,
  type AttemptEnd,
  type RetryHints,
  type RetryPolicy,
} from './attempt-outcome.js';
export { EventStream } from './event-stream.js';
export { faultPoint } from './fault.js';
export {
  AttemptTaker,
  bullJobId,
  bullPriority,
  bullPriorityOf,
  JobQueues,
  queueName,
  gangQueueName,
  laneOf,
  type AttemptJob,
  type AttemptRef,
  type AttemptTicket,
} from './job-queues.js';
export { Housekeeper, type HousekeeperOptions, type SweepResult } from './housekeeper.js';
export {
  JobStore,
  type CreateOptions,
  type CreateOutcome,
  type JobPage,
  type ListOptions,
  type MemberEnd,
  type Transition,
  type TransitionGuard,
  type TransitionRefusal,
  type Transitioned,
} from './job-store.js';
export { keys, type Keys } from './keys.js';
export { LogStream, memberLogId, type NewBatch } from './log-stream.js';
export { defaultCaps, type StreamCaps } from './stream-caps.js';
export {
  Downsampler,
  downsample,
  MetricStream,
  type MetricEntry,
  type NewMetric,
  type SeriesQuery,
} from './metric-stream.js';
export {
  defaultGangReservationMs,
  Placement,
  type Claim,
  type GangHold,
  type GangSeat,
  type PlacementOptions,
  type PlacementWorker,
  type QueuedJob,
} from './placement.js';
export { capacityOf, placeQueue, type WorkerCapacity } from './queue-view.js';
export {
  asRedisUnavailable,
  connectRedis,
  redisReady,
  redisUnavailable,
  type ConnectOptions,
  type Redis,
} from './redis.js';
export {
  checkRedisSafety,
  readRedisSettings,
  redisProblems,
  UnsafeRedisError,
  type RedisSafetyOptions,
  type RedisSettings,
} from './redis-safety.js';
export { isTransientRedisError, untilRedisTakes } from './redis-retry.js';
export { StateChanges, type StateChangeEntry } from './state-changes.js';
export type { TailSource } from './tail.js';
export { WorkerRegistry, type WorkerProfile } from './worker-registry.js';
export { redactDebugOutput } from './debug-redaction.js';
export { holdOf, ownerToken, parseHold, parseOwner } from './owner.js';
export { WorkerSignals, type GangStop, type SignalHandlers } from './worker-signals.js';
