// The API's timers: expiry and lost workers are handled even when no worker is left to do it, and pipeline steps
// advance as jobs end. Any API process may do either (one at a time per pipeline).
import { Housekeeper } from '@berth/store';
import fp from 'fastify-plugin';

export const housekeepingPlugin = fp(
  async (app) => {
    const { config, pipelines } = app;
    const housekeeper = new Housekeeper(app.redis, config.prefix, app.store, app.queues, {
      healQueue: true,
      priorityAgingMs: config.priorityAgingMs,
      lostAfterMs: config.lostAfterMs,
      retry: config.retry,
      streamRetentionMs: config.streamRetentionDays * 24 * 3600 * 1000,
    });
    const sweeper = setInterval(() => housekeeper.sweep().catch(() => {}), config.sweepMs);
    const advancing = setInterval(() => void pipelines.sweep().catch(() => {}), config.sweepMs);
    sweeper.unref();
    advancing.unref();
    app.addHook('onClose', async () => {
      clearInterval(sweeper);
      clearInterval(advancing);
    });
  },
  { name: 'berth-housekeeping', dependencies: ['berth-config', 'berth-stores', 'berth-pipelines'] },
);
