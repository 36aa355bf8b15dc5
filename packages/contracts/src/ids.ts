import { randomBytes } from 'node:crypto';

const alphabet = 'abcdefghijklmnopqrstuvwxyz234567';

function newId(prefix: string): string {
  const bytes = randomBytes(20);
  let out = prefix;
  for (const b of bytes) out += alphabet[b & 31];
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
