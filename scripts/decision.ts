// npm run decision -- <coverage-assertion-id>: prints the stored decision (with its criteria,
// evidence, response and feedback) as JSON; exit 1 when there is none. It contains a patient id:
// handle the output as PHI.
import { loadConfig } from '../server/config.ts';
import { createLogger } from '../server/logger.ts';
import { openDecisionStore } from '../server/store/index.ts';

const assertionId = process.argv[2];
if (!assertionId || assertionId.startsWith('-')) {
  console.error('usage: npm run decision -- <coverage-assertion-id>');
  process.exit(2);
}

const config = loadConfig();
const logger = createLogger(process.env.LOG_LEVEL ?? 'warn', process.stderr);
// spool: false — a tool must not replay or take over a running service's spool. With the
// embedded engine the service must be stopped first (PGlite is single-process); while it runs,
// use GET /decisions/{assertionId} instead.
const store = await openDecisionStore({ dataDir: config.dataDir, databaseUrl: config.databaseUrl, logger, spool: false });
let found = false;
try {
  const decision = await store.findByAssertionId(assertionId);
  if (decision) {
    found = true;
    console.log(JSON.stringify(decision, null, 2));
  } else {
    console.error(`no decision with coverage-assertion-id ${assertionId}`);
  }
} finally {
  await store.close();
}
process.exit(found ? 0 : 1);
