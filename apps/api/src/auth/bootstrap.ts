// The first admin: on a deployment's first start (no users yet) the API makes the `admin` user, with the token found
// in the bootstrap file or a new one written there (0600). Its secret goes to that file only, never to a log.
import { tokenPattern } from '@berth/contracts';
import { newTokenSecret, type AuthStore } from '@berth/store';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/** Returns true when it made the admin. */
export async function bootstrapAdmin(store: AuthStore, file: string): Promise<boolean> {
  if ((await store.users()).length > 0) return false;
  mkdirSync(dirname(file), { recursive: true });
  try {
    writeFileSync(file, `${newTokenSecret()}\n`, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const secret = readFileSync(file, 'utf8').trim();
  if (!tokenPattern.test(secret)) {
    throw new Error(`${file} does not hold a berth token (berth_ followed by 43 base64url characters)`);
  }
  const admin = await store.createUser('admin', 'admin', { queuedJobs: null, gpus: null });
  // Another API process starting beside this one made it first.
  if (!admin) return false;
  await store.createToken(admin.id, 'bootstrap', { secret });
  return true;
}
