import { mkdir } from 'node:fs/promises';
import { PGlite } from '@electric-sql/pglite';
import type { SqlDriver, SqlExecutor } from './sql-driver.ts';

interface PgliteLike {
  query<R>(sql: string, params?: unknown[]): Promise<{ rows: R[] }>;
  exec(sql: string): Promise<unknown>;
}

function executor(db: PgliteLike): SqlExecutor {
  return {
    query: async <R>(sql: string, params?: unknown[]) => (await db.query<R>(sql, params)).rows,
    exec: async (sql: string) => {
      await db.exec(sql);
    },
  };
}

/**
 * Embedded PostgreSQL (WASM) on the local filesystem. PGlite runs one backend in this process
 * and serialises queries itself. Its files are written with synchronous write(2) calls, so a
 * committed transaction is in the kernel when the call returns and survives SIGKILL; PGlite
 * starts postgres with fsync off, so it does not survive power loss (use PostgreSQL for that).
 */
export async function openPgliteDriver(dir: string): Promise<SqlDriver> {
  await mkdir(dir, { recursive: true });
  const db = await PGlite.create(dir);
  const base = executor(db);
  return {
    engine: 'pglite',
    ...base,
    transaction: (fn) => db.transaction((tx) => fn(executor(tx))),
    close: () => db.close(),
  };
}
