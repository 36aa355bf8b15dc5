// Logs, metrics and state changes, and the followers of them: the shared readers (TailHub) on blocking connections
// of their own, and the open SSE responses. Owned here: SSE ends and the readers stop before Redis closes.
import { connectRedis, LogStream, MetricStream, StateChanges, type Redis } from '@berth/store';
import fp from 'fastify-plugin';
import { SseClients } from '../streams/sse.js';
import { TailHub } from '../streams/tail-hub.js';

declare module 'fastify' {
  interface FastifyInstance {
    logs: LogStream;
    metrics: MetricStream;
    stateChanges: StateChanges;
    /** Shared Redis readers for followed streams: one per stream, whatever the number of followers, on one connection. */
    hub: TailHub;
    sse: SseClients;
  }
}

export const streamsPlugin = fp(
  async (app) => {
    const { redisUrl, prefix, maxStreamsPerUser } = app.config;
    const blocking = new Set<Redis>();
    const openBlockingConnection = (): Redis => {
      const conn = connectRedis(redisUrl, { name: 'berth-api-follow' });
      blocking.add(conn);
      conn.once('end', () => blocking.delete(conn));
      return conn;
    };
    // Every followed stream is read through one blocking connection; the main one interrupts it when a stream joins.
    const hub = new TailHub(openBlockingConnection, undefined, app.redis);
    const sse = new SseClients({ maxStreamsPerUser });
    app.decorate('logs', new LogStream(app.redis, prefix));
    app.decorate('metrics', new MetricStream(app.redis, prefix));
    app.decorate('stateChanges', new StateChanges(app.redis, prefix));
    app.decorate('hub', hub);
    app.decorate('sse', sse);
    // Before the server stops taking requests: an open follow would otherwise keep close() waiting for it.
    app.addHook('preClose', async () => {
      sse.endAll();
      hub.close();
    });
    app.addHook('onClose', async () => {
      sse.endAll();
      hub.close();
      for (const conn of blocking) conn.disconnect();
    });
  },
  { name: 'berth-streams', dependencies: ['berth-config', 'berth-stores'] },
);
