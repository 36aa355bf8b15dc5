// The worker's Prometheus metrics (queue wait and run time, pulls, log volume, GPUs in use, Redis round-trip, health)
// and its /healthz.
import { createServer, type Server } from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { WorkerHealth } from './worker-health.js';

export class WorkerMetrics {
  readonly registry = new Registry();
  private health: WorkerHealth | undefined;
  readonly queueWait = new Histogram({
    name: 'berth_queue_wait_seconds',
    help: 'Time from queued (or requeued) to running',
    buckets: [0.1, 0.5, 1, 5, 30, 120, 600, 3600, 14_400, 86_400],
    registers: [this.registry],
  });
  readonly runTime = new Histogram({
    name: 'berth_run_seconds',
    help: 'Time from running to the end of the attempt, by outcome',
    labelNames: ['outcome'],
    buckets: [1, 10, 60, 300, 1800, 3600, 14_400, 86_400, 259_200],
    registers: [this.registry],
  });
  readonly pulls = new Counter({
    name: 'berth_pulls_total',
    help: 'Image checks by result: present (no pull), pulled, failed',
    labelNames: ['result'],
    registers: [this.registry],
  });
  readonly pullBytes = new Counter({
    name: 'berth_pull_bytes_total',
    help: 'Compressed bytes downloaded by pulls',
    registers: [this.registry],
  });
  readonly logLines = new Counter({
    name: 'berth_log_lines_total',
    help: 'Log lines read from containers',
    registers: [this.registry],
  });
  readonly logBytes = new Counter({
    name: 'berth_log_bytes_total',
    help: 'Log bytes read from containers (UTF-8, without newlines)',
    registers: [this.registry],
  });

  constructor(gpus: () => { total: number; used: number }, redisPing: () => Promise<unknown>) {
    collectDefaultMetrics({ register: this.registry, prefix: 'berth_worker_' });
    new Gauge({
      name: 'berth_worker_gpus',
      help: 'GPUs of this worker by state',
      labelNames: ['state'],
      registers: [this.registry],
      collect() {
        const { total, used } = gpus();
        this.set({ state: 'used' }, used);
        this.set({ state: 'free' }, total - used);
      },
    });
    const rtt = new Histogram({
      name: 'berth_worker_redis_rtt_seconds',
      help: 'Redis PING round-trip time, measured at each scrape',
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.25, 1],
      registers: [this.registry],
    });
    new Gauge({
      name: 'berth_worker_redis_up',
      help: '1 when the last scrape reached Redis',
      registers: [this.registry],
      async collect() {
        const t0 = process.hrtime.bigint();
        const ok = await redisPing().then(
          () => true,
          () => false,
        );
        rtt.observe(Number(process.hrtime.bigint() - t0) / 1e9);
        this.set(ok ? 1 : 0);
      },
    });
  }

  /** Reports this health as gauges and answers /healthz from it (404 until then). */
  watch(health: WorkerHealth): void {
    if (this.health) throw new Error('WorkerMetrics already watches a WorkerHealth');
    this.health = health;
    new Gauge({
      name: 'berth_worker_healthy',
      help: '1 while /healthz answers 200: the event loop keeps up and the queue client fetches when jobs fit',
      registers: [this.registry],
      collect() {
        this.set(health.check().ok ? 1 : 0);
      },
    });
    new Gauge({
      name: 'berth_worker_event_loop_lag_seconds',
      help: 'The worst event-loop delay of the recent window, as /healthz judges it',
      registers: [this.registry],
      collect() {
        this.set(health.check().eventLoopLagMs / 1000);
      },
    });
  }

  /**
   * Serves GET /metrics and GET /healthz on this port (0: any free one) and host (loopback unless told otherwise:
   * jobs on this host must not read it); the caller closes the server.
   */
  async serve(port: number, host = '127.0.0.1'): Promise<Server> {
    const server = createServer((req, res) => {
      if (req.url === '/healthz' && this.health) {
        const report = this.health.check();
        res.writeHead(report.ok ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify(report));
        return;
      }
      if (req.url !== '/metrics') {
        res.writeHead(404).end();
        return;
      }
      this.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': this.registry.contentType }).end(text),
        () => res.writeHead(500).end(),
      );
    });
    // A port in use (a second worker on the host) is an answer to the caller, not an unhandled 'error' event.
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return server;
  }
}
