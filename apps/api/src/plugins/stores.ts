// The API's main Redis connection and the stores on it, owned here: closed last, once everything using them is.
import { AuthStore, connectRedis, EventStream, JobQueues, JobStore, type Redis } from '@berth/store';
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

export const storesPlugin = fp(
  async (app) => {
    const { redisUrl, prefix } = app.config;
    const redis = connectRedis(redisUrl, { failFast: true, name: 'berth-api' });
    // Refused at once while Redis is away, like every other command on this connection.
    const queues = new JobQueues(redis, prefix, { failFast: true });
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
