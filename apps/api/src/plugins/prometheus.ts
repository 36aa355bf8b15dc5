// GET /metrics for Prometheus: jobs by state, SSE clients and shared readers, Redis round-trip, HTTP timings.
import { jobStates } from '@berth/contracts';
import fp from 'fastify-plugin';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Not encapsulated, and registered before the other routes: its timing hook sees every request. */
export const prometheusPlugin = fp(
  async (app) => {
    const { store, sse, hub, redis } = app;
    // One registry per app: tests build several in one process.
    const registry = new Registry();
    collectDefaultMetrics({ register: registry, prefix: 'berth_api_' });
    new Gauge({
      name: 'berth_jobs',
      help: 'Jobs by state',
      labelNames: ['state'],
      registers: [registry],
      async collect() {
        const counts = await store.counts();
        for (const state of jobStates) this.set({ state }, counts[state]);
      },
    });
    new Gauge({
      name: 'berth_sse_clients',
      help: 'Open Server-Sent Events responses',
      registers: [registry],
      collect() {
        this.set(sse.open.size);
      },
    });
    new Gauge({
      name: 'berth_stream_readers',
      help: 'Shared Redis readers of followed streams (one per stream, whatever the followers)',
      registers: [registry],
      collect() {
        this.set(hub.readers);
      },
    });
    const rtt = new Histogram({
      name: 'berth_api_redis_rtt_seconds',
      help: 'Redis PING round-trip time, measured at each scrape',
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.25, 1],
      registers: [registry],
    });
    const requests = new Counter({
      name: 'berth_http_requests_total',
      help: 'HTTP requests by route and status',
      labelNames: ['route', 'status'],
      registers: [registry],
    });
    const duration = new Histogram({
      name: 'berth_http_request_seconds',
      help: 'HTTP request durations by route (SSE follows excluded)',
      labelNames: ['route'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
      registers: [registry],
    });

    // Each route's (and route + status's) series, looked up once: prom-client hashes the labels on every call otherwise.
    const counted = new Map<string, { inc(): void }>();
    const timed = new Map<string, { observe(seconds: number): void }>();
    app.addHook('onResponse', (request, reply, done) => {
      const route = request.routeOptions.url ?? 'unmatched';
      const key = `${reply.statusCode} ${route}`;
      let counter = counted.get(key);
      if (!counter) counted.set(key, (counter = requests.labels({ route, status: String(reply.statusCode) })));
      counter.inc();
      let histogram = timed.get(route);
      if (!histogram) timed.set(route, (histogram = duration.labels({ route })));
      histogram.observe(reply.elapsedTime / 1000);
      done();
    });

    // Scraped by Prometheus with an admin token (bearer_token_file in its scrape config).
    app.get('/metrics', { schema: { hide: true }, config: { access: 'admin' } }, async (_request, reply) => {
      const t0 = process.hrtime.bigint();
      await redis.ping().catch(() => undefined);
      rtt.observe(Number(process.hrtime.bigint() - t0) / 1e9);
      return reply.type(registry.contentType).send(await registry.metrics());
    });
  },
  { name: 'berth-prometheus', dependencies: ['berth-stores', 'berth-streams'] },
);
