// berth's ids: a prefix naming the kind, then 20 lowercase base32 characters (100 random bits).
import { RandomPool } from './random-pool.js';

const alphabet = 'abcdefghijklmnopqrstuvwxyz234567';
const pool = new RandomPool(4096);

function newId(prefix: string): string {
  const at = pool.take(20);
  const bytes = pool.bytes;
  let out = prefix;
  for (let i = at; i < at + 20; i++) out += alphabet[bytes[i]! & 31];
  return out;
}

/** `job_` + 20 base32 characters (100 random bits). */
export const newJobId = (): string => newId('job_');

/** `ds_` + 20 base32 characters. */
export const newDatasetId = (): string => newId('ds_');

/** `pl_` + 20 base32 characters. */
export const newPipelineId = (): string => newId('pl_');

/** `usr_` + 20 base32 characters. */
export const newUserId = (): string => newId('usr_');

/** `tok_` + 20 base32 characters: names a token in lists and signed URLs; the secret is separate. */
export const newTokenId = (): string => newId('tok_');
