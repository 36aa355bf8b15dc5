// Users and tokens (admins manage everyone; members their own tokens), who am I, and signed URLs for browsers.
import {
  BerthError,
  CreateToken,
  CreateUser,
  NewToken,
  TokenId,
  TokenInfo,
  UpdateUser,
  User,
  UserId,
  type Quotas,
  type Role,
} from '@berth/contracts';
import { z } from 'zod';
import type { Caller } from '../auth/auth.js';
import { routePlugin } from './route-plugin.js';
import { ErrorResponse } from './schemas.js';

const noQuotas: Quotas = { queuedJobs: null, gpus: null };

/** The quotas a request names (a quota left out keeps its value; JSON has no undefined to clear one with). */
function given(quotas: { [K in keyof Quotas]?: Quotas[K] | undefined } | undefined): Partial<Quotas> {
  return Object.fromEntries(Object.entries(quotas ?? {}).filter(([, v]) => v !== undefined));
}

/** The quotas a new user of this role starts with: config.memberQuotas for a member, none for admins and workers. */
export const defaultQuotas = (role: Role, member: Quotas): Quotas => (role === 'member' ? member : noQuotas);

/** A member may only name themselves; an admin anyone. */
function ownTokenUser(caller: Caller, user: string | undefined): string {
  if (user && user !== caller.user.id && caller.user.role !== 'admin') {
    throw new BerthError('FORBIDDEN', 'only an admin makes tokens for someone else');
  }
  return user ?? caller.user.id;
}

export const authRoutes = routePlugin(
  'berth-auth-routes',
  ['authStore', 'auth', 'config'],
  async (app, { authStore: store, auth, config }) => {
    const { memberQuotas, signedUrlTtlSeconds } = config;

    app.get(
      '/v1/me',
      {
        schema: {
          tags: ['auth'],
          operationId: 'whoAmI',
          summary: 'The user and token making this request',
          response: {
            200: z.object({ user: User, token: TokenInfo.pick({ id: true, name: true, expiresAt: true }) }),
            401: ErrorResponse,
          },
        },
        config: { access: 'any' },
      },
      async (request) => request.caller,
    );

    app.post(
      '/v1/users',
      {
        schema: {
          tags: ['auth'],
          operationId: 'createUser',
          summary: 'Add a user (admins only)',
          body: CreateUser,
          response: { 201: User, 400: ErrorResponse, 403: ErrorResponse, 409: ErrorResponse },
        },
        config: { access: 'admin' },
      },
      async (request, reply) => {
        const { name, role, quotas } = request.body;
        const user = await store.createUser(name, role, { ...defaultQuotas(role, memberQuotas), ...given(quotas) });
        if (!user) throw new BerthError('USER_EXISTS', `a user named ${name} exists`);
        return reply.code(201).send(user);
      },
    );

    app.get(
      '/v1/users',
      {
        schema: {
          tags: ['auth'],
          operationId: 'listUsers',
          summary: 'Every user (admins only)',
          response: { 200: z.object({ users: z.array(User) }), 403: ErrorResponse },
        },
        config: { access: 'admin' },
      },
      async () => ({ users: await store.users() }),
    );

    app.patch(
      '/v1/users/:id',
      {
        schema: {
          tags: ['auth'],
          operationId: 'updateUser',
          summary: "Change a user's role or quotas (admins only)",
          params: z.strictObject({ id: UserId }),
          body: UpdateUser,
          response: { 200: User, 400: ErrorResponse, 403: ErrorResponse, 404: ErrorResponse },
        },
        config: { access: 'admin' },
      },
      async (request) => {
        const user = await store.user(request.params.id);
        if (!user) throw new BerthError('USER_NOT_FOUND', `no user ${request.params.id}`);
        const next: User = {
          ...user,
          ...(request.body.role ? { role: request.body.role } : {}),
          quotas: { ...user.quotas, ...given(request.body.quotas) },
        };
        await store.saveUser(next);
        return next;
      },
    );

    app.post(
      '/v1/tokens',
      {
        schema: {
          tags: ['auth'],
          operationId: 'createToken',
          summary: 'Make an API token; its secret is in this answer only',
          description: 'Members make tokens for themselves; admins for anyone (e.g. a worker account).',
          body: CreateToken,
          response: { 201: NewToken, 400: ErrorResponse, 403: ErrorResponse, 404: ErrorResponse },
        },
      },
      async (request, reply) => {
        const user = ownTokenUser(request.caller, request.body.user);
        if (!(await store.user(user))) throw new BerthError('USER_NOT_FOUND', `no user ${user}`);
        const { expiresInDays } = request.body;
        const token = await store.createToken(user, request.body.name, expiresInDays ? { expiresInDays } : {});
        return reply.code(201).send(token);
      },
    );

    app.get(
      '/v1/tokens',
      {
        schema: {
          tags: ['auth'],
          operationId: 'listTokens',
          summary: "Tokens (never their secrets): a member's own, or anyone's for admins",
          querystring: z.strictObject({ user: UserId.optional() }),
          response: { 200: z.object({ tokens: z.array(TokenInfo) }), 403: ErrorResponse },
        },
      },
      async (request) => ({
        tokens: await store.tokens(ownTokenUser(request.caller, request.query.user)),
      }),
    );

    app.delete(
      '/v1/tokens/:id',
      {
        schema: {
          tags: ['auth'],
          operationId: 'revokeToken',
          summary: 'Revoke a token: it and the URLs signed with it stop working at once',
          params: z.strictObject({ id: TokenId }),
          response: { 204: z.null(), 404: ErrorResponse },
        },
      },
      async (request, reply) => {
        const token = await store.tokenById(request.params.id);
        if (!token || (request.caller.user.role !== 'admin' && token.user !== request.caller.user.id)) {
          throw new BerthError('TOKEN_NOT_FOUND', `no token ${request.params.id}`);
        }
        await store.revoke(token.id);
        auth.forget(token.id);
        return reply.code(204).send(null);
      },
    );

    app.post(
      '/v1/signed-urls',
      {
        schema: {
          tags: ['auth'],
          operationId: 'signUrl',
          summary: 'A short-lived GET URL that works without the Authorization header (EventSource, downloads)',
          description:
            'The URL acts as the calling token for that one path and query, until it expires (see expiresAt) or the ' +
            'token is revoked. The token itself never appears in it.',
          body: z.strictObject({
            path: z
              .string()
              .max(2048)
              .regex(/^\/v1\/[^#\s]*$/, 'a path under /v1/, with its query')
              .refine((p) => !/[?&]sig=/.test(p), 'the path is signed already'),
          }),
          response: { 200: z.object({ url: z.string(), expiresAt: z.string() }), 400: ErrorResponse },
        },
      },
      async (request) => await auth.signer.sign(request.body.path, request.caller.token.id, signedUrlTtlSeconds),
    );
  },
);
