// Users, roles, API tokens and quotas: who is calling, and what they may see.
import { z } from 'zod';

export const UserId = z.string().regex(/^usr_[a-z2-7]{20}$/, 'a user id looks like usr_ followed by 20 characters');
export const TokenId = z.string().regex(/^tok_[a-z2-7]{20}$/, 'a token id looks like tok_ followed by 20 characters');

/**
 * admin: sees and manages everything; member: sees only what they own; worker: the account a worker process uses to
 * upload artifacts and fetch job inputs, never a person.
 */
export const Role = z.enum(['admin', 'member', 'worker']);
export type Role = z.infer<typeof Role>;

/** Limits per user; null means none. */
export const Quotas = z.strictObject({
  /** Jobs waiting in the queue at once. */
  queuedJobs: z.number().int().min(0).nullable(),
  /** GPUs asked for by the user's unfinished jobs (queued or running) together. */
  gpus: z.number().int().min(0).nullable(),
});
export type Quotas = z.infer<typeof Quotas>;

export const User = z.object({
  id: UserId,
  name: z.string(),
  role: Role,
  quotas: Quotas,
  createdAt: z.string(),
});
export type User = z.infer<typeof User>;

const userName = z
  .string()
  .regex(/^[a-z][a-z0-9._-]{0,62}$/, 'a user name: lower-case letters, digits, . _ -, starting with a letter');

export const CreateUser = z.strictObject({
  name: userName,
  role: Role.default('member'),
  quotas: Quotas.partial().optional(),
});

export const UpdateUser = z.strictObject({
  role: Role.optional(),
  quotas: Quotas.partial().optional(),
});

/** A token as listed: never its secret, which is shown once when it is made and stored only as a hash. */
export const TokenInfo = z.object({
  id: TokenId,
  name: z.string(),
  user: UserId,
  createdAt: z.string(),
  expiresAt: z.string().nullable(),
  lastUsedAt: z.string().nullable(),
});
export type TokenInfo = z.infer<typeof TokenInfo>;

export const CreateToken = z.strictObject({
  name: z.string().min(1).max(64),
  /** Whose token it is; only an admin may name someone else. */
  user: UserId.optional(),
  expiresInDays: z.number().int().min(1).max(3650).optional(),
});

export const NewToken = TokenInfo.extend({
  /** The secret: `Authorization: Bearer <token>`. Shown only here. */
  token: z.string(),
});

/** The shape of a token's secret: berth_ and 43 base64url characters (256 random bits). */
export const tokenPattern = /^berth_[A-Za-z0-9_-]{43}$/;
