import type { Request, RequestHandler, Response } from 'express';
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  customFetch,
  decodeJwt,
  decodeProtectedHeader,
  errors,
  jwtVerify,
  type JWTVerifyGetKey,
  type ProtectedHeaderParameters,
} from 'jose';
import type { Logger } from '../logger.ts';
import { operationOutcome } from '../http/operation-outcome.ts';
import { ALLOWED_JWS_ALGORITHMS, isAllowedJwsAlgorithm } from './algorithms.ts';
import { createGuardedFetch } from './fhir-server-guard.ts';
import { scrubSecrets } from './redaction.ts';
import { ReplayCache } from './replay-cache.ts';
import type { TrustedClient } from './trusted-clients.ts';

/**
 * Authenticates CDS clients by the JWT they send as `Authorization: Bearer` (CDS Hooks 2.0
 * "Trusting CDS Clients"). jose does all cryptography; this module chooses keys and checks claims.
 */

type RequiredClaim = 'iss' | 'aud' | 'exp' | 'iat' | 'jti';

/** Logged server-side only; the caller always gets the same bare 401. */
export type AuthFailureReason =
  | 'auth_disabled'
  | 'missing_token'
  | 'not_bearer'
  | 'jwt_too_large'
  | 'jwt_malformed'
  | 'jwt_alg_not_allowed'
  | 'jwt_bad_typ'
  | 'jwt_missing_kid'
  | 'jwt_unknown_iss'
  | 'jwt_jku_not_allowed'
  | 'jwt_no_key_source'
  | 'jwt_unknown_kid'
  | 'jwt_ambiguous_kid'
  | 'jwt_bad_signature'
  | 'jwt_jwks_unavailable'
  | `jwt_missing_${RequiredClaim}`
  | 'jwt_bad_claim'
  | 'jwt_iss_mismatch'
  | 'jwt_aud_mismatch'
  | 'jwt_expired'
  | 'jwt_not_yet_valid'
  | 'jwt_iat_in_future'
  | 'jwt_too_old'
  | 'jwt_lifetime_too_long'
  | 'jwt_bad_jti'
  | 'jwt_replay'
  | 'jwt_replay_cache_full'
  | 'jwt_verify_error';

export type VerifyResult =
  | { ok: true; iss: string; client: TrustedClient }
  | { ok: false; reason: AuthFailureReason; iss?: string };

export interface ClientAuthOptions {
  /** undefined = authentication off (development only; see authMode). */
  clients: readonly TrustedClient[] | undefined;
  /** Public base URL of this service; `aud` must be baseUrl + the request path. */
  baseUrl: string;
  logger: Logger;
  /** Clock in epoch milliseconds (tests). */
  now?: () => number;
  /** Underlying fetch for `jku` JWKS downloads (tests); always wrapped by the origin guard. */
  fetchJwks?: typeof fetch;
  /** Tolerated clock difference for exp/iat. Default 60. */
  clockSkewSeconds?: number;
  /** Largest accepted exp - iat, and oldest accepted iat. Default 3600 (CDS Hooks: at most an hour). */
  maxLifetimeSeconds?: number;
  /** Bound on remembered (iss, jti) pairs. Default 100000. */
  replayCacheSize?: number;
  /** jose cooldown before an unknown kid may trigger another JWKS download. Default 30000. */
  jwksCooldownMs?: number;
  /** jose cache age after which a JWKS is downloaded again. Default 600000. */
  jwksCacheMaxAgeMs?: number;
  /** Timeout for one JWKS download. Default 3000. */
  jwksTimeoutMs?: number;
}

/** The middleware, callable directly by Express, plus `verify` for tests and other callers. */
export type ClientAuthenticator = RequestHandler & {
  readonly enabled: boolean;
  verify(authorization: string | undefined, requestPath: string): Promise<VerifyResult>;
};

/** Same body for every failure, so the response says nothing about why (CDS Hooks best practice). */
const UNAUTHORIZED_BODY = operationOutcome([{ code: 'login', diagnostics: 'Authentication required' }]);
const MAX_TOKEN_CHARS = 8192;
const MAX_JTI_CHARS = 256;
const BEARER = /^Bearer +(\S+) *$/i;

/** Failure reason carried through jose's key resolver. */
class KeySelectionError extends Error {
  constructor(readonly reason: AuthFailureReason) {
    super(reason);
  }
}

function isJwtTyp(typ: unknown): boolean {
  if (typeof typ !== 'string') return false;
  const t = typ.toLowerCase();
  return t === 'jwt' || t === 'application/jwt';
}

/** Path of the endpoint as clients address it: no query, no trailing slash. */
export function requestPathOf(req: Request): string {
  const raw = req.originalUrl || req.url;
  let path = raw.split('?')[0] ?? '';
  if (/^https?:\/\//i.test(path)) {
    try {
      path = new URL(path).pathname;
    } catch {
      path = '';
    }
  }
  return path.replace(/\/+$/, '');
}

function reasonFromJoseError(err: unknown): AuthFailureReason {
  if (err instanceof KeySelectionError) return err.reason;
  if (err instanceof errors.JOSEAlgNotAllowed || err instanceof errors.JOSENotSupported) return 'jwt_alg_not_allowed';
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'jwt_bad_signature';
  if (err instanceof errors.JWKSNoMatchingKey) return 'jwt_unknown_kid';
  if (err instanceof errors.JWKSMultipleMatchingKeys) return 'jwt_ambiguous_kid';
  if (err instanceof errors.JWTExpired) return err.claim === 'iat' ? 'jwt_too_old' : 'jwt_expired';
  if (err instanceof errors.JWTClaimValidationFailed) {
    const claim = err.claim;
    if (err.reason === 'missing' && (claim === 'iss' || claim === 'aud' || claim === 'exp' || claim === 'iat' || claim === 'jti')) {
      return `jwt_missing_${claim}`;
    }
    if (claim === 'typ') return 'jwt_bad_typ';
    if (err.reason === 'check_failed') {
      if (claim === 'aud') return 'jwt_aud_mismatch';
      if (claim === 'iss') return 'jwt_iss_mismatch';
      if (claim === 'iat') return 'jwt_iat_in_future';
      if (claim === 'nbf') return 'jwt_not_yet_valid';
    }
    return 'jwt_bad_claim';
  }
  if (err instanceof errors.JWTInvalid || err instanceof errors.JWSInvalid) return 'jwt_malformed';
  // Download problems: timeout, non-200, invalid JWKS, refused origin, network errors.
  if (err instanceof errors.JWKSTimeout || err instanceof errors.JWKSInvalid) return 'jwt_jwks_unavailable';
  if (err instanceof errors.JOSEError && err.code === 'ERR_JOSE_GENERIC') return 'jwt_jwks_unavailable';
  if (err instanceof TypeError || (err instanceof Error && err.name === 'BlockedRequestError')) return 'jwt_jwks_unavailable';
  return 'jwt_verify_error';
}

/** Claim values from an unverified token are logged only shortened and scrubbed. */
function loggable(value: string): string {
  return scrubSecrets(value.length > 200 ? `${value.slice(0, 200)}…` : value);
}

export function createClientAuthenticator(options: ClientAuthOptions): ClientAuthenticator {
  const { logger } = options;
  const now = options.now ?? Date.now;
  const baseUrl = options.baseUrl.replace(/\/+$/, '');
  const skew = options.clockSkewSeconds ?? 60;
  const maxLifetime = options.maxLifetimeSeconds ?? 3600;
  const replay = new ReplayCache(options.replayCacheSize ?? 100_000);
  const enabled = options.clients !== undefined;

  const clientsByIss = new Map<string, TrustedClient>();
  const localSets = new Map<string, JWTVerifyGetKey>();
  for (const client of options.clients ?? []) {
    clientsByIss.set(client.iss, client);
    if (client.jwks) localSets.set(client.iss, createLocalJWKSet(client.jwks));
  }

  // One jose remote set per allowlisted URL, so its cache and cooldown survive across requests.
  const remoteSets = new Map<string, JWTVerifyGetKey>();
  function remoteSet(url: string): JWTVerifyGetKey {
    let set = remoteSets.get(url);
    if (!set) {
      // Only the exact allowlisted URL is fetched: same origin enforced, no redirects followed.
      const guarded = createGuardedFetch(url, { maxRedirects: 0, ...(options.fetchJwks ? { fetchImpl: options.fetchJwks } : {}) });
      set = createRemoteJWKSet(new URL(url), {
        cooldownDuration: options.jwksCooldownMs ?? 30_000,
        cacheMaxAge: options.jwksCacheMaxAgeMs ?? 600_000,
        timeoutDuration: options.jwksTimeoutMs ?? 3_000,
        [customFetch]: (input, init) => guarded(input, init),
      });
      remoteSets.set(url, set);
    }
    return set;
  }

  function keyFor(client: TrustedClient, header: ProtectedHeaderParameters): JWTVerifyGetKey {
    const local = localSets.get(client.iss);
    if (header.jku !== undefined) {
      // Never contact a URL the token names unless this client's configuration lists it exactly.
      if (typeof header.jku !== 'string' || !(client.jku ?? []).includes(header.jku)) {
        throw new KeySelectionError('jwt_jku_not_allowed');
      }
      const remote = remoteSet(header.jku);
      if (!local) return remote;
      // Configured keys first (no network), then the client's published set (rotation).
      return async (h, t) => {
        try {
          return await local(h, t);
        } catch (err) {
          if (err instanceof errors.JWKSNoMatchingKey) return remote(h, t);
          throw err;
        }
      };
    }
    if (local) return local;
    const only = client.jku?.length === 1 ? client.jku[0] : undefined;
    if (only !== undefined) return remoteSet(only);
    throw new KeySelectionError('jwt_no_key_source');
  }

  async function check(authorization: string | undefined, requestPath: string): Promise<VerifyResult> {
    if (!enabled) return { ok: false, reason: 'auth_disabled' };
    if (authorization === undefined || authorization === '') return { ok: false, reason: 'missing_token' };
    if (authorization.length > MAX_TOKEN_CHARS) return { ok: false, reason: 'jwt_too_large' };
    const token = BEARER.exec(authorization)?.[1];
    if (token === undefined) return { ok: false, reason: 'not_bearer' };

    let header: ProtectedHeaderParameters;
    let unverifiedIss: unknown;
    try {
      header = decodeProtectedHeader(token);
      unverifiedIss = decodeJwt(token).iss;
    } catch {
      return { ok: false, reason: 'jwt_malformed' };
    }
    if (!isAllowedJwsAlgorithm(header.alg)) return { ok: false, reason: 'jwt_alg_not_allowed' };
    if (!isJwtTyp(header.typ)) return { ok: false, reason: 'jwt_bad_typ' };
    if (typeof header.kid !== 'string' || header.kid === '') return { ok: false, reason: 'jwt_missing_kid' };
    if (typeof unverifiedIss !== 'string' || unverifiedIss === '') return { ok: false, reason: 'jwt_missing_iss' };

    // The unverified iss only selects whose keys to try; nothing is trusted before the signature.
    const client = clientsByIss.get(unverifiedIss);
    if (!client) return { ok: false, reason: 'jwt_unknown_iss', iss: unverifiedIss };
    const iss = client.iss;

    const expectedAud = `${baseUrl}${requestPath.replace(/\/+$/, '')}`;
    let payload;
    try {
      const key = keyFor(client, header);
      ({ payload } = await jwtVerify(token, key, {
        algorithms: [...ALLOWED_JWS_ALGORITHMS],
        typ: 'JWT',
        issuer: iss,
        audience: [expectedAud, `${expectedAud}/`],
        requiredClaims: ['iss', 'aud', 'exp', 'iat', 'jti'],
        clockTolerance: skew,
        maxTokenAge: maxLifetime,
        currentDate: new Date(now()),
      }));
    } catch (err) {
      return { ok: false, reason: reasonFromJoseError(err), iss };
    }

    const { exp, iat, jti } = payload;
    if (typeof exp !== 'number' || typeof iat !== 'number' || !Number.isFinite(exp) || !Number.isFinite(iat)) {
      return { ok: false, reason: 'jwt_bad_claim', iss };
    }
    if (exp - iat > maxLifetime) return { ok: false, reason: 'jwt_lifetime_too_long', iss };
    if (typeof jti !== 'string' || jti.length === 0 || jti.length > MAX_JTI_CHARS) return { ok: false, reason: 'jwt_bad_jti', iss };

    // Only tokens that passed every other check reach the cache, so forgeries cannot fill it.
    const remembered = replay.remember(iss, jti, (exp + skew) * 1000, now());
    if (remembered === 'replay') return { ok: false, reason: 'jwt_replay', iss };
    if (remembered === 'full') return { ok: false, reason: 'jwt_replay_cache_full', iss };
    return { ok: true, iss, client };
  }

  async function verify(authorization: string | undefined, requestPath: string): Promise<VerifyResult> {
    let result: VerifyResult;
    try {
      result = await check(authorization, requestPath);
    } catch {
      result = { ok: false, reason: 'jwt_verify_error' };
    }
    if (result.ok) {
      logger.debug({ event: 'client_auth_ok', clientIss: result.iss, path: requestPath }, 'CDS client authenticated');
    } else if (result.reason !== 'auth_disabled') {
      // Never the token: only the reason, the issuer if one was named, and the path.
      logger.warn(
        { event: 'client_auth_failed', reason: result.reason, ...(result.iss !== undefined ? { clientIss: loggable(result.iss) } : {}), path: requestPath },
        'CDS client authentication failed',
      );
    }
    return result;
  }

  if (!enabled) {
    logger.warn(
      { event: 'client_auth_disabled' },
      '*** CDS CLIENT AUTHENTICATION IS OFF: CDS_TRUSTED_CLIENTS is not set, so any caller can invoke these services. Development only. ***',
    );
  }

  const middleware: RequestHandler = (req, res, next) => {
    if (!enabled) {
      next();
      return;
    }
    void verify(req.headers.authorization, requestPathOf(req)).then((result) => {
      if (!result.ok) {
        rejectUnauthorized(res);
        return;
      }
      res.locals.clientIss = result.iss;
      res.locals.client = result.client;
      next();
    }).catch(() => rejectUnauthorized(res));
  };

  return Object.assign(middleware, { enabled, verify });
}

function rejectUnauthorized(res: Response): void {
  if (res.headersSent) return;
  res.status(401).set('WWW-Authenticate', 'Bearer').json(UNAUTHORIZED_BODY);
}

/** The authenticated client for this request, or undefined when authentication is off. */
export function authenticatedClient(res: Response): TrustedClient | undefined {
  const client: unknown = res.locals.client;
  return typeof client === 'object' && client !== null ? (client as TrustedClient) : undefined;
}
