// Talks to the berth API with Node's fetch: adds the bearer token, and turns every error answer into a CliError
// carrying the API's code (`{"error": {"code", "message", "issues"?}}`).
import { CliError } from './cli-error.js';

export interface RequestOptions extends RequestInit {
  /** Error statuses the caller handles itself instead of getting a CliError. */
  allow?: number[];
}

interface ErrorBody {
  error?: {
    code?: string;
    message?: string;
    issues?: { path: string; message: string }[];
    details?: { report?: { errors?: { file: string; line?: number; message: string }[] } };
  };
}

/** `path?k=v&…`, leaving out undefined values. */
export function withQuery(path: string, query: Record<string, string | number | boolean | undefined>): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined) params.set(k, String(v));
  const qs = params.toString();
  return qs ? `${path}?${qs}` : path;
}

export class ApiClient {
  constructor(
    readonly url: string,
    readonly token?: string,
  ) {}

  async request(path: string, { allow = [], ...init }: RequestOptions = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.token) headers.set('authorization', `Bearer ${this.token}`);
    let res: Response;
    try {
      res = await fetch(`${this.url}${path}`, { ...init, headers });
    } catch (err) {
      throw new CliError('UNREACHABLE', `cannot reach ${this.url}: ${networkCause(err)}`);
    }
    if (res.status >= 400 && !allow.includes(res.status)) throw await apiError(res);
    return res;
  }

  /** Sends `body` as JSON (when given) and returns the parsed answer (undefined for 204). */
  async call<T>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
    const res = await this.request(path, {
      method,
      headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return (res.status === 204 ? undefined : await res.json()) as T;
  }

  get<T>(path: string): Promise<T> {
    return this.call<T>('GET', path);
  }
}

/**
 * Worth another try: a connection that failed or dropped (fetch's TypeError, an abort on silence) or a 5xx; not an
 * error the API answered with a 4xx, nor a fault of our own.
 */
export function isTransient(err: unknown): boolean {
  if (err instanceof CliError) return err.status === undefined || err.status >= 500;
  return err instanceof TypeError || (err instanceof Error && err.name === 'AbortError');
}

/** What went wrong under fetch's generic "fetch failed" / "terminated". */
export function networkCause(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (err as Error).message;
}

async function apiError(res: Response): Promise<CliError> {
  const text = await res.text().catch(() => '');
  let body: ErrorBody = {};
  try {
    body = JSON.parse(text) as ErrorBody;
  } catch {
    // Not berth's JSON (a proxy's page, say): the status says what happened.
  }
  const { code, message, issues, details } = body.error ?? {};
  // The API's particulars, kept on the one line: bad fields by path, or a dataset report's first errors by file and line.
  const found = details?.report?.errors ?? [];
  const detail = issues?.length
    ? ` (${issues.map((i) => `${i.path || '(body)'}: ${i.message}`).join('; ')})`
    : found.length
      ? `: ${found
          .slice(0, 3)
          .map((e) => `${e.file}${e.line ? ` line ${e.line}` : ''}: ${e.message}`)
          .join('; ')}${found.length > 3 ? ` (and ${found.length - 3} more)` : ''}`
      : '';
  return new CliError(
    code ?? `HTTP_${res.status}`,
    `${message ?? (text.slice(0, 200) || res.statusText)}${detail}`,
    res.status,
  );
}
