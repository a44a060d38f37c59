/**
 * Signature algorithms accepted on CDS client JWTs. CDS Hooks recommends ES384 and RS384; `none` and
 * every HMAC algorithm are forbidden (a shared secret would let anyone holding the JWKS forge tokens).
 */
export const ALLOWED_JWS_ALGORITHMS = ['ES384', 'RS384', 'ES256', 'RS256', 'PS384'] as const;

export type AllowedJwsAlgorithm = (typeof ALLOWED_JWS_ALGORITHMS)[number];

export function isAllowedJwsAlgorithm(alg: unknown): alg is AllowedJwsAlgorithm {
  return typeof alg === 'string' && (ALLOWED_JWS_ALGORITHMS as readonly string[]).includes(alg);
}
