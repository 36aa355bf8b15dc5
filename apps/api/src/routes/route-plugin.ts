// How a group of routes is made: an encapsulated plugin (its hooks and body parsers stay inside) that names the
// app's decorators it reads; Fastify refuses to register it where one is missing, and it is handed only those.
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';

type RoutesApp = Parameters<FastifyPluginAsyncZod>[0];

export function routePlugin<K extends keyof FastifyInstance>(
  name: string,
  reads: readonly K[],
  routes: (app: RoutesApp, uses: Pick<FastifyInstance, K>) => Promise<void>,
): FastifyPluginAsyncZod {
  const plugin: FastifyPluginAsyncZod = async (app) => {
    const uses = Object.fromEntries(reads.map((key) => [key, app[key]])) as Pick<FastifyInstance, K>;
    await routes(app, uses);
  };
  return fp(plugin, { name, encapsulate: true, decorators: { fastify: [...reads] } });
}
