// First: fhir-kit-client's debug logging would print the EHR's bearer token (see server/security).
import { debugGuard } from './security/debug-guard-preload.ts';
import path from 'node:path';
import { loadPolicyRegistry } from '../policies/registry.ts';
import { createApp, type DecisionRecorder } from './app.ts';
import { HookThreadPool } from './hook-threads/pool.ts';
import { loadConfig } from './config.ts';
import { createDecisionsRouter } from './http/decisions.ts';
import { createFeedbackRouter } from './http/feedback.ts';
import { createLogger } from './logger.ts';
import { ServiceCatalog } from './protocol/services.ts';
import { resolveTrustedClients } from './security/trusted-clients.ts';
import { openDecisionStore, type DecisionStore } from './store/index.ts';

const root = path.resolve(import.meta.dirname, '..');

async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger(config.logLevel);
  if (debugGuard.stripped) logger.warn('DEBUG named fhir-kit-client, whose debug output contains bearer tokens; it was switched off');

  // Bad policy data, discovery or client configuration stops startup with a message naming the file and field.
  const registry = loadPolicyRegistry(config.policyDir);
  const services = new ServiceCatalog(path.join(root, 'cds-services.json'));
  const { mode, clients } = resolveTrustedClients(config);

  let store: DecisionStore | undefined;
  if (config.decisionLog) {
    store = await openDecisionStore({
      dataDir: config.dataDir,
      databaseUrl: config.databaseUrl,
      logger,
      commitTimeoutMs: config.decisionCommitTimeoutMs,
    });
  } else {
    logger.warn('DECISION_LOG=off: hook answers are NOT kept (CRD §found-37 requires them); benchmarking only');
  }
  const recorder: DecisionRecorder | undefined = store && {
    record: (decision) => store.save(decision),
    recordPrepared: (decision) => store.savePrepared(decision),
    health: () => store.health(),
  };
  const routers = store
    ? [createFeedbackRouter({ store, serviceIds: services.ids(), logger }), createDecisionsRouter({ store, adminToken: config.adminToken })].filter(
        (r): r is NonNullable<typeof r> => r !== null,
      )
    : [];

  // Each hook thread builds the same pipeline; a policy or discovery file it cannot load stops startup.
  const hookThreads = config.hookThreads > 0 ? await HookThreadPool.start(config.hookThreads, { config, root }, logger, { jobTimeoutMs: 2 * config.requestTimeoutMs }) : undefined;

  const app = createApp({ config, logger, registry, services, clients, ...(recorder ? { recorder } : {}), ...(hookThreads ? { hookThreads } : {}), routers });
  const server = app.listen(config.port, config.host, (error?: Error) => {
    if (error) {
      logger.fatal({ err: { message: error.message } }, 'could not listen');
      process.exit(1);
    }
    logger.info(
      {
        port: config.port,
        baseUrl: config.baseUrl,
        auth: mode,
        decisionLog: store?.engine ?? 'off',
        hookThreads: config.hookThreads,
        decisionLookup: config.adminToken ? 'on' : 'off',
        policies: registry.policies.map((p) => p.doc.id),
      },
      'gene-therapy CRD service listening',
    );
  });
  server.keepAliveTimeout = 65_000;

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    setTimeout(() => process.exit(0), 5000).unref();
    server.close(() => {
      void Promise.all([hookThreads?.close(), store?.close()]).finally(() => process.exit(0));
    });
    server.closeIdleConnections();
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((error: unknown) => {
  process.stderr.write(`startup failed: ${(error as Error).message}\n`);
  process.exit(1);
});
