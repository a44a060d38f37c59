import pg from 'pg';
import type { Logger } from '../logger.ts';
import type { SqlDriver, SqlExecutor } from './sql-driver.ts';

export interface PgDriverOptions {
  connectionString: string;
  logger: Logger;
  /** Bound on connecting, so an unreachable server fails fast instead of queueing forever. */
  connectTimeoutMs: number;
  /** Client-side bound on any one query, so a hung server eventually frees the connection. */
  queryTimeoutMs: number;
}

function executor(client: pg.Pool | pg.PoolClient): SqlExecutor {
  return {
    query: async <R>(sql: string, params?: unknown[]) => (await client.query(sql, params)).rows as R[],
    exec: async (sql: string) => {
      await client.query(sql);
    },
  };
}

/** PostgreSQL through a small pool; several service instances may share one database. */
export function openPgDriver(options: PgDriverOptions): SqlDriver {
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: 4,
    connectionTimeoutMillis: options.connectTimeoutMs,
    query_timeout: options.queryTimeoutMs,
    idleTimeoutMillis: 30_000,
    application_name: 'gene-therapy-crd',
  });
  // Without a listener an idle client's error (server restart) would crash the process.
  pool.on('error', (err) => options.logger.warn({ err: { message: err.message } }, 'decision store: idle PostgreSQL connection failed'));
  const base = executor(pool);
  return {
    engine: 'postgres',
    ...base,
    async transaction(fn) {
      const client = await pool.connect();
      let broken = false;
      try {
        await client.query('BEGIN');
        const result = await fn(executor(client));
        await client.query('COMMIT');
        return result;
      } catch (err) {
        try {
          await client.query('ROLLBACK');
        } catch {
          broken = true; // the connection is unusable: drop it from the pool
        }
        throw err;
      } finally {
        client.release(broken);
      }
    },
    close: () => pool.end(),
  };
}
