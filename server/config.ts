import os from 'node:os';
import path from 'node:path';

/**
 * Everything the service reads from its environment, parsed once at startup.
 * Each field is documented in the README's configuration table.
 */
export interface ServiceConfig {
  port: number;
  host: string;
  /** Public base URL (no trailing slash); used for JWT audiences and links on cards. */
  baseUrl: string;
  /** Where embedded state (the PGlite decision store) lives. */
  dataDir: string;
  logLevel: string;
  nodeEnv: string;
  /** Total time budget for all FHIR queries made while answering one hook call. */
  fhirDeadlineMs: number;
  /** Maximum number of search pages followed per query. */
  fhirMaxPages: number;
  maxBodyBytes: number;
  /** Maximum JSON nesting depth accepted in a request body. */
  maxJsonDepth: number;
  maxDraftOrders: number;
  /** Wall-clock limit for answering one request. */
  requestTimeoutMs: number;
  /** Path of the trusted CDS clients file (issue: trust and hardening). */
  trustedClientsFile: string | undefined;
  /** Origins allowed by CORS; "*" allows any (development only). */
  corsOrigins: string[];
  /** Requests per minute per client (iss, or remote address when auth is off). */
  rateLimitPerMinute: number;
  /** PostgreSQL connection string; when unset the embedded PGlite store is used. */
  databaseUrl: string | undefined;
  /** Days a decision record is retained before `npm run purge` removes it. */
  retentionDays: number;
  /** Keep every decision (default). Off only for benchmarks: CRD §found-37 requires the log. */
  decisionLog: boolean;
  /** A commit slower than this spools the decision to local disk instead of waiting. */
  decisionCommitTimeoutMs: number;
  /** Bearer token for GET /decisions/{id}; the endpoint is off when unset. */
  adminToken: string | undefined;
  /** Directory holding policy data files, the payer registry and terminology configuration. */
  policyDir: string;
  /** Threads answering hook calls beside the service's own (0: the service's thread answers them). */
  hookThreads: number;
}

/**
 * One hook thread per core beyond two, at most 4: the service's own thread (HTTP, authentication,
 * the decision log) and the embedded store's thread each keep a core. On two cores a hook thread
 * was measured to cost ~20 % more CPU per answer for ~5 % more throughput with the decision log
 * on, so there the service's thread answers (see README, "Hook threads").
 */
export function defaultHookThreads(cores = os.availableParallelism()): number {
  return Math.max(0, Math.min(4, cores - 2));
}

function intFrom(env: NodeJS.ProcessEnv, name: string, fallback: number, min = 0): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) {
    throw new Error(`Environment variable ${name} must be an integer >= ${min}, got "${raw}"`);
  }
  return value;
}

function listFrom(env: NodeJS.ProcessEnv, name: string): string[] {
  return (env[name] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): ServiceConfig {
  const port = intFrom(env, 'PORT', 3000);
  const host = env.HOST ?? '0.0.0.0';
  const baseUrl = (env.CDS_BASE_URL ?? `http://localhost:${port}`).replace(/\/+$/, '');
  try {
    new URL(baseUrl);
  } catch {
    throw new Error(`CDS_BASE_URL must be an absolute URL, got "${baseUrl}"`);
  }
  const root = path.resolve(import.meta.dirname, '..');
  return {
    port,
    host,
    baseUrl,
    dataDir: path.resolve(env.CDS_DATA_DIR ?? path.join(root, 'data')),
    logLevel: env.LOG_LEVEL ?? 'info',
    nodeEnv: env.NODE_ENV ?? 'development',
    fhirDeadlineMs: intFrom(env, 'FHIR_DEADLINE_MS', 3000, 1),
    fhirMaxPages: intFrom(env, 'FHIR_MAX_PAGES', 20, 1),
    maxBodyBytes: intFrom(env, 'MAX_BODY_BYTES', 2 * 1024 * 1024, 1024),
    maxJsonDepth: intFrom(env, 'MAX_JSON_DEPTH', 64, 8),
    maxDraftOrders: intFrom(env, 'MAX_DRAFT_ORDERS', 50, 1),
    requestTimeoutMs: intFrom(env, 'REQUEST_TIMEOUT_MS', 8000, 100),
    trustedClientsFile: env.CDS_TRUSTED_CLIENTS || undefined,
    corsOrigins: listFrom(env, 'CORS_ORIGINS'),
    rateLimitPerMinute: intFrom(env, 'RATE_LIMIT_PER_MINUTE', 6000, 1),
    databaseUrl: env.DATABASE_URL || undefined,
    retentionDays: intFrom(env, 'DECISION_RETENTION_DAYS', 3650, 1),
    decisionLog: (env.DECISION_LOG ?? 'on').toLowerCase() !== 'off',
    decisionCommitTimeoutMs: intFrom(env, 'DECISION_COMMIT_TIMEOUT_MS', 1500, 10),
    adminToken: env.CDS_ADMIN_TOKEN || undefined,
    policyDir: path.resolve(env.CDS_POLICY_DIR ?? path.join(root, 'policies')),
    hookThreads: intFrom(env, 'HOOK_THREADS', defaultHookThreads()),
  };
}
