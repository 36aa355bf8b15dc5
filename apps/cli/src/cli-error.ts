// Every failure the CLI reports: a stable code (the API's own, or one of the CLI's) and a one-line message.

export class CliError extends Error {
  override readonly name = 'CliError';

  constructor(
    readonly code: string,
    message: string,
    /** The HTTP status when the API answered with the error. */
    readonly status?: number,
  ) {
    super(message);
  }
}

/** `berth: CODE: message`, on one line whatever the message holds. */
export function errorLine(err: unknown): string {
  const [code, message] = err instanceof CliError ? [err.code, err.message] : ['INTERNAL', String(err)];
  return `berth: ${code}: ${message.replace(/\s*\n\s*/g, ' ')}`;
}
