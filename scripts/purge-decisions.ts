// npm run purge: deletes decision records (with their orders and feedback) older than the
// retention period, DECISION_RETENTION_DAYS (default 3650). `--dry-run` only prints the cutoff.
import { loadConfig } from '../server/config.ts';
import { createLogger } from '../server/logger.ts';
import { openDecisionStore } from '../server/store/index.ts';

const DAY_MS = 86_400_000;

const config = loadConfig();
const logger = createLogger(process.env.LOG_LEVEL ?? 'warn', process.stderr);
const cutoff = new Date(Date.now() - config.retentionDays * DAY_MS);
const engine = config.databaseUrl ? 'postgres' : 'pglite';

if (process.argv.includes('--dry-run')) {
  console.log(JSON.stringify({ engine, retentionDays: config.retentionDays, cutoff: cutoff.toISOString(), deleted: 0, dryRun: true }));
  process.exit(0);
}

// spool: false — a tool must not replay or take over a running service's spool.
const store = await openDecisionStore({ dataDir: config.dataDir, databaseUrl: config.databaseUrl, logger, spool: false });
try {
  const deleted = await store.purgeOlderThan(cutoff);
  console.log(JSON.stringify({ engine, retentionDays: config.retentionDays, cutoff: cutoff.toISOString(), deleted }));
} finally {
  await store.close();
}
