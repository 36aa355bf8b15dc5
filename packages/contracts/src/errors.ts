// Errors are values with stable codes: every layer throws BerthError and one handler maps it to HTTP.

export const errorStatus = {
  VALIDATION_FAILED: 400,
  INVALID_JSON: 400,
  /** The HTTP request itself could not be parsed (refused before any route saw it). */
  MALFORMED_REQUEST: 400,
  /** The request line or headers are larger than the server accepts. */
  HEADERS_TOO_LARGE: 431,
  UNSUPPORTED_MEDIA_TYPE: 415,
  BODY_TOO_LARGE: 413,
  /** No token, or one that is unknown, revoked or expired; a signed URL that is forged or out of date. */
  UNAUTHENTICATED: 401,
  /** The caller's role may not use this route. */
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  USER_NOT_FOUND: 404,
  TOKEN_NOT_FOUND: 404,
  /** A user of that name exists already. */
  USER_EXISTS: 409,
  /** The Idempotency-Key was used before with a different request body. */
  IDEMPOTENCY_KEY_REUSED: 409,
  /** The image is outside the deployment's allowlist, or not pinned by digest where that is required. */
  IMAGE_NOT_ALLOWED: 422,
  /** A per-user limit was hit (details: limit, max, current). */
  QUOTA_EXCEEDED: 429,
  /** Too many requests from this caller; Retry-After says when to try again. */
  RATE_LIMITED: 429,
  JOB_NOT_FOUND: 404,
  MANIFEST_NOT_FOUND: 404,
  /** The job asks for more GPUs than any live worker has. */
  RESOURCES_UNSATISFIABLE: 422,
  /** The job already ended; it can no longer be cancelled. */
  JOB_ALREADY_FINISHED: 409,
  /** Resume was asked of a job that cannot continue: still running, a recipe that does not resume, no checkpoint. */
  NOTHING_TO_RESUME: 409,
  ARTIFACT_NOT_FOUND: 404,
  DATASET_NOT_FOUND: 404,
  PIPELINE_NOT_FOUND: 404,
  /** The upload is not a valid dataset of its declared format (details.report lists the first errors), or unsafe. */
  DATASET_INVALID: 422,
  /** A job that has not ended mounts the dataset. */
  DATASET_IN_USE: 409,
  /** The artifact store has no room left for the upload; nothing partial was kept. */
  ARTIFACT_STORE_FULL: 507,
  /** The upload ended before its declared length or failed its checksum. */
  ARTIFACT_UPLOAD_INCOMPLETE: 400,
  RANGE_NOT_SATISFIABLE: 416,
  /** The caller already has as many live streams (SSE follows) open as a user may. */
  TOO_MANY_STREAMS: 429,
  /** The upload comes from an attempt that no longer owns the job (written off, superseded, or the job ended). */
  ATTEMPT_FENCED: 409,
  REDIS_UNAVAILABLE: 503,
  INTERNAL: 500,
} as const;

export type ErrorCode = keyof typeof errorStatus;

export interface Issue {
  /** Dotted path into the request part, e.g. `params.command.0`. Empty for the part itself. */
  path: string;
  message: string;
}

export interface ErrorBody {
  error: { code: ErrorCode; message: string; issues?: Issue[]; details?: Record<string, unknown> };
}

export class BerthError extends Error {
  override readonly name = 'BerthError';
  readonly status: number;

  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: { issues?: Issue[] } & Record<string, unknown>,
  ) {
    super(message);
    this.status = errorStatus[code];
  }

  toBody(): ErrorBody {
    const { issues, ...details } = this.details ?? {};
    return {
      error: {
        code: this.code,
        message: this.message,
        ...(issues ? { issues } : {}),
        ...(Object.keys(details).length > 0 ? { details } : {}),
      },
    };
  }
}
