// One error base for the whole pipeline: `code` is stable for alerting and DLQ reasons,
// `retriable` tells callers whether backing off and trying again can help.
export interface ErrorOptions {
  retriable?: boolean;
  cause?: unknown;
  details?: Record<string, unknown>;
}

export class TaskflowError extends Error {
  readonly code: string;
  readonly retriable: boolean;
  readonly details: Record<string, unknown>;

  constructor(code: string, message: string, options: ErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TaskflowError';
    this.code = code;
    this.retriable = options.retriable ?? false;
    this.details = options.details ?? {};
  }
}

export class ConfigError extends TaskflowError {
  constructor(variable: string, problem: string) {
    super('CONFIG_INVALID', `${variable}: ${problem}`, { details: { variable } });
    this.name = 'ConfigError';
  }
}

export function isRetriable(err: unknown): boolean {
  return err instanceof TaskflowError ? err.retriable : false;
}
