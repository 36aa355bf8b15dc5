// The API's shared services, owned here and closed together: Redis connections, the stores, the housekeeping timer.
import {
  ArtifactIndex,
  AuthStore,
  connectRedis,
  DatasetStore,
  EventStream,
  Housekeeper,
  JobQueues,
  JobStore,
  LogStream,
  MetricStream,
  Placement,
  redisUnavailable,
  StateChanges,
  WorkerRegistry,
  type Redis,
} from '@berth/store';
import { join, resolve } from 'node:path';
import { FsArtifactStore } from './artifacts/artifact-store.js';
import { Artifacts } from './artifacts/artifacts.js';
import { Datasets } from './datasets/datasets.js';
import type { ApiConfig } from './env.js';
import type { ImagePolicy } from './jobs/image-policy.js';
import { SseClients } from './streams/sse.js';
import { TailHub } from './streams/tail-hub.js';

export interface Services {
  redis: Redis;
  auth: AuthStore;
  /** Which images jobs may run. */
  images: ImagePolicy;
  /** The most hosts one job may span on this cluster (BERTH_MAX_NODES). */
  maxNodes: number;
  store: JobStore;
  /** The BullMQ queues jobs wait in, one per GPU demand. */
  queues: JobQueues;
  logs: LogStream;
  metrics: MetricStream;
  events: EventStream;
  stateChanges: StateChanges;
  /** Shared Redis readers for followed streams: one per stream, whatever the number of followers, on one connection. */
  hub: TailHub;
  sse: SseClients;
  artifacts: Artifacts;
  datasets: Datasets;
  placement: Placement;
  workers: WorkerRegistry;
  /** Silence after which a worker shows as lost. */
  lostAfterMs: number;
  close(): Promise<void>;
}

/**
 * BullMQ waits for the connection's 'ready' before a queue's first command, however long Redis is away; every other
 * command on the API's fail-fast connection is refused at once. A queue first used while Redis is away is refused too.
 */
class FailFastQueues extends JobQueues {
  constructor(
    private readonly connection: Redis,
    prefix: string,
  ) {
    super(connection, prefix);
  }

  override queue(lane: number | string): ReturnType<JobQueues['queue']> {
    if (this.connection.status !== 'ready') throw redisUnavailable();
    return super.queue(lane);
  }
}

export function buildServices(config: ApiConfig): Services {
  const redis = connectRedis(config.redisUrl, { failFast: true, name: 'berth-api' });
  const blocking = new Set<Redis>();
  const openBlockingConnection = (): Redis => {
    const conn = connectRedis(config.redisUrl, { name: 'berth-api-follow' });
    blocking.add(conn);
    conn.once('end', () => blocking.delete(conn));
    return conn;
  };
  // Every followed stream is read through one blocking connection; the main one interrupts it when a stream joins.
  const hub = new TailHub(openBlockingConnection, undefined, redis);
  const sse = new SseClients({ maxStreamsPerUser: config.maxStreamsPerUser });
  const store = new JobStore(redis, config.prefix);
  const queues = new FailFastQueues(redis, config.prefix);
  // Expiry and lost workers are handled even when no worker is left to do it.
  const housekeeper = new Housekeeper(redis, config.prefix, store, queues, {
    healQueue: true,
    priorityAgingMs: config.priorityAgingMs,
    lostAfterMs: config.lostAfterMs,
    retry: config.retry,
    streamRetentionMs: config.streamRetentionDays * 24 * 3600 * 1000,
  });
  const sweeper = setInterval(() => housekeeper.sweep().catch(() => {}), config.sweepMs);
  sweeper.unref();
  return {
    redis,
    auth: new AuthStore(redis, config.prefix),
    images: config.images,
    maxNodes: config.maxNodes,
    store,
    queues,
    logs: new LogStream(redis, config.prefix),
    metrics: new MetricStream(redis, config.prefix),
    events: new EventStream(redis, config.prefix),
    stateChanges: new StateChanges(redis, config.prefix),
    hub,
    sse,
    datasets: new Datasets(new DatasetStore(redis, config.prefix, store), join(resolve(config.dataDir), 'datasets'), {
      maxBytes: config.datasetMaxBytes,
      maxFiles: 100_000,
      maxExpandedBytes: config.datasetMaxBytes * 4,
    }),
    artifacts: new Artifacts(
      new ArtifactIndex(redis, config.prefix),
      new FsArtifactStore(join(resolve(config.dataDir), 'artifacts')),
      { keepCheckpoints: config.keepCheckpoints, maxBytes: config.artifactMaxBytes },
    ),
    placement: new Placement(redis, config.prefix),
    workers: new WorkerRegistry(redis, config.prefix),
    lostAfterMs: config.lostAfterMs,
    async close() {
      clearInterval(sweeper);
      sse.endAll();
      hub.close();
      for (const conn of blocking) conn.disconnect();
      await queues.close().catch(() => {});
      redis.disconnect();
    },
  };
}
