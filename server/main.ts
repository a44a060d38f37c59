// First: fhir-kit-client's debug logging would print the EHR's bearer token (see server/security).
import { debugGuard } from './security/debug-guard-preload.ts';
import path from 'node:path';
import { loadPolicyRegistry } from '../policies/registry.ts';
import { createApp } from './app.ts';
import { loadConfig } from './config.ts';
import { createLogger } from './logger.ts';
import { ServiceCatalog } from './protocol/services.ts';
import { resolveTrustedClients } from './security/trusted-clients.ts';

const root = path.resolve(import.meta.dirname, '..');

async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger(config.logLevel);
  if (debugGuard.stripped) logger.warn('DEBUG named fhir-kit-client, whose debug output contains bearer tokens; it was switched off');

  // Bad policy data, discovery or client configuration stops startup with a message naming the file and field.
  const registry = loadPolicyRegistry(config.policyDir);
  const services = new ServiceCatalog(path.join(root, 'cds-services.json'));
  const { mode, clients } = resolveTrustedClients(config);

  const app = createApp({ config, logger, registry, services, clients });
  const server = app.listen(config.port, config.host, (error?: Error) => {
    if (error) {
      logger.fatal({ err: { message: error.message } }, 'could not listen');
      process.exit(1);
    }
    logger.info(
      { port: config.port, baseUrl: config.baseUrl, auth: mode, policies: registry.policies.map((p) => p.doc.id) },
      'gene-therapy CRD service listening',
    );
  });
  server.keepAliveTimeout = 65_000;

  const shutdown = (signal: string) => {
    logger.info({ signal }, 'shutting down');
    server.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 5000).unref();
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((error: unknown) => {
  process.stderr.write(`startup failed: ${(error as Error).message}\n`);
  process.exit(1);
});
