import { readFileSync } from 'node:fs';
import { PREFETCH_KEYS } from '../gather/gather.ts';
import type { PrefetchTemplateService } from './types.ts';
import type { OrderHook } from './validate.ts';

export interface ServiceDefinition extends PrefetchTemplateService {
  hook: OrderHook;
  prefetch: Record<string, string>;
}

const TOKEN = /\{\{\s*([^}]+?)\s*\}\}/g;
const ALLOWED_TOKENS = /^(context\.(patientId|encounterId|userId)|userPractitionerId|userPractitionerRoleId|userPatientId|userRelatedPersonId)$/;

/**
 * The discovery document (cds-services.json), served as is and used to route calls. Startup
 * fails if a service names a hook we do not implement, a prefetch key the gatherer does not
 * understand, or a token outside CDS Hooks 2.0.
 */
export class ServiceCatalog {
  readonly document: { services: ServiceDefinition[] };
  readonly json: string;
  private readonly byId = new Map<string, ServiceDefinition>();

  constructor(file: string) {
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as { services?: unknown };
    if (!Array.isArray(parsed.services)) throw new Error(`${file}: "services" must be an array`);
    const services = parsed.services as ServiceDefinition[];
    for (const service of services) {
      if (service.hook !== 'order-sign' && service.hook !== 'order-select') {
        throw new Error(`${file}: service ${service.id} uses hook ${String(service.hook)}, which this service does not implement`);
      }
      for (const [key, template] of Object.entries(service.prefetch ?? {})) {
        if (!PREFETCH_KEYS[key]) throw new Error(`${file}: service ${service.id} prefetch key "${key}" is not understood by the gatherer`);
        for (const m of template.matchAll(TOKEN)) {
          if (!ALLOWED_TOKENS.test(m[1]!)) throw new Error(`${file}: prefetch ${key} uses "${m[1]}", not a CDS Hooks 2.0 token`);
        }
      }
      if (this.byId.has(service.id)) throw new Error(`${file}: duplicate service id ${service.id}`);
      this.byId.set(service.id, service);
    }
    this.document = { services };
    // Served compact: CRD §found-40 asks for no non-significant whitespace.
    this.json = JSON.stringify(this.document);
  }

  get(id: string): ServiceDefinition | undefined {
    return this.byId.get(id);
  }

  ids(): Set<string> {
    return new Set(this.byId.keys());
  }
}
