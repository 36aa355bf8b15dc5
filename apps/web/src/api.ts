// The dashboard's one way to talk to the API: JSON with the bearer token, errors as ApiError with berth's codes.
export interface Issue {
  path: string;
  message: string;
}

export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly issues: Issue[] = [],
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

/** GET /v1/me. */
export interface Me {
  user: { id: string; name: string; role: 'admin' | 'member' | 'worker'; quotas: Record<string, number | null> };
  token: { id: string; name: string; expiresAt: string | null };
}

export interface SignedUrl {
  url: string;
  expiresAt: string;
}

/** Reads berth's `{error: {code, message, issues?, details?}}`, or says what came back instead. */
export function errorFrom(status: number, text: string): ApiError {
  try {
    const { error } = JSON.parse(text) as {
      error: { code: string; message: string; issues?: Issue[]; details?: Record<string, unknown> };
    };
    return new ApiError(status, error.code, error.message, error.issues ?? [], error.details ?? {});
  } catch {
    return new ApiError(status, 'HTTP_ERROR', `the API answered ${status}`);
  }
}

export class Api {
  constructor(
    readonly token: string,
    /** Called when the API refuses the token (revoked, expired): the app signs out. */
    private readonly onUnauthenticated: (err: ApiError) => void = () => {},
  ) {}

  get authHeader(): string {
    return `Bearer ${this.token}`;
  }

  private async send(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
    let res: Response;
    try {
      res = await fetch(path, {
        method,
        headers: {
          authorization: this.authHeader,
          accept: 'application/json',
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...headers,
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
    } catch {
      throw new ApiError(0, 'NETWORK', 'the API cannot be reached');
    }
    const text = res.status === 204 ? '' : await res.text();
    if (!res.ok) {
      const err = errorFrom(res.status, text);
      if (res.status === 401) this.onUnauthenticated(err);
      throw err;
    }
    return { data: (text ? JSON.parse(text) : undefined) as unknown, headers: res.headers, status: res.status };
  }

  async request<T>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
    return (await this.send(method, path, body, headers)).data as T;
  }

  /** A GET that also gives the response headers (e.g. Date, to know the server's clock). */
  async getWithHeaders<T>(path: string): Promise<{ data: T; headers: Headers }> {
    const { data, headers } = await this.send('GET', path);
    return { data: data as T, headers };
  }

  get<T>(path: string): Promise<T> {
    return this.request<T>('GET', path);
  }

  post<T>(path: string, body: unknown = {}, headers: Record<string, string> = {}): Promise<T> {
    return this.request<T>('POST', path, body, headers);
  }

  delete(path: string): Promise<void> {
    return this.request<void>('DELETE', path);
  }

  /**
   * A GET-only URL that works without the Authorization header, for EventSource and download links: the token
   * itself never goes into a URL.
   */
  async sign(path: string): Promise<SignedUrl> {
    const signed = await this.post<SignedUrl>('/v1/signed-urls', { path });
    return { url: new URL(signed.url, location.origin).href, expiresAt: signed.expiresAt };
  }
}

/** Checks a token with GET /v1/me before keeping it. */
export async function whoAmI(token: string): Promise<Me> {
  return new Api(token).get<Me>('/v1/me');
}
