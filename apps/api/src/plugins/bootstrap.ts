// The first admin is made as soon as Redis answers: at start-up (waited for, up to 3 s), or when it comes back.
import { redisReady } from '@berth/store';
import fp from 'fastify-plugin';
import { bootstrapAdmin } from '../auth/bootstrap.js';

export const bootstrapPlugin = fp(
  async (app) => {
    const file = app.config.bootstrapTokenFile;
    // One try at a time.
    let bootstrapping: Promise<void> | undefined;
    const bootstrap = () =>
      (bootstrapping ??= bootstrapAdmin(app.authStore, file)
        .then((made) => {
          if (made) app.log.warn({ file }, 'created the admin user; its token is in this file');
        })
        .catch((err: unknown) => app.log.error({ err }, 'could not make the first admin'))
        .finally(() => (bootstrapping = undefined)));
    app.redis.on('ready', () => void bootstrap());
    if (await redisReady(app.redis, 3000)) await bootstrap();
  },
  { name: 'berth-bootstrap', dependencies: ['berth-config', 'berth-stores'] },
);
