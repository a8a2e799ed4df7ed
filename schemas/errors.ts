// The contracts depend on nothing else in the repository, so schema loading has its own error
// (same shape as lib/errors' TaskflowError: a stable `code` and a message naming the file).
export class SchemaError extends Error {
  readonly code: string;

  constructor(code: 'SCHEMA_UNREADABLE' | 'SCHEMA_ID_MISMATCH' | 'SCHEMA_LOCK_UNREADABLE', message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SchemaError';
    this.code = code;
  }
}
