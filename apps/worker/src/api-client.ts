// The API this worker talks to (artifact uploads, input downloads), and the worker account's token for it.
import { readFileSync } from 'node:fs';

export interface ApiTarget {
  url: string;
  token: string;
  /** How long the API may be away (restarting) before an upload or input fetch fails; see untilApiAnswers. */
  graceMs?: number;
}

export const authorization = (api: ApiTarget): { authorization: string } => ({
  authorization: `Bearer ${api.token}`,
});

/** The worker's token from BERTH_API_TOKEN_FILE (a mounted secret) or BERTH_API_TOKEN; throws when neither is set. */
export function workerToken(o: { token?: string | undefined; tokenFile?: string | undefined }): string {
  const token = o.tokenFile ? readFileSync(o.tokenFile, 'utf8').trim() : o.token;
  if (!token) {
    throw new Error(
      'BERTH_API_TOKEN (or BERTH_API_TOKEN_FILE) is unset: an admin makes a worker account and its token ' +
        '(berth users create <name> --role worker; berth tokens create --user <id>)',
    );
  }
  return token;
}

/** The API did not answer, or answered that it cannot now (5xx but a full disk): worth another try, later. */
export class ApiAway extends Error {
  override readonly name = 'ApiAway';
}

/** True for an answer the API gives while it restarts or its Redis is away; 507 (disk full) is an answer. */
export const apiBusy = (status: number): boolean => status >= 500 && status !== 507;

/**
 * Runs `op` until the API takes it: an ApiAway is retried after 500 ms, doubling to 10 s, for up to `graceMs`
 * (default 10 minutes, long enough for an API restart or upgrade); then its last error is thrown. Other errors are
 * thrown at once.
 */
export async function untilApiAnswers<T>(op: () => Promise<T>, graceMs = 10 * 60_000): Promise<T> {
  const deadline = Date.now() + graceMs;
  for (let tries = 0; ; tries++) {
    try {
      return await op();
    } catch (err) {
      if (!(err instanceof ApiAway) || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, Math.min(500 * 2 ** tries, 10_000)));
    }
  }
}
