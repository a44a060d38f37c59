import { readFileSync } from 'node:fs';
import { Ajv, type ErrorObject } from 'ajv';
import { createLocalJWKSet, type JSONWebKeySet, type JWK } from 'jose';
import type { ServiceConfig } from '../config.ts';
import { ALLOWED_JWS_ALGORITHMS } from './algorithms.ts';
import { normaliseBaseUrl } from './fhir-server-guard.ts';

/** One CDS client (EHR) this service trusts, from the file named by CDS_TRUSTED_CLIENTS. */
export interface TrustedClient {
  /** Exact `iss` claim the client puts in its JWTs. */
  iss: string;
  /** Optional human label for logs. */
  name?: string;
  /** Public keys exchanged out of band. */
  jwks?: JSONWebKeySet;
  /** JWKS URLs the client may name in its JWT `jku` header (exact match). */
  jku?: string[];
  /** URL prefixes this client's `fhirServer` may have; empty means never contact a FHIR server. */
  fhirServers: string[];
}

export interface LoadTrustedClientsOptions {
  /** Require https for `jku` and `fhirServers` (pass true in production). */
  requireHttps?: boolean;
}

const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'] as const;

const jwkSchema = {
  type: 'object',
  required: ['kty', 'kid'],
  properties: {
    kty: { type: 'string', enum: ['EC', 'RSA'] },
    kid: { type: 'string', minLength: 1 },
    alg: { type: 'string', enum: [...ALLOWED_JWS_ALGORITHMS] },
    use: { type: 'string', const: 'sig' },
  },
} as const;

const clientSchema = {
  type: 'object',
  required: ['iss', 'fhirServers'],
  additionalProperties: false,
  properties: {
    iss: { type: 'string', minLength: 1 },
    name: { type: 'string' },
    jwks: {
      type: 'object',
      required: ['keys'],
      properties: { keys: { type: 'array', minItems: 1, items: jwkSchema } },
    },
    jku: { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } },
    fhirServers: { type: 'array', items: { type: 'string', minLength: 1 } },
  },
} as const;

const fileSchema = { type: 'array', minItems: 1, items: clientSchema } as const;

const ajv = new Ajv({ allErrors: false, strict: true });
const validateFile = ajv.compile<TrustedClient[]>(fileSchema);

/** `/0/jwks/keys/2/kid` → `[0].jwks.keys[2].kid`, so the message names the field a human edits. */
function fieldPath(pointer: string): string {
  return pointer
    .split('/')
    .slice(1)
    .map((seg) => seg.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((seg) => (/^\d+$/.test(seg) ? `[${seg}]` : `.${seg}`))
    .join('')
    .replace(/^\./, '');
}

function describeAjvError(error: ErrorObject): string {
  const params = error.params as Record<string, unknown>;
  let field = fieldPath(error.instancePath);
  if (error.keyword === 'required' && typeof params.missingProperty === 'string') {
    field = `${field}${field ? '.' : ''}${params.missingProperty}`;
    return `${field}: is required`;
  }
  if (error.keyword === 'additionalProperties' && typeof params.additionalProperty === 'string') {
    return `${field}${field ? '.' : ''}${params.additionalProperty}: unknown field`;
  }
  const allowed = Array.isArray(params.allowedValues) ? ` (${params.allowedValues.join(', ')})` : '';
  return `${field || '(top level)'}: ${error.message ?? 'is invalid'}${allowed}`;
}

function checkUrl(value: string, field: string, requireHttps: boolean): string | undefined {
  if (normaliseBaseUrl(value) === undefined) {
    return `${field}: must be an absolute http(s) URL without credentials, query or fragment`;
  }
  if (requireHttps && !value.toLowerCase().startsWith('https:')) return `${field}: must use https`;
  return undefined;
}

/** Checks that JSON Schema cannot express; returns the first problem found. */
function semanticProblem(clients: TrustedClient[], requireHttps: boolean): string | undefined {
  const seenIss = new Set<string>();
  for (const [i, client] of clients.entries()) {
    if (seenIss.has(client.iss)) return `[${i}].iss: duplicate issuer "${client.iss}"`;
    seenIss.add(client.iss);
    if (client.jwks === undefined && client.jku === undefined) return `[${i}]: needs "jwks" or "jku" (or both)`;
    for (const [j, url] of (client.jku ?? []).entries()) {
      const problem = checkUrl(url, `[${i}].jku[${j}]`, requireHttps);
      if (problem) return problem;
    }
    for (const [j, url] of client.fhirServers.entries()) {
      const problem = checkUrl(url, `[${i}].fhirServers[${j}]`, requireHttps);
      if (problem) return problem;
    }
    if (client.jwks) {
      const kids = new Set<string>();
      for (const [k, jwk] of client.jwks.keys.entries()) {
        const record = jwk as JWK & Record<string, unknown>;
        const secret = PRIVATE_JWK_MEMBERS.find((m) => record[m] !== undefined);
        if (secret) return `[${i}].jwks.keys[${k}].${secret}: private key material must not be configured`;
        const kid = jwk.kid ?? '';
        if (kids.has(kid)) return `[${i}].jwks.keys[${k}].kid: duplicate kid "${kid}"`;
        kids.add(kid);
      }
      try {
        createLocalJWKSet(client.jwks);
      } catch (err) {
        return `[${i}].jwks: ${err instanceof Error ? err.message : 'invalid JWK Set'}`;
      }
    }
  }
  return undefined;
}

/** Parses and validates a trusted clients document; throws an Error naming `source` and the field. */
export function parseTrustedClients(json: unknown, source: string, options: LoadTrustedClientsOptions = {}): TrustedClient[] {
  if (!validateFile(json)) {
    const first = validateFile.errors?.[0];
    throw new Error(`Trusted clients file ${source}: ${first ? describeAjvError(first) : 'invalid'}`);
  }
  const problem = semanticProblem(json, options.requireHttps ?? false);
  if (problem) throw new Error(`Trusted clients file ${source}: ${problem}`);
  return json;
}

export function loadTrustedClients(path: string, options: LoadTrustedClientsOptions = {}): TrustedClient[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`Trusted clients file ${path}: cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`Trusted clients file ${path}: not valid JSON (${err instanceof Error ? err.message : 'parse error'})`);
  }
  return parseTrustedClients(json, path, options);
}

export type AuthMode = 'enforced' | 'off';

/**
 * Production refuses to run without trusted clients; development without a clients file runs
 * with authentication off (createClientAuthenticator then logs a warning).
 */
export function authMode(config: Pick<ServiceConfig, 'nodeEnv'>, clients: readonly TrustedClient[] | undefined): AuthMode {
  const hasClients = clients !== undefined && clients.length > 0;
  if (config.nodeEnv === 'production' && !hasClients) {
    throw new Error('Refusing to start: NODE_ENV=production requires trusted CDS clients (set CDS_TRUSTED_CLIENTS)');
  }
  return clients === undefined ? 'off' : 'enforced';
}

/** Startup helper: loads CDS_TRUSTED_CLIENTS (if set) and applies the authMode policy. */
export function resolveTrustedClients(config: Pick<ServiceConfig, 'nodeEnv' | 'trustedClientsFile'>): {
  mode: AuthMode;
  clients: TrustedClient[] | undefined;
} {
  const clients = config.trustedClientsFile
    ? loadTrustedClients(config.trustedClientsFile, { requireHttps: config.nodeEnv === 'production' })
    : undefined;
  return { mode: authMode(config, clients), clients };
}
