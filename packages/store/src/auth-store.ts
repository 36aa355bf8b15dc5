// Users and API tokens. A token's secret is shown once when it is made; only its sha256 is stored (the secret is 256
// random bits, so a fast hash is enough: there is nothing to guess from it).
import { isoNow, newTokenId, newUserId, TokenInfo, User, type Quotas, type Role } from '@berth/contracts';
import type { Redis } from 'ioredis';
import { createHash, randomBytes } from 'node:crypto';
import { keys, type Keys } from './keys.js';

/** What is stored per token: its public facts, keyed by the hash of its secret. */
type TokenRecord = Omit<TokenInfo, 'lastUsedAt'>;

export const hashToken = (secret: string): string => createHash('sha256').update(secret).digest('hex');

export const newTokenSecret = (): string => `berth_${randomBytes(32).toString('base64url')}`;

export class AuthStore {
  private readonly keys: Keys;

  constructor(
    private readonly redis: Redis,
    prefix: string,
  ) {
    this.keys = keys(prefix);
  }

  /** Null when the name is taken. */
  async createUser(name: string, role: Role, quotas: Quotas): Promise<User | null> {
    const user: User = { id: newUserId(), name, role, quotas, createdAt: isoNow() };
    if ((await this.redis.hsetnx(this.keys.userNames, name, user.id)) === 0) return null;
    await this.redis.hset(this.keys.users, user.id, JSON.stringify(user));
    return user;
  }

  async saveUser(user: User): Promise<void> {
    await this.redis.hset(this.keys.users, user.id, JSON.stringify(user));
  }

  async user(id: string): Promise<User | null> {
    const json = await this.redis.hget(this.keys.users, id);
    return json ? User.parse(JSON.parse(json)) : null;
  }

  async userByName(name: string): Promise<User | null> {
    const id = await this.redis.hget(this.keys.userNames, name);
    return id ? this.user(id) : null;
  }

  async users(): Promise<User[]> {
    const all = (await this.redis.hvals(this.keys.users)).map((j) => User.parse(JSON.parse(j)));
    return all.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  /** Stores a token for `user` under the hash of `secret` (a fresh one unless given, e.g. read from a file). */
  async createToken(
    user: string,
    name: string,
    o: { expiresInDays?: number; secret?: string } = {},
  ): Promise<TokenInfo & { token: string }> {
    const secret = o.secret ?? newTokenSecret();
    const now = new Date();
    const record: TokenRecord = {
      id: newTokenId(),
      name,
      user,
      createdAt: now.toISOString(),
      expiresAt: o.expiresInDays ? new Date(now.getTime() + o.expiresInDays * 86_400_000).toISOString() : null,
    };
    const hash = hashToken(secret);
    await this.redis
      .multi()
      .hset(this.keys.tokens, hash, JSON.stringify(record))
      .hset(this.keys.tokenIds, record.id, hash)
      .exec();
    return { ...record, lastUsedAt: null, token: secret };
  }

  /** The token a secret belongs to, if it exists and has not expired. */
  async tokenBySecret(secret: string): Promise<TokenRecord | null> {
    return this.live(await this.redis.hget(this.keys.tokens, hashToken(secret)));
  }

  /** The token of this id, if it exists and has not expired (signed URLs name their token by id). */
  async tokenById(id: string): Promise<TokenRecord | null> {
    const hash = await this.redis.hget(this.keys.tokenIds, id);
    return hash ? this.live(await this.redis.hget(this.keys.tokens, hash)) : null;
  }

  async tokens(user?: string): Promise<TokenInfo[]> {
    const [records, used] = await Promise.all([
      this.redis.hvals(this.keys.tokens),
      this.redis.hgetall(this.keys.tokenLastUsed),
    ]);
    return records
      .map((j) => JSON.parse(j) as TokenRecord)
      .filter((t) => !user || t.user === user)
      .map((t) => TokenInfo.parse({ ...t, lastUsedAt: used[t.id] ?? null }))
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  /**
   * Whether a token still authenticates, and if not why: an open stream asks this at each heartbeat, so it says
   * `expired` apart from `revoked` (gone, or its user is).
   */
  async tokenState(id: string): Promise<'live' | 'expired' | 'revoked'> {
    const hash = await this.redis.hget(this.keys.tokenIds, id);
    const json = hash ? await this.redis.hget(this.keys.tokens, hash) : null;
    if (!json) return 'revoked';
    const record = JSON.parse(json) as TokenRecord;
    if (!this.live(json)) return 'expired';
    return (await this.redis.hexists(this.keys.users, record.user)) ? 'live' : 'revoked';
  }

  /** Revokes a token at once: it no longer authenticates, nor do the URLs signed with it. */
  async revoke(id: string): Promise<void> {
    const hash = await this.redis.hget(this.keys.tokenIds, id);
    const tx = this.redis.multi().hdel(this.keys.tokenIds, id).hdel(this.keys.tokenLastUsed, id);
    if (hash) tx.hdel(this.keys.tokens, hash);
    await tx.exec();
  }

  async touch(id: string, at: Date): Promise<void> {
    await this.redis.hset(this.keys.tokenLastUsed, id, at.toISOString());
  }

  /** The deployment's signed-URL key: made by the first API process, then read by every other. */
  async signingKey(): Promise<Buffer> {
    await this.redis.set(this.keys.signingKey, randomBytes(32).toString('base64'), 'NX');
    return Buffer.from((await this.redis.get(this.keys.signingKey))!, 'base64');
  }

  private live(json: string | null): TokenRecord | null {
    if (!json) return null;
    const record = JSON.parse(json) as TokenRecord;
    return record.expiresAt && Date.parse(record.expiresAt) <= Date.now() ? null : record;
  }
}
