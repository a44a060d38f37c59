import path from 'node:path';
import { Writable } from 'node:stream';
import type { Express } from 'express';
import { createApp, type AppDeps } from '../../server/app.ts';
import { loadConfig, type ServiceConfig } from '../../server/config.ts';
import { createLogger, type Logger } from '../../server/logger.ts';
import { ServiceCatalog } from '../../server/protocol/services.ts';
import { loadPolicyRegistry, type PolicyRegistry } from '../../policies/registry.ts';

export const ROOT = path.resolve(import.meta.dirname, '../..');
export const ORDER_SIGN = '/cds-services/gene-therapy-crd-order-sign';
export const ORDER_SELECT = '/cds-services/gene-therapy-crd-order-select';

let registry: PolicyRegistry | undefined;
let services: ServiceCatalog | undefined;

/** The shipped policy data and discovery document, loaded once per test process. */
export function shippedRegistry(): PolicyRegistry {
  registry ??= loadPolicyRegistry(path.join(ROOT, 'policies'));
  return registry;
}

export function shippedServices(): ServiceCatalog {
  services ??= new ServiceCatalog(path.join(ROOT, 'cds-services.json'));
  return services;
}

/** Captures log lines in memory so tests can assert what was (not) logged. */
export class LogCapture extends Writable {
  readonly lines: string[] = [];
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    this.lines.push(...chunk.toString('utf8').split('\n').filter((l) => l.length > 0));
    done();
  }
  get text(): string {
    return this.lines.join('\n');
  }
}

export interface TestApp {
  app: Express;
  config: ServiceConfig;
  logs: LogCapture;
  logger: Logger;
}

/** The app as main.ts builds it, with authentication off unless clients are given. */
export function testApp(overrides: Partial<ServiceConfig> = {}, deps: Partial<AppDeps> = {}): TestApp {
  const config: ServiceConfig = { ...loadConfig({ CDS_BASE_URL: 'http://crd.test', NODE_ENV: 'test' }), ...overrides };
  const logs = new LogCapture();
  const logger = createLogger('info', logs);
  const app = createApp({ config, logger, registry: shippedRegistry(), services: shippedServices(), clients: undefined, ...deps });
  return { app, config, logs, logger };
}
