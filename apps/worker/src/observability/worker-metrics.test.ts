import type { Server } from 'node:http';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { WorkerHealth, type HealthReport } from './worker-health.js';
import { WorkerMetrics } from './worker-metrics.js';

test('a /metrics port already in use is an error for the caller, not a crash', async () => {
  const taken = createServer();
  await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
  const { port } = taken.address() as AddressInfo;
  try {
    const metrics = new WorkerMetrics(
      () => ({ total: 0, used: 0 }),
      async () => 'PONG',
    );
    await expect(metrics.serve(port)).rejects.toMatchObject({ code: 'EADDRINUSE' });
    // Another port still works afterwards.
    const served = await metrics.serve(0);
    served.close();
  } finally {
    taken.close();
  }
});

describe('/healthz and the health gauges', () => {
  let stuckSince: number | undefined;
  let health: WorkerHealth;
  let server: Server;
  let base: string;
  beforeAll(async () => {
    // A threshold far below the block below, and a short window so the test sees it heal.
    health = new WorkerHealth({ maxLagMs: 500, stuckMs: 60_000, queueStuckSince: () => stuckSince, windowMs: 1000 });
    const metrics = new WorkerMetrics(
      () => ({ total: 0, used: 0 }),
      async () => 'PONG',
    );
    metrics.watch(health);
    server = await metrics.serve(0);
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => {
    server?.close();
    health?.close();
  });
  afterEach(() => (stuckSince = undefined));

  const healthz = async () => {
    const res = await fetch(`${base}/healthz`);
    return { status: res.status, body: (await res.json()) as HealthReport };
  };
  const gauge = async (name: string) => {
    const text = await (await fetch(`${base}/metrics`)).text();
    return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);
  };

  it('says unhealthy after the event loop was blocked, with the lag as the reason, and healthy again later', async () => {
    expect(await healthz()).toMatchObject({ status: 200, body: { ok: true, reasons: [] } });
    expect(await gauge('berth_worker_healthy')).toBe(1);

    // A histogram times from its first tick on: a block before that tick would go unseen.
    await new Promise((r) => setTimeout(r, 100));
    const until = Date.now() + 1500;
    while (Date.now() < until) {
      // Busy: nothing else runs in this process meanwhile, as with a worker stuck in synchronous work.
    }
    const blocked = await healthz();
    expect(blocked.status).toBe(503);
    expect(blocked.body.ok).toBe(false);
    expect(blocked.body.reasons).toEqual([
      expect.stringMatching(/^the event loop lagged \d+ ms \(more than 500 ms\)$/),
    ]);
    expect(blocked.body.eventLoopLagMs).toBeGreaterThanOrEqual(1400);
    expect(await gauge('berth_worker_healthy')).toBe(0);
    expect(await gauge('berth_worker_event_loop_lag_seconds')).toBeGreaterThanOrEqual(1.4);
    // Still so once the loop has turned a few times: the delay is recorded, not only seen while it lasts.
    await new Promise((r) => setTimeout(r, 300));
    expect((await healthz()).body).toMatchObject({ ok: false, eventLoopLagMs: expect.any(Number) });
    expect((await healthz()).body.eventLoopLagMs).toBeGreaterThanOrEqual(1400);

    // Two windows later the block has aged out.
    const deadline = Date.now() + 5000;
    let status = blocked.status;
    while (status !== 200 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      status = (await healthz()).status;
    }
    expect(status).toBe(200);
    expect(await gauge('berth_worker_healthy')).toBe(1);
    expect(await gauge('berth_worker_event_loop_lag_seconds')).toBeLessThan(0.5);
  });

  it('says unhealthy once fitting jobs have waited past the limit with nothing fetched', async () => {
    stuckSince = Date.now() - 30_000;
    expect(await healthz()).toMatchObject({ status: 200, body: { ok: true } });
    stuckSince = Date.now() - 90_000;
    const stuck = await healthz();
    expect(stuck.status).toBe(503);
    expect(stuck.body.reasons).toEqual([expect.stringContaining('while BullMQ handed over none')]);
    expect(stuck.body.queueStuckMs).toBeGreaterThanOrEqual(90_000);
    expect(await gauge('berth_worker_healthy')).toBe(0);
    stuckSince = undefined;
    expect(await healthz()).toMatchObject({ status: 200, body: { ok: true, queueStuckMs: null } });
  });

  it('answers /healthz only where a health is watched', async () => {
    const bare = await new WorkerMetrics(
      () => ({ total: 0, used: 0 }),
      async () => 'PONG',
    ).serve(0);
    try {
      const res = await fetch(`http://127.0.0.1:${(bare.address() as AddressInfo).port}/healthz`);
      expect(res.status).toBe(404);
    } finally {
      bare.close();
    }
  });
});
