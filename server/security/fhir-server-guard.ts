import type { TrustedClient } from './trusted-clients.ts';

/**
 * Keeps the service from becoming a way into other servers (SSRF): a FHIR server URL is used only
 * when it lies under one of the calling client's configured prefixes, and every outgoing request
 * (including redirects and paging `next` links) stays on that server's origin.
 */

/** Thrown instead of sending a request that would leave the allowed origin. */
export class BlockedRequestError extends Error {
  readonly reason: 'cross_origin' | 'cross_origin_redirect' | 'too_many_redirects' | 'invalid_url';

  constructor(reason: BlockedRequestError['reason'], message: string) {
    super(message);
    this.name = 'BlockedRequestError';
    this.reason = reason;
  }
}

/** Encoded `/` or `\` in a path lets a server see a different segment structure than we checked. */
const ENCODED_SEPARATOR = /%2f|%5c/i;

interface NormalisedBase {
  origin: string;
  /** Path ending in exactly one `/`, so prefix tests stop at segment boundaries. */
  path: string;
}

/**
 * Parses an http(s) base URL strictly. WHATWG URL parsing already lowercases scheme and host,
 * drops default ports and resolves dot segments (including `%2e%2e`).
 */
export function normaliseBaseUrl(raw: string): NormalisedBase | undefined {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return undefined;
  if (url.username !== '' || url.password !== '') return undefined;
  if (url.search !== '' || url.hash !== '' || raw.includes('#') || raw.includes('?')) return undefined;
  if (ENCODED_SEPARATOR.test(url.pathname)) return undefined;
  const path = url.pathname.endsWith('/') ? url.pathname : `${url.pathname}/`;
  return { origin: url.origin, path };
}

/**
 * Whether `fhirServer` may be contacted on behalf of `client`.
 * With authentication off (client undefined, development only) every http(s) URL is allowed.
 */
export function isFhirServerAllowed(client: TrustedClient | undefined, fhirServer: string): boolean {
  const candidate = normaliseBaseUrl(fhirServer);
  if (candidate === undefined) return false;
  if (client === undefined) return true;
  return client.fhirServers.some((prefix) => {
    const allowed = normaliseBaseUrl(prefix);
    return allowed !== undefined && allowed.origin === candidate.origin && candidate.path.startsWith(allowed.path);
  });
}

function originOf(raw: string | URL): string | undefined {
  try {
    const url = raw instanceof URL ? raw : new URL(raw);
    if (url.protocol !== 'https:' && url.protocol !== 'http:') return undefined;
    return url.origin;
  } catch {
    return undefined;
  }
}

/** Same scheme, host and port (after normalisation); false for anything unparsable or non-http(s). */
export function isSameOrigin(a: string | URL, b: string | URL): boolean {
  const oa = originOf(a);
  return oa !== undefined && oa === originOf(b);
}

export interface GuardedFetchOptions {
  /** Same-origin redirects followed before giving up; 0 follows none. Default 5. */
  maxRedirects?: number;
  /** Underlying fetch (tests); defaults to the global fetch. */
  fetchImpl?: typeof fetch;
}

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

/**
 * A fetch that only talks to `allowedOrigin`. It always sends `redirect: 'manual'` and follows
 * same-origin redirects itself, so a server cannot bounce us (with the EHR's bearer token) elsewhere.
 */
export function createGuardedFetch(allowedOrigin: string, options: GuardedFetchOptions = {}): typeof fetch {
  const origin = originOf(allowedOrigin);
  if (origin === undefined) throw new TypeError(`createGuardedFetch: not an http(s) URL: ${allowedOrigin}`);
  const maxRedirects = options.maxRedirects ?? 5;
  const fetchImpl = options.fetchImpl ?? fetch;

  const guarded = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const initial = new Request(input, init);
    let url = initial.url;
    let method = initial.method;
    const headers = new Headers(initial.headers);
    // Buffered so 307/308 can resend it; request bodies here are small searches.
    let body: ArrayBuffer | undefined = initial.body === null ? undefined : await initial.arrayBuffer();
    const signal = initial.signal;

    for (let hop = 0; ; hop++) {
      if (originOf(url) !== origin) {
        throw new BlockedRequestError(hop === 0 ? 'cross_origin' : 'cross_origin_redirect', `Request to another origin refused (allowed: ${origin})`);
      }
      const response = await fetchImpl(url, { method, headers, body, signal, redirect: 'manual' });
      const location = response.headers.get('location');
      if (!REDIRECT_STATUSES.has(response.status) || location === null) return response;

      let next: string;
      try {
        next = new URL(location, url).href;
      } catch {
        await response.body?.cancel();
        throw new BlockedRequestError('invalid_url', 'Redirect with an invalid Location refused');
      }
      await response.body?.cancel();
      if (originOf(next) !== origin) {
        throw new BlockedRequestError('cross_origin_redirect', `Redirect to another origin refused (allowed: ${origin})`);
      }
      if (hop >= maxRedirects) {
        throw new BlockedRequestError('too_many_redirects', `More than ${maxRedirects} redirects`);
      }
      // Fetch-standard method rewriting: 303 always, 301/302 for POST, become a body-less GET.
      if (response.status === 303 || ((response.status === 301 || response.status === 302) && method === 'POST')) {
        if (method !== 'HEAD') method = 'GET';
        body = undefined;
        headers.delete('content-type');
        headers.delete('content-length');
      }
      url = next;
    }
  };
  return guarded;
}

/**
 * For fhir-kit-client, which calls the global fetch itself: pass the result's `requestSigner`
 * (runs before every request, including `nextPage` with absolute `next` links) and
 * `requestOptions`. Redirects are not followed at all (fhir-kit-client then reports the 3xx as an
 * error), because fhir-kit-client gives no hook to check a redirect target.
 */
export function createFhirKitGuard(allowedOrigin: string): {
  requestOptions: { redirect: 'manual' };
  requestSigner: (url: string, init: RequestInit) => void;
} {
  const origin = originOf(allowedOrigin);
  if (origin === undefined) throw new TypeError(`createFhirKitGuard: not an http(s) URL: ${allowedOrigin}`);
  return {
    requestOptions: { redirect: 'manual' },
    requestSigner: (url, init) => {
      if (originOf(url) !== origin) {
        throw new BlockedRequestError('cross_origin', `Request to another origin refused (allowed: ${origin})`);
      }
      // Per-call options could have overridden the client-wide setting; force it last.
      init.redirect = 'manual';
    },
  };
}
