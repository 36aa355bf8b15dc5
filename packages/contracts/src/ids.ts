import { randomFillSync } from 'node:crypto';

const alphabet = 'abcdefghijklmnopqrstuvwxyz234567';

// Random bytes are drawn from the kernel 4 KiB at a time, not 20 bytes per id: one getrandom call per ~200 ids
// instead of one per id (randomBytes(20) cost ~7 µs an id under submit load, a few percent of the API's CPU).
const pool = Buffer.alloc(4096);
let used = pool.length;

function newId(prefix: string): string {
  if (used + 20 > pool.length) {
    randomFillSync(pool);
    used = 0;
  }
  let out = prefix;
  for (let i = used; i < used + 20; i++) out += alphabet[pool[i]! & 31];
  used += 20;
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
