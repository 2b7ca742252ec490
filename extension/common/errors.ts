/**
 * An error a user can act on: `message` says what was wrong (file, tensor, expected and actual), `hint` what to do.
 * Crosses process boundaries as plain data (see `toErrorData`).
 */
export class HeadlightError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly hint?: string,
  ) {
    super(message);
    this.name = 'HeadlightError';
  }

  /** Message and hint in one line, as the CLI prints it and notifications show it. */
  get userMessage(): string {
    return this.hint ? `${this.message} ${this.hint}` : this.message;
  }
}

export interface ErrorData {
  code: string;
  message: string;
  hint?: string;
}

export function toErrorData(err: unknown): ErrorData {
  if (err instanceof HeadlightError) return { code: err.code, message: err.message, hint: err.hint };
  if (err instanceof Error) return { code: 'internal', message: err.message };
  return { code: 'internal', message: String(err) };
}

export function fromErrorData(data: ErrorData): HeadlightError {
  return new HeadlightError(data.code, data.message, data.hint);
}
