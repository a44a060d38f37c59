/**
 * Text scrubbing for things pino's path-based redaction cannot see: error messages and URLs that
 * embed tokens (e.g. fhir-kit-client's "HTTP 401: GET https://…?access_token=…").
 */

const REDACTED = '[redacted]';

/** Header-style `Authorization: <anything>` up to the end of the value. */
const AUTHORIZATION_VALUE = /(authorization["']?\s*[:=]\s*["']?)[^"'\r\n,}]+/gi;
/** Credentials after an auth scheme, wherever they appear. */
const SCHEME_CREDENTIALS = /\b(Bearer|Basic|DPoP)\s+[A-Za-z0-9._~+/=-]+/gi;
/** JWS/JWE compact form: base64url JSON header (`{"` → `eyJ`) followed by 2–4 more segments. */
const JOSE_COMPACT = /\beyJ[A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]*){2,4}/g;
/** Any other three long base64url segments (headers serialised with whitespace, odd encoders). */
const LONG_THREE_SEGMENTS = /\b[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]{20,}\b/g;
/** Secret-bearing parameters in query strings, form bodies and JSON. `code` is left alone: FHIR search uses it. */
const SECRET_PARAMS =
  /\b(access_token|id_token|refresh_token|client_secret|client_assertion|assertion|password|api_key|apikey|jwt|token)(["']?\s*[:=]\s*["']?)[^\s&"',;}]+/gi;
/** user:password@ in URLs. */
const URL_USERINFO = /\b(https?:\/\/)[^/\s@]+@/gi;

export function scrubSecrets(text: string): string {
  return text
    .replace(AUTHORIZATION_VALUE, `$1${REDACTED}`)
    .replace(SCHEME_CREDENTIALS, `$1 ${REDACTED}`)
    .replace(JOSE_COMPACT, REDACTED)
    .replace(LONG_THREE_SEGMENTS, REDACTED)
    .replace(SECRET_PARAMS, `$1$2${REDACTED}`)
    .replace(URL_USERINFO, `$1${REDACTED}@`);
}

/** An error's message made safe to log, shortened to `max` characters. */
export function safeErrorMessage(err: unknown, max = 500): string {
  const raw = err instanceof Error ? `${err.name}: ${err.message}` : typeof err === 'string' ? err : 'non-Error thrown';
  const scrubbed = scrubSecrets(raw);
  return scrubbed.length > max ? `${scrubbed.slice(0, max)}…` : scrubbed;
}

/**
 * Extra pino redact paths this module's review suggests for server/logger.ts (not applied here:
 * that file belongs to the HTTP layer). pino wildcards match one level, hence the explicit depths.
 */
export const SUGGESTED_EXTRA_REDACT_PATHS = [
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'res.headers["set-cookie"]',
  '*.headers.authorization',
  '*.headers.Authorization',
  'Authorization',
  '*.Authorization',
  '*.*.access_token',
  '*.*.fhirAuthorization',
  'refresh_token',
  '*.refresh_token',
  'id_token',
  '*.id_token',
  'context',
  '*.context',
  'draftOrders',
  '*.draftOrders',
];
