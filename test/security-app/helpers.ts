import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import type { Express } from 'express';
import type { TrustedClient } from '../../server/security/trusted-clients.ts';
import { signToken, type TestKey, type TokenOptions } from '../security/helpers.ts';

/**
 * Shared pieces for the whole-service security tests: the app is built exactly as main.ts builds it
 * (test/support/app.ts), and the tokens are real JWTs signed with jose.
 */

/** testApp's CDS_BASE_URL; audiences are this plus the request path. */
export const BASE = 'http://crd.test';
export const ISS_A = 'https://ehr-a.example.org';
export const ISS_B = 'https://ehr-b.example.org';

/** A client that knows its keys out of band (inline `jwks`). */
export function inlineClient(iss: string, keys: TestKey[], fhirServers: string[] = []): TrustedClient {
  return { iss, jwks: { keys: keys.map((k) => k.publicJwk) }, fhirServers };
}

/** A JWT for `path` on this service, Inferno's shape (iss, aud, exp = iat + 5 min, iat, random jti). */
export function tokenFor(key: TestKey, iss: string, path: string, opts: Omit<TokenOptions, 'iss'> = {}): Promise<string> {
  return signToken(key, { aud: `${BASE}${path}`, ...opts, iss });
}

export function bearer(token: string): string {
  return `Bearer ${token}`;
}

/** Parsed JSON log lines. */
export function logEntries(lines: readonly string[]): Array<Record<string, unknown>> {
  return lines.map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** The body every authentication failure gets: nothing about why. */
export function assertBare401(res: { status: number; body: unknown; headers: Record<string, string | string[] | undefined> }): void {
  assert.equal(res.status, 401);
  assert.equal(res.headers['www-authenticate'], 'Bearer');
  assert.deepEqual(res.body, {
    resourceType: 'OperationOutcome',
    issue: [{ severity: 'error', code: 'login', diagnostics: 'Authentication required' }],
  });
}

export function isOperationOutcomeBody(body: unknown): boolean {
  if (typeof body !== 'object' || body === null) return false;
  const o = body as { resourceType?: unknown; issue?: unknown };
  return o.resourceType === 'OperationOutcome' && Array.isArray(o.issue) && o.issue.length > 0;
}

/** Listens on 127.0.0.1 with an ephemeral port, for tests that need one long-lived server (fetch keep-alive). */
export async function listen(app: Express): Promise<{ url: string; close: () => Promise<void> }> {
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
