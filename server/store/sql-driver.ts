import type { DocumentTexts } from './documents.ts';

/** The little SQL surface the store needs; both engines speak the same PostgreSQL dialect. */
export interface SqlExecutor {
  query<R>(sql: string, params?: unknown[]): Promise<R[]>;
  /** Several statements, no parameters (migrations). */
  exec(sql: string): Promise<void>;
}

export interface SqlDriver extends SqlExecutor {
  readonly engine: 'pglite' | 'postgres';
  /**
   * Present when the engine keeps the decision log's large documents outside its tables (the
   * embedded engine: documents.ts). Appends the documents (as durably as its own files), then
   * runs `sql` with one parameter more than `params`: the JSON array of the documents' places
   * (DocumentRef), in order. One step, so a save costs one round trip to the engine's thread.
   */
  storeWithDocuments?<R>(documents: DocumentTexts[], sql: string, params: unknown[]): Promise<R[]>;
  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}
