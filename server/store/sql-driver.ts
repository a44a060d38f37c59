import type { DocumentRef, DocumentTexts } from './documents.ts';

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
   * embedded engine: documents.ts): writes them, durably as its own files, and says where.
   */
  appendDocuments?(documents: DocumentTexts[]): Promise<DocumentRef[]>;
  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}
