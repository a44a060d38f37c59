/**
 * fhir-kit-client logs request headers, including the EHR's `Authorization: Bearer` token, through
 * the `debug` package when DEBUG enables `fhir-kit-client:*`. That output bypasses pino's redaction.
 *
 * `debug` reads DEBUG once, when it is first imported, so this must run before anything imports
 * fhir-kit-client: import `./debug-guard-preload.ts` as the very first import of the entry point
 * (ESM evaluates imports in order), or preload it with `node --import`.
 */

/** Namespaces fhir-kit-client 2.x creates (dist/logging.js); both can print headers. */
const LEAKING_NAMESPACES = ['fhir-kit-client:info', 'fhir-kit-client:error'];
const SUPPRESS = '-fhir-kit-client:*';

function matches(namespace: string, template: string): boolean {
  const pattern = template.split('*').map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*');
  return new RegExp(`^${pattern}$`).test(namespace);
}

/** Mirrors debug 4's rule: a `-pattern` skip wins over any enabling pattern. */
export function debugEnables(debugValue: string | undefined, namespace: string): boolean {
  const parts = (debugValue ?? '').trim().replace(/\s+/g, ',').split(',').filter(Boolean);
  const skips = parts.filter((p) => p.startsWith('-')).map((p) => p.slice(1));
  const names = parts.filter((p) => !p.startsWith('-'));
  if (skips.some((s) => matches(namespace, s))) return false;
  return names.some((n) => matches(namespace, n));
}

/**
 * In production, throws if DEBUG would print fhir-kit-client's token-bearing logs (refuse to start).
 * Elsewhere, appends `-fhir-kit-client:*` to env.DEBUG so other debug output keeps working.
 * Returns whether env.DEBUG was changed, so the caller can log it once a logger exists.
 */
export function assertNoTokenLeakingDebug(env: NodeJS.ProcessEnv = process.env): { stripped: boolean } {
  const value = env.DEBUG;
  if (!LEAKING_NAMESPACES.some((ns) => debugEnables(value, ns))) return { stripped: false };
  if (env.NODE_ENV === 'production') {
    throw new Error('Refusing to start: DEBUG enables fhir-kit-client logging, which prints bearer tokens. Remove fhir-kit-client from DEBUG.');
  }
  env.DEBUG = `${value ?? ''},${SUPPRESS}`;
  return { stripped: true };
}
