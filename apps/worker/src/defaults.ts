// Every tunable of the worker with its default, once: env.ts gives them to the environment's variables, and
// buildWorker applies them to what a caller (main.ts, a test) left out, in one step (withDefaults).
import { defaultLostAfterMs } from '@berth/contracts';
import { defaultGangReservationMs } from '@berth/store';

export interface WorkerTimings {
  /** How often the worker proves it is alive (BERTH_HEARTBEAT_MS). */
  heartbeatMs: number;
  /** Silence after which a worker is written off and its jobs retried elsewhere (BERTH_LOST_AFTER_MS). */
  lostAfterMs: number;
  /** How often the queue is checked without a wake-up message. */
  pollMs: number;
  /** How long fitting jobs may wait while BullMQ hands over none before its workers are made anew. */
  watchdogMs: number;
  /** Seconds between SIGTERM and SIGKILL on cancel and timeout (BERTH_STOP_GRACE_S). */
  stopGraceSeconds: number;
  /** How long a berth container nobody owns may stay before it is stopped and removed (BERTH_ORPHAN_GRACE_MS). */
  orphanGraceMs: number;
}

export const defaultTimings: WorkerTimings = {
  heartbeatMs: 5000,
  lostAfterMs: defaultLostAfterMs,
  pollMs: 1000,
  watchdogMs: 30_000,
  stopGraceSeconds: 30,
  orphanGraceMs: 60_000,
};

export const workerDefaults = {
  /** Later jobs that may start ahead of a waiting one before it reserves the worker (BERTH_MAX_BYPASS). */
  maxBypass: 8,
  /** Bytes of datasets and fetched artifacts kept in the input cache (BERTH_INPUT_CACHE_BYTES). */
  inputCacheBytes: 100 * 1024 ** 3,
  /** Log text each attempt may hold in memory while Redis does not take it (BERTH_WORKER_BUFFER_BYTES). */
  bufferBytes: 64 * 1024 ** 2,
  /** How often /results is scanned and complete checkpoints uploaded while a job runs. */
  uploadIntervalMs: 10_000,
  /** How long a multi-node job's members hold their GPUs while it forms (BERTH_GANG_RESERVATION_MS). */
  gangReservationMs: defaultGangReservationMs,
  /**
   * How long a placed job may take to start its container (pulling its image, fetching its inputs), at most as far
   * as backfill counts: with its maxRuntime and the stop grace, by when it is sure to free its GPUs
   * (BERTH_START_ALLOWANCE_MS).
   */
  startAllowanceMs: 120_000,
} as const;
