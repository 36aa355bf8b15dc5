// A route plugin names the decorators it reads: registering it without one is refused, and it is handed only those.
import Fastify from 'fastify';
import type { ApiConfig } from '../env.js';
import { routePlugin } from './route-plugin.js';

test('a route plugin is refused where a decorator it reads is missing', async () => {
  const app = Fastify();
  await expect(app.register(routePlugin('test-routes', ['manifests'], async () => {}))).rejects.toThrow(/manifests/);
});

test('a route plugin gets the decorators it names, no others, and its hooks stay inside it', async () => {
  const app = Fastify()
    .decorate('manifests', new Map())
    .decorate('config', {} as ApiConfig);
  let handed: string[] = [];
  let seen = 0;
  await app.register(
    routePlugin('test-routes', ['manifests'], async (routes, uses) => {
      handed = Object.keys(uses);
      routes.addHook('onRequest', async () => void seen++);
      routes.get('/inside', async () => ({ recipes: uses.manifests.size }));
    }),
  );
  app.get('/outside', async () => ({ ok: true }));
  expect(handed).toEqual(['manifests']);
  expect((await app.inject('/inside')).json()).toEqual({ recipes: 0 });
  await app.inject('/outside');
  expect(seen).toBe(1);
  await app.close();
});
