// The API's main Redis connection and the stores on it, owned here: closed last, once everything using them is.
import { AuthStore, connectRedis, EventStream, JobQueues, JobStore, redisUnavailable, type Redis } from '@berth/store';
import fp from 'fastify-plugin';

declare module 'fastify' {
  interface FastifyInstance {
    /** Fail-fast: a command while Redis is away is refused at once (REDIS_UNAVAILABLE), never queued. */
    redis: Redis;
    store: JobStore;
    /** The BullMQ queues jobs wait in, one per GPU demand. */
    queues: JobQueues;
    /** Users, tokens and the signing key. */
    authStore: AuthStore;
    /** Each job's events: pull progress, retries, cancel requests, timeouts. */
    events: EventStream;
  }
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

export const storesPlugin = fp(
  async (app) => {
    const { redisUrl, prefix } = app.config;
    const redis = connectRedis(redisUrl, { failFast: true, name: 'berth-api' });
    const queues = new FailFastQueues(redis, prefix);
    app.decorate('redis', redis);
    app.decorate('store', new JobStore(redis, prefix));
    app.decorate('queues', queues);
    app.decorate('authStore', new AuthStore(redis, prefix));
    app.decorate('events', new EventStream(redis, prefix));
    // Registered first among the services, so closed last (Fastify closes plugins in reverse order).
    app.addHook('onClose', async () => {
      await queues.close().catch(() => {});
      redis.disconnect();
    });
  },
  { name: 'berth-stores', dependencies: ['berth-config'] },
);
