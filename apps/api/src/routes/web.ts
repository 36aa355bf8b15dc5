// The dashboard (apps/web, built to static files): index.html at / and at the client's paths, bundles under /assets/.
// Public like /docs: the pages hold no data; everything they show comes from /v1 with the user's token.
import fastifyStatic from '@fastify/static';
import { BerthError } from '@berth/contracts';
import type { FastifyReply } from 'fastify';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { routePlugin } from './route-plugin.js';

/** Paths the dashboard routes itself (its links are #/…; these turn into them when typed or shared). */
const clientPaths = ['/jobs', '/jobs/:id', '/submit', '/datasets', '/pipelines', '/pipelines/:id'];

/** Read by the auth hook: anyone may load these files. */
const config = { access: 'public' } as const;
const schema = { hide: true };

/** The built dashboard is config.webDir (apps/web/dist). */
export const webRoutes = routePlugin('berth-web-routes', ['config'], async (app, { config: { webDir } }) => {
  const root = resolve(webDir);
  const assets = join(root, 'assets');
  // Only reply.sendFile: the routes are ours, so they carry the access rule. send() keeps paths inside the root.
  await app.register(fastifyStatic, { root, serve: false });

  const notBuilt = (reply: FastifyReply) =>
    reply
      .code(404)
      .type('application/json')
      .send(
        new BerthError(
          'NOT_FOUND',
          `the dashboard is not built (no ${join(root, 'index.html')}): run npm run build`,
        ).toBody(),
      );

  const index = async (_request: unknown, reply: FastifyReply) => {
    // Checked per request: the dashboard may be built after the API started.
    if (!existsSync(join(root, 'index.html'))) return notBuilt(reply);
    return reply.header('cache-control', 'no-cache').sendFile('index.html', root);
  };
  for (const path of ['/', '/index.html', ...clientPaths]) app.get(path, { config, schema }, index);

  app.get<{ Params: { '*': string } }>('/assets/*', { config, schema }, async (request, reply) => {
    if (!existsSync(assets)) return notBuilt(reply);
    // The bundles keep their names across builds: browsers revalidate them (ETag) rather than cache them blindly.
    return reply.sendFile(request.params['*'], assets, { maxAge: 0 });
  });
});
