/** The database cannot be reached, or did not answer in time. */
export class StoreUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreUnavailableError';
  }
}

/** The record itself cannot be stored (invalid, or conflicts with a stored one); retrying won't help. */
export class DecisionRejectedError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DecisionRejectedError';
  }
}

function sqlState(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/**
 * True when the error comes from the data of the statement (bad value, constraint, bug in SQL):
 * SQLSTATE classes 22 (data exception), 23 (integrity constraint) and 42 (syntax or access rule).
 * Anything else (refused connection, timeout, server shutting down, out of resources, a WASM
 * fault) means the store is unavailable and the record belongs in the spool.
 */
export function isDataError(err: unknown): boolean {
  if (err instanceof DecisionRejectedError) return true;
  const state = sqlState(err);
  return state !== undefined && ['22', '23', '42'].includes(state.slice(0, 2));
}

/** Errors that must stop startup instead of degrading to the spool: wrong credentials, missing database. */
export function isConfigurationError(err: unknown): boolean {
  const state = sqlState(err);
  return state !== undefined && (state.startsWith('28') || state === '3D000' || isDataError(err));
}

/** A short description that is safe to log: no statement parameters, no row values. */
export function describeError(err: unknown): { code?: string; message: string } {
  const state = sqlState(err) ?? (err as { code?: unknown } | null)?.code;
  const message = err instanceof Error ? err.message : String(err);
  return { ...(typeof state === 'string' ? { code: state } : {}), message: message.slice(0, 300) };
}
