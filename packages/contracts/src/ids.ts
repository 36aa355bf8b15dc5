import { randomBytes } from 'node:crypto';

const alphabet = 'abcdefghijklmnopqrstuvwxyz234567';

/** `job_` + 20 base32 characters (100 random bits). */
export function newJobId(): string {
  const bytes = randomBytes(20);
  let out = 'job_';
  for (const b of bytes) out += alphabet[b & 31];
  return out;
}
