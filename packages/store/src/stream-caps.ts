// How much of each job's log and metrics Redis keeps, and the defaults of each cap, in one place.

export interface StreamCaps {
  /** Log lines kept in Redis per job (default 200,000). */
  logLines: number;
  /** Metric points kept in Redis per job (default 500,000). */
  metricPoints: number;
  /** Bytes of log text kept in Redis per job (BERTH_LOG_STREAM_MAX_BYTES; default 256 MiB). */
  logBytes?: number;
  /** Bytes of metric points (field names and values) kept in Redis per job (default 64 MiB). */
  metricBytes?: number;
  /**
   * Bytes of the worker's per-attempt log file (BERTH_LOG_FILE_MAX_BYTES; default 10 GiB): not Redis, but the
   * same question of how much of a job's output is kept, answered for the log pump that writes both.
   */
  logFileBytes?: number;
}

export const defaultCaps: Required<StreamCaps> = {
  logLines: 200_000,
  metricPoints: 500_000,
  logBytes: 256 * 1024 ** 2,
  metricBytes: 64 * 1024 ** 2,
  logFileBytes: 10 * 1024 ** 3,
};
