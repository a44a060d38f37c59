import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { SqlDecisionStore } from './decision-store.ts';
import { DocumentSegments } from './documents.ts';
import { lockDataDir } from './dir-lock.ts';
import { openPgDriver } from './pg-driver.ts';
import { openPgliteDriver } from './pglite-driver.ts';
import { Spool } from './spool.ts';
import type { SqlDriver } from './sql-driver.ts';
import type { DecisionStore, OpenStoreOptions } from './types.ts';

export type * from './types.ts';
export type { PreparedDecision } from './repository.ts';
export type { SqlDriver, SqlExecutor } from './sql-driver.ts';
export { DecisionRejectedError, StoreUnavailableError } from './errors.ts';

export const DEFAULT_COMMIT_TIMEOUT_MS = 1500;
export const DEFAULT_RETRY_INTERVAL_MS = 2000;

/**
 * Opens the decision store: PostgreSQL when databaseUrl is set (instances may share it),
 * otherwise embedded PGlite under <dataDir>/pglite. Migrations run before this resolves.
 */
export function openDecisionStore(options: OpenStoreOptions): Promise<DecisionStore> {
  return openDecisionStoreWith(options, (driver) => driver);
}

/** openDecisionStore with the engine's driver wrapped, for tests that inject faults. */
export async function openDecisionStoreWith(options: OpenStoreOptions, wrap: (driver: SqlDriver) => SqlDriver): Promise<DecisionStore> {
  const dataDir = path.resolve(options.dataDir);
  await mkdir(dataDir, { recursive: true });
  const useSpool = options.spool ?? true;
  const commitTimeoutMs = options.commitTimeoutMs ?? DEFAULT_COMMIT_TIMEOUT_MS;
  const release = useSpool || !options.databaseUrl ? await lockDataDir(dataDir) : async () => undefined;
  let driver: SqlDriver | undefined;
  try {
    const engine = options.databaseUrl
      ? openPgDriver({
          connectionString: options.databaseUrl,
          logger: options.logger,
          connectTimeoutMs: commitTimeoutMs,
          queryTimeoutMs: Math.max(30_000, commitTimeoutMs * 4),
        })
      : await openPgliteDriver(path.join(dataDir, 'pglite'), path.join(dataDir, 'documents'));
    driver = wrap(engine);
    return await SqlDecisionStore.open(driver, {
      logger: options.logger,
      spool: useSpool ? new Spool(dataDir, options.logger) : null,
      documents: driver.storeWithDocuments ? new DocumentSegments(path.join(dataDir, 'documents')) : null,
      commitTimeoutMs,
      retryIntervalMs: options.retryIntervalMs ?? DEFAULT_RETRY_INTERVAL_MS,
      maxBatch: 256,
      concurrency: options.databaseUrl ? 2 : 1,
      onClose: release,
    });
  } catch (err) {
    await driver?.close().catch(() => undefined);
    await release();
    throw err;
  }
}
