import type { RequestHandler } from 'express';

/**
 * CORS for browser-based CDS clients (e.g. the CDS Hooks sandbox).
 *
 * Mount it FIRST, before client authentication: a preflight carries no Authorization header, so it
 * must be answered here (204) and never reach the JWT check. Because headers are set before
 * `next()`, every later response (200, 401, 429, 4xx) carries them too, so browsers can read errors.
 *
 * A disallowed origin gets no CORS headers at all: its preflight is still a 204 (without
 * Access-Control-Allow-*), which the browser treats as a refusal; its actual requests are processed
 * normally (the JWT decides), and the browser withholds the response from the page.
 */

const ALLOW_HEADERS = 'Authorization, Content-Type';
const ALLOW_METHODS = 'GET, POST, OPTIONS';
const MAX_AGE_SECONDS = '600';

/** Origins as browsers serialise them: scheme://host[:port], lowercase, no default port or slash. */
function normaliseOrigin(raw: string): string {
  const url = new URL(raw);
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error(`CORS origin must be http(s): ${raw}`);
  return url.origin;
}

export function createCors(origins: readonly string[]): RequestHandler {
  const any = origins.includes('*');
  const allowed = new Set(origins.filter((o) => o !== '*').map(normaliseOrigin));

  return (req, res, next) => {
    const origin = req.headers.origin;
    const isAllowed = origin !== undefined && (any || allowed.has(origin));
    // Responses differ by Origin, so shared caches must key on it.
    res.vary('Origin');
    if (isAllowed) {
      res.setHeader('Access-Control-Allow-Origin', any ? '*' : origin);
      res.setHeader('Access-Control-Expose-Headers', 'Retry-After');
    }

    if (req.method !== 'OPTIONS') {
      next();
      return;
    }
    // Every OPTIONS (preflight or not) ends here, unauthenticated, with no body.
    if (isAllowed && req.headers['access-control-request-method'] !== undefined) {
      res.setHeader('Access-Control-Allow-Methods', ALLOW_METHODS);
      res.setHeader('Access-Control-Allow-Headers', ALLOW_HEADERS);
      res.setHeader('Access-Control-Max-Age', MAX_AGE_SECONDS);
    }
    res.setHeader('Allow', ALLOW_METHODS);
    res.status(204).end();
  };
}
