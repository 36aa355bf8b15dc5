// Who is calling, and may they use this route on this object. Every route needs a bearer token unless it is marked
// public; a route under /v1/jobs/:id, /v1/datasets/:id or /v1/pipelines/:id answers only the object's owner (and
// admins, and workers for the routes they use), and anyone else gets the same 404 as for an object that does not
// exist. The rules are read from the route table, so a new route is guarded without doing anything.
import { BerthError, tokenPattern, type ErrorCode, type Role, type TokenInfo, type User } from '@berth/contracts';
import type { AuthStore } from '@berth/store';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Who may call a route: `public` anyone; `users` admins and members (the default); `admin` admins only; `worker`
 * admins and worker accounts (artifact uploads); `any` every account (downloads a worker also makes).
 */
export type Access = 'public' | 'users' | 'admin' | 'worker' | 'any';

const allowed: Record<Exclude<Access, 'public'>, readonly Role[]> = {
  users: ['admin', 'member'],
  admin: ['admin'],
  worker: ['admin', 'worker'],
  any: ['admin', 'member', 'worker'],
};

/** The kinds of object a route can name by `:id`, found from its URL. */
export type OwnedKind = 'job' | 'dataset' | 'pipeline';

const ownedRoute = /^\/v1\/(jobs|datasets|pipelines)\/:id(?:\/|$)/;
const kindOf = { jobs: 'job', datasets: 'dataset', pipelines: 'pipeline' } as const;
const notFound: Record<OwnedKind, ErrorCode> = {
  job: 'JOB_NOT_FOUND',
  dataset: 'DATASET_NOT_FOUND',
  pipeline: 'PIPELINE_NOT_FOUND',
};

/** Routes the deployment serves to anyone: health, the API description, and nothing else under /v1. */
const publicUrl = (url: string): boolean =>
  url === '/healthz' || url === '/readyz' || url === '/openapi.json' || url === '/docs' || url.startsWith('/docs/');

export interface Caller {
  user: User;
  token: Pick<TokenInfo, 'id' | 'name' | 'expiresAt'>;
}

/** Why an open session (an SSE follow) was ended: what its credentials became since the request was admitted. */
export type SessionEnd = 'TOKEN_REVOKED' | 'TOKEN_EXPIRED' | 'SIGNED_URL_EXPIRED';

/** How the request's caller was admitted, for requests that outlive their admission (SSE follows). */
export interface Session {
  /** Asks Redis again (never the token cache): null while the token, and the signed URL if any, still hold. */
  check(): Promise<SessionEnd | null>;
}

/** One route's rules, as the auth hook applies them (the route table tests check every route against). */
export interface RouteRule {
  method: string;
  url: string;
  access: Access;
  owns?: OwnedKind | undefined;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Every route with who may call it and what `:id` names, in registration order. */
    routeRules: RouteRule[];
  }
  interface FastifyRequest {
    /** Set on every route that is not public. */
    caller: Caller;
    /** Set with `caller`: re-checks what admitted it. */
    session: Session;
  }
  interface FastifyContextConfig {
    access?: Access;
    /** Filled in from the URL: the kind of object `:id` names. */
    owns?: OwnedKind;
  }
}

/** Admins see everything and workers read what they run; a member sees only what they own. */
export function canSee(caller: Caller, owner: string): boolean {
  return caller.user.role !== 'member' || caller.user.id === owner;
}

/** The owner filter for a listing: everyone's for admins, the caller's own otherwise. */
export const ownerFilter = (caller: Caller): string | undefined =>
  caller.user.role === 'admin' ? undefined : caller.user.id;

export interface AuthOptions {
  store: AuthStore;
  /** The user who owns an object, or null when it does not exist. */
  ownerOf: Record<OwnedKind, (id: string) => Promise<string | null>>;
  rateLimit: RateLimit;
  signedUrlTtlSeconds: number;
}

export interface RateLimit {
  /** Requests a second a member may make, on average, per API process. */
  perSecond: number;
  /** How many they may make at once after a quiet spell. */
  burst: number;
}

/** How long a verified token is trusted without asking Redis again (a revocation elsewhere takes this long). */
const tokenCacheMs = 5_000;

export interface Auth {
  signer: Signer;
  /** Forgets what this process cached about a token, so its revocation holds here at once. */
  forget(tokenId: string): void;
}

export function installAuth(app: FastifyInstance, o: AuthOptions): Auth {
  const signer = new Signer(() => o.store.signingKey());
  const cache = new Map<string, { caller: Caller; until: number }>();
  const touched = new Map<string, number>();
  const buckets = new Map<string, { tokens: number; at: number }>();

  const rules: RouteRule[] = [];
  app.decorate('routeRules', rules);
  app.decorateRequest('caller', null as unknown as Caller);
  app.decorateRequest('session', null as unknown as Session);
  /** When the signed URL a request came with expires (ms), for its session's later checks. */
  const signedUntil = new WeakMap<FastifyRequest, number>();
  app.addHook('onRoute', (route) => {
    const url = route.url ?? '';
    const m = ownedRoute.exec(url);
    const access = route.config?.access ?? (publicUrl(url) ? 'public' : 'users');
    const owns = m ? kindOf[m[1] as keyof typeof kindOf] : undefined;
    route.config = { ...route.config, access, ...(owns ? { owns } : {}) };
    for (const method of [route.method].flat()) rules.push({ method, url, access, owns });
  });

  /** The cached caller, or a promise of them: a token seen within tokenCacheMs is answered without waiting. */
  function callerOf(tokenId: string | null, secret: string | null): Caller | Promise<Caller> {
    const key = tokenId ?? secret!;
    const hit = cache.get(key);
    if (hit && hit.until > Date.now()) return hit.caller;
    return lookUp(key, tokenId, secret);
  }

  async function lookUp(key: string, tokenId: string | null, secret: string | null): Promise<Caller> {
    const token = await (tokenId ? o.store.tokenById(tokenId) : o.store.tokenBySecret(secret!));
    const user = token ? await o.store.user(token.user) : null;
    if (!token || !user) throw unauthenticated('the token is unknown, revoked or expired');
    const caller: Caller = { user, token: { id: token.id, name: token.name, expiresAt: token.expiresAt } };
    cache.set(key, { caller, until: Date.now() + tokenCacheMs });
    return caller;
  }

  function limitRate(reply: FastifyReply, caller: Caller): void {
    if (caller.user.role !== 'member') return;
    const now = Date.now();
    const b = buckets.get(caller.user.id) ?? { tokens: o.rateLimit.burst, at: now };
    b.tokens = Math.min(o.rateLimit.burst, b.tokens + ((now - b.at) / 1000) * o.rateLimit.perSecond);
    b.at = now;
    buckets.set(caller.user.id, b);
    if (b.tokens < 1) {
      const retryAfter = Math.ceil((1 - b.tokens) / o.rateLimit.perSecond);
      reply.header('retry-after', String(retryAfter));
      throw new BerthError('RATE_LIMITED', `more than ${o.rateLimit.perSecond} requests a second; slow down`, {
        retryAfterSeconds: retryAfter,
      });
    }
    b.tokens -= 1;
  }

  /** Who sends the request: their caller (a cached token), or a promise of them. Throws for a missing token. */
  function identify(request: FastifyRequest): Caller | Promise<Caller> {
    const query = request.query as Record<string, unknown>;
    if ('access_token' in query) {
      throw unauthenticated('tokens never go in a URL: send Authorization: Bearer, or use POST /v1/signed-urls');
    }
    const header = request.headers.authorization;
    if (header) {
      const m = /^Bearer (\S+)$/i.exec(header);
      if (!m || !tokenPattern.test(m[1]!)) throw unauthenticated('send Authorization: Bearer <token>');
      return callerOf(null, m[1]!);
    }
    if (typeof query.sig === 'string' && (request.method === 'GET' || request.method === 'HEAD')) {
      return signer.verify(request.url).then(({ tokenId, expiresAt }) => {
        delete query.sig;
        signedUntil.set(request, expiresAt);
        return callerOf(tokenId, null);
      });
    }
    throw unauthenticated('this route needs a token: send Authorization: Bearer <token>');
  }

  /** The caller's role, rate and (on an owned route) ownership checks; `done` once they pass or one fails. */
  function admit(request: FastifyRequest, reply: FastifyReply, caller: Caller, done: (err?: Error) => void): void {
    const config = request.routeOptions.config;
    const access = (config.access ?? 'users') as Exclude<Access, 'public'>; // public routes never get here
    try {
      if (!allowed[access].includes(caller.user.role)) {
        throw new BerthError(
          'FORBIDDEN',
          `a ${caller.user.role} may not ${request.method} ${request.routeOptions.url}`,
        );
      }
      limitRate(reply, caller);
    } catch (err) {
      done(err as Error);
      return;
    }
    request.caller = caller;
    request.session = sessionOf(caller, signedUntil.get(request));
    const last = touched.get(caller.token.id) ?? 0;
    if (Date.now() - last > 60_000) {
      touched.set(caller.token.id, Date.now());
      void o.store.touch(caller.token.id, new Date()).catch(() => {});
    }
    if (!config.owns) {
      reply.header('cache-control', 'private, no-store');
      done();
      return;
    }
    const kind = config.owns;
    const id = (request.params as { id: string }).id;
    o.ownerOf[kind](id).then((owner) => {
      if (owner === null || !canSee(caller, owner)) {
        done(new BerthError(notFound[kind], `no ${kind} ${id}`));
        return;
      }
      reply.header('cache-control', 'private, no-store');
      done();
    }, done);
  }

  function sessionOf(caller: Caller, until: number | undefined): Session {
    return {
      async check() {
        if (until !== undefined && until <= Date.now()) return 'SIGNED_URL_EXPIRED';
        if (caller.token.expiresAt && Date.parse(caller.token.expiresAt) <= Date.now()) return 'TOKEN_EXPIRED';
        const state = await o.store.tokenState(caller.token.id);
        return state === 'live' ? null : state === 'expired' ? 'TOKEN_EXPIRED' : 'TOKEN_REVOKED';
      },
    };
  }

  // A callback hook, not an async one: a request whose token is cached passes without a promise or a tick.
  app.addHook('onRequest', (request, reply, done) => {
    const config = request.routeOptions.config;
    // Unknown routes answer 404 whoever asks; public ones need nothing.
    if (!request.routeOptions.url || config.access === 'public' || publicUrl(request.routeOptions.url)) {
      done();
      return;
    }
    let caller: Caller | Promise<Caller>;
    try {
      caller = identify(request);
    } catch (err) {
      done(err as Error);
      return;
    }
    if (caller instanceof Promise) caller.then((c) => admit(request, reply, c, done), done);
    else admit(request, reply, caller, done);
  });

  return {
    signer,
    forget(tokenId) {
      for (const [key, entry] of cache) if (entry.caller.token.id === tokenId) cache.delete(key);
    },
  };
}

function unauthenticated(message: string): BerthError {
  return new BerthError('UNAUTHENTICATED', message);
}

/**
 * Short-lived GET URLs for browsers (EventSource and download links cannot send headers): the URL carries
 * `sig=<token id>.<expiry>.<HMAC of both and the URL>`, so it works for that one URL, as that token, until it expires
 * or the token is revoked — and the token itself never appears in a URL.
 */
export class Signer {
  private key: Promise<Buffer> | undefined;

  /** `loadKey` reads the deployment's key from Redis, once it answers. */
  constructor(private readonly loadKey: () => Promise<Buffer>) {}

  async sign(path: string, tokenId: string, ttlSeconds: number): Promise<{ url: string; expiresAt: string }> {
    const exp = Math.floor(Date.now() / 1000) + ttlSeconds;
    const sig = `${tokenId}.${exp}.${await this.mac(path, tokenId, exp)}`;
    return {
      url: `${path}${path.includes('?') ? '&' : '?'}sig=${sig}`,
      expiresAt: new Date(exp * 1000).toISOString(),
    };
  }

  /** The token id a signed URL names and when it expires (ms); throws UNAUTHENTICATED when forged, altered or expired. */
  async verify(url: string): Promise<{ tokenId: string; expiresAt: number }> {
    const m = /[?&]sig=(tok_[a-z2-7]{20})\.(\d{1,12})\.([A-Za-z0-9_-]{43})$/.exec(url);
    if (!m) throw unauthenticated('a signed URL ends with its sig parameter');
    const [, tokenId, exp, mac] = m as unknown as [string, string, string, string];
    const expected = Buffer.from(await this.mac(url.slice(0, m.index), tokenId, Number(exp)));
    if (!timingSafeEqual(expected, Buffer.from(mac))) throw unauthenticated('the signed URL is not valid');
    if (Number(exp) * 1000 <= Date.now()) throw unauthenticated('the signed URL has expired: sign it again');
    return { tokenId, expiresAt: Number(exp) * 1000 };
  }

  private async mac(path: string, tokenId: string, exp: number): Promise<string> {
    this.key ??= this.loadKey().catch((err: unknown) => {
      this.key = undefined;
      throw err;
    });
    return createHmac('sha256', await this.key)
      .update(`${tokenId}\n${exp}\n${path}`)
      .digest('base64url');
  }
}
