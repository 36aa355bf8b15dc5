import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
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
