// The API this worker talks to (artifact uploads, input downloads), and the worker account's token for it.
import { readFileSync } from 'node:fs';

export interface ApiTarget {
  url: string;
  token: string;
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
