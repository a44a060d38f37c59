import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../logger.ts';
import type { SqlDriver } from './sql-driver.ts';

const MIGRATIONS_DIR = path.join(import.meta.dirname, 'migrations');
const FILE_PATTERN = /^(\d{3})_([a-z0-9_]+)\.sql$/;
/** Arbitrary constant shared by every instance so only one of them migrates at a time. */
const MIGRATION_LOCK_KEY = 7_146_420_513;

export interface Migration {
  version: number;
  name: string;
  sql: string;
  checksum: string;
}

export async function loadMigrations(dir = MIGRATIONS_DIR): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((f) => FILE_PATTERN.test(f)).sort();
  const out: Migration[] = [];
  for (const file of files) {
    const match = FILE_PATTERN.exec(file);
    if (!match?.[1] || !match[2]) continue;
    const sql = await readFile(path.join(dir, file), 'utf8');
    out.push({ version: Number(match[1]), name: match[2], sql, checksum: createHash('sha256').update(sql).digest('hex') });
  }
  const versions = new Set(out.map((m) => m.version));
  if (versions.size !== out.length) throw new Error(`duplicate migration version in ${dir}`);
  return out;
}

/**
 * Applies the missing migrations in one transaction. The transaction-scoped advisory lock makes
 * a second instance starting at the same moment wait, then find everything applied.
 * Returns the versions applied now.
 */
export async function migrate(driver: SqlDriver, logger: Logger, migrations?: Migration[]): Promise<number[]> {
  const all = migrations ?? (await loadMigrations());
  return driver.transaction(async (tx) => {
    await tx.query(`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`);
    await tx.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version integer PRIMARY KEY,
      name text NOT NULL,
      checksum text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
    const rows = await tx.query<{ version: number; checksum: string }>('SELECT version, checksum FROM schema_migrations');
    const applied = new Map(rows.map((r) => [Number(r.version), r.checksum]));
    const done: number[] = [];
    for (const m of all) {
      const checksum = applied.get(m.version);
      if (checksum !== undefined) {
        // An applied migration must never be edited: the databases would silently diverge.
        if (checksum !== m.checksum) throw new Error(`migration ${m.version}_${m.name} was changed after it was applied`);
        continue;
      }
      await tx.exec(m.sql);
      await tx.query('INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)', [m.version, m.name, m.checksum]);
      done.push(m.version);
    }
    const known = new Set(all.map((m) => m.version));
    const newer = [...applied.keys()].filter((v) => !known.has(v));
    if (newer.length > 0) logger.warn({ versions: newer }, 'decision store: database has migrations newer than this code');
    if (done.length > 0) logger.info({ versions: done }, 'decision store: migrations applied');
    return done;
  });
}
