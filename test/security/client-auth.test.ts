import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import express from 'express';
import request from 'supertest';
import { SignJWT } from 'jose';
import { createClientAuthenticator, type ClientAuthOptions } from '../../server/security/client-auth.ts';
import type { TrustedClient } from '../../server/security/trusted-clients.ts';
import {
  BASE_URL,
  captureLogger,
  json,
  makeKey,
  nowSeconds,
  rawToken,
  signToken,
  startRecordingServer,
  type RecordingServer,
  type TestKey,
} from './helpers.ts';

const ISS = 'https://ehr.example.org';
const OTHER_ISS = 'https://other-ehr.example.org';
const SERVICE_PATH = '/cds-services/crd-order-sign';
const SERVICE_AUD = `${BASE_URL}${SERVICE_PATH}`;

let es384: TestKey;
let rs384: TestKey;
let es256: TestKey;
let ps384: TestKey;
let otherKey: TestKey;
let impostor: TestKey;

before(async () => {
  es384 = await makeKey('ES384', 'ehr-es384');
  rs384 = await makeKey('RS384', 'ehr-rs384');
  es256 = await makeKey('ES256', 'ehr-es256');
  ps384 = await makeKey('PS384', 'ehr-ps384');
  otherKey = await makeKey('ES384', 'other-es384');
  // Same kid as the real key, different key material.
  impostor = await makeKey('ES384', 'ehr-es384');
});

function clients(): TrustedClient[] {
  return [
    { iss: ISS, jwks: { keys: [es384.publicJwk, rs384.publicJwk, es256.publicJwk, ps384.publicJwk] }, fhirServers: [] },
    { iss: OTHER_ISS, jwks: { keys: [otherKey.publicJwk] }, fhirServers: [] },
  ];
}

function setup(overrides: Partial<ClientAuthOptions> = {}) {
  const log = captureLogger();
  const auth = createClientAuthenticator({ clients: clients(), baseUrl: BASE_URL, logger: log.logger, ...overrides });
  const app = express();
  app.use('/cds-services', auth);
  app.use((_req, res) => {
    res.json({ clientIss: res.locals.clientIss ?? null, hasClient: res.locals.client !== undefined });
  });
  const reasons = (): unknown[] => log.entries().filter((e) => e.event === 'client_auth_failed').map((e) => e.reason);
  return { app, auth, log, reasons };
}

async function expectRejected(token: string, reason: string, path = SERVICE_PATH, overrides: Partial<ClientAuthOptions> = {}) {
  const { app, reasons, log } = setup(overrides);
  const res = await request(app).post(path).set('Authorization', `Bearer ${token}`).send({});
  assert.equal(res.status, 401);
  assert.deepEqual(res.body, {
    resourceType: 'OperationOutcome',
    issue: [{ severity: 'error', code: 'login', diagnostics: 'Authentication required' }],
  });
  assert.equal(res.headers['www-authenticate'], 'Bearer');
  assert.deepEqual(reasons(), [reason]);
  assertNoTokenInLogs(log.lines, token);
}

function assertNoTokenInLogs(lines: string[], token: string): void {
  const text = lines.join('\n');
  for (const part of token.split('.')) {
    if (part.length >= 8) assert.ok(!text.includes(part), 'a token segment reached the log');
  }
}

async function expectAccepted(token: string, path = SERVICE_PATH, overrides: Partial<ClientAuthOptions> = {}) {
  const { app, log } = setup(overrides);
  const res = await request(app).post(path).set('Authorization', `Bearer ${token}`).send({});
  assert.equal(res.status, 200, JSON.stringify(log.entries()));
  assert.deepEqual(res.body, { clientIss: ISS, hasClient: true });
}

describe('client JWT authentication: accepted tokens', () => {
  it('accepts ES384 and sets res.locals.clientIss / client', async () => {
    await expectAccepted(await signToken(es384));
  });
  it('accepts RS384', async () => {
    await expectAccepted(await signToken(rs384));
  });
  it('accepts ES256 and PS384', async () => {
    await expectAccepted(await signToken(es256));
    await expectAccepted(await signToken(ps384));
  });
  it('accepts discovery and feedback audiences', async () => {
    await expectAccepted(await signToken(es384, { aud: `${BASE_URL}/cds-services` }), '/cds-services');
    await expectAccepted(await signToken(es384, { aud: `${SERVICE_AUD}/feedback` }), `${SERVICE_PATH}/feedback`);
  });
  it('tolerates a trailing slash in aud or in the request path', async () => {
    await expectAccepted(await signToken(es384, { aud: `${SERVICE_AUD}/` }));
    await expectAccepted(await signToken(es384), `${SERVICE_PATH}/`);
  });
  it('accepts an array aud containing this endpoint', async () => {
    await expectAccepted(await signToken(es384, { aud: ['https://elsewhere.example.org/cds-services/x', SERVICE_AUD] }));
  });
  it('ignores the query string when computing the audience', async () => {
    await expectAccepted(await signToken(es384), `${SERVICE_PATH}?x=1`);
  });
  it('accepts a token just expired within the clock skew', async () => {
    const iat = nowSeconds() - 400;
    await expectAccepted(await signToken(es384, { claims: { iat, exp: nowSeconds() - 30 } }));
  });
  it('logs success at debug without the token', async () => {
    const { app, log } = setup();
    const token = await signToken(es384);
    await request(app).post(SERVICE_PATH).set('Authorization', `Bearer ${token}`).expect(200);
    assert.ok(log.entries().some((e) => e.event === 'client_auth_ok' && e.clientIss === ISS));
    assertNoTokenInLogs(log.lines, token);
  });
});

describe('client JWT authentication: rejections (bare 401, reason logged)', () => {
  it('no Authorization header', async () => {
    const { app, reasons } = setup();
    const res = await request(app).get('/cds-services');
    assert.equal(res.status, 401);
    assert.deepEqual(reasons(), ['missing_token']);
  });
  it('not a Bearer credential', async () => {
    const { app, reasons } = setup();
    await request(app).get('/cds-services').set('Authorization', 'Basic dXNlcjpwYXNz').expect(401);
    assert.deepEqual(reasons(), ['not_bearer']);
  });
  it('garbage token', async () => {
    await expectRejected('not.a.jwt', 'jwt_malformed');
  });
  it('bad signature (payload altered after signing)', async () => {
    const token = await signToken(es384);
    const [h, , s] = token.split('.');
    const forged = rawToken({ alg: 'ES384', typ: 'JWT', kid: es384.kid }, { iss: ISS, aud: SERVICE_AUD, iat: nowSeconds(), exp: nowSeconds() + 300, jti: 'forged' });
    const [, p] = forged.split('.');
    await expectRejected(`${h}.${p}.${s}`, 'jwt_bad_signature');
  });
  it('wrong key with a known kid', async () => {
    await expectRejected(await signToken(impostor), 'jwt_bad_signature');
  });
  it('unknown kid', async () => {
    const stranger = await makeKey('ES384', 'who-is-this');
    await expectRejected(await signToken(stranger), 'jwt_unknown_kid');
  });
  it('missing kid', async () => {
    await expectRejected(await signToken(es384, { header: { kid: undefined } }), 'jwt_missing_kid');
  });
  it('alg none', async () => {
    const token = rawToken({ alg: 'none', typ: 'JWT', kid: es384.kid }, { iss: ISS, aud: SERVICE_AUD, iat: nowSeconds(), exp: nowSeconds() + 300, jti: 'n1' });
    await expectRejected(token, 'jwt_alg_not_allowed');
  });
  it('HS256 with a shared secret', async () => {
    const token = await new SignJWT({ iss: ISS, aud: SERVICE_AUD, jti: 'h1' })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT', kid: es384.kid })
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode('a-shared-secret-of-at-least-32-bytes!!'));
    await expectRejected(token, 'jwt_alg_not_allowed');
  });
  it('HS384 keyed with the public JWK (algorithm confusion)', async () => {
    const token = await new SignJWT({ iss: ISS, aud: SERVICE_AUD, jti: 'h2' })
      .setProtectedHeader({ alg: 'HS384', typ: 'JWT', kid: es384.kid })
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode(JSON.stringify(es384.publicJwk)));
    await expectRejected(token, 'jwt_alg_not_allowed');
  });
  it('typ other than JWT', async () => {
    await expectRejected(await signToken(es384, { header: { typ: 'at+jwt' } }), 'jwt_bad_typ');
    await expectRejected(await signToken(es384, { header: { typ: undefined } }), 'jwt_bad_typ');
  });
  it('wrong iss: another trusted issuer named, signed with this key', async () => {
    await expectRejected(await signToken(es384, { iss: OTHER_ISS, header: { kid: otherKey.kid } }), 'jwt_bad_signature');
  });
  it('iss not on the allowlist', async () => {
    const { app, log } = setup();
    const token = await signToken(es384, { iss: 'https://evil.example.com' });
    await request(app).post(SERVICE_PATH).set('Authorization', `Bearer ${token}`).expect(401);
    const entry = log.entries().find((e) => e.event === 'client_auth_failed');
    assert.equal(entry?.reason, 'jwt_unknown_iss');
    assert.equal(entry?.clientIss, 'https://evil.example.com');
  });
  it('missing iss', async () => {
    await expectRejected(await signToken(es384, { claims: { iss: undefined } }), 'jwt_missing_iss');
  });
  it('aud for another service', async () => {
    await expectRejected(await signToken(es384, { aud: `${BASE_URL}/cds-services/other` }), 'jwt_aud_mismatch');
  });
  it('aud for this path on another host', async () => {
    await expectRejected(await signToken(es384, { aud: `https://evil.example.com${SERVICE_PATH}` }), 'jwt_aud_mismatch');
  });
  it('aud that is only a prefix of this endpoint', async () => {
    await expectRejected(await signToken(es384, { aud: `${BASE_URL}/cds-services` }), 'jwt_aud_mismatch');
  });
  it('missing aud', async () => {
    await expectRejected(await signToken(es384, { claims: { aud: undefined } }), 'jwt_missing_aud');
  });
  it('expired beyond the clock skew', async () => {
    await expectRejected(await signToken(es384, { claims: { iat: nowSeconds() - 600, exp: nowSeconds() - 120 } }), 'jwt_expired');
  });
  it('iat in the future beyond the clock skew', async () => {
    await expectRejected(await signToken(es384, { claims: { iat: nowSeconds() + 120, exp: nowSeconds() + 400 } }), 'jwt_iat_in_future');
  });
  it('lifetime over one hour', async () => {
    await expectRejected(await signToken(es384, { claims: { iat: nowSeconds(), exp: nowSeconds() + 3601 } }), 'jwt_lifetime_too_long');
  });
  it('issued more than an hour ago', async () => {
    await expectRejected(await signToken(es384, { claims: { iat: nowSeconds() - 3700, exp: nowSeconds() + 60 } }), 'jwt_too_old');
  });
  it('missing exp, iat or jti', async () => {
    await expectRejected(await signToken(es384, { claims: { exp: undefined } }), 'jwt_missing_exp');
    await expectRejected(await signToken(es384, { claims: { iat: undefined } }), 'jwt_missing_iat');
    await expectRejected(await signToken(es384, { claims: { jti: undefined } }), 'jwt_missing_jti');
  });
  it('non-string jti', async () => {
    await expectRejected(await signToken(es384, { claims: { jti: 42 } }), 'jwt_bad_jti');
  });
  it('replayed jti', async () => {
    const { app, reasons } = setup();
    const token = await signToken(es384);
    await request(app).post(SERVICE_PATH).set('Authorization', `Bearer ${token}`).expect(200);
    await request(app).post(SERVICE_PATH).set('Authorization', `Bearer ${token}`).expect(401);
    // A fresh token reusing the jti is a replay too.
    const jti = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()) as { jti: string };
    const again = await signToken(es384, { claims: { jti: jti.jti } });
    await request(app).post(SERVICE_PATH).set('Authorization', `Bearer ${again}`).expect(401);
    assert.deepEqual(reasons(), ['jwt_replay', 'jwt_replay']);
  });
  it('the same jti from different issuers is not a replay', async () => {
    const { app } = setup();
    await request(app).post(SERVICE_PATH).set('Authorization', `Bearer ${await signToken(es384, { claims: { jti: 'shared' } })}`).expect(200);
    const other = await signToken(otherKey, { iss: OTHER_ISS, claims: { jti: 'shared' } });
    await request(app).post(SERVICE_PATH).set('Authorization', `Bearer ${other}`).expect(200);
  });
  it('full replay cache rejects new tokens until entries expire', async () => {
    let clock = Date.now();
    const { auth } = setup({ replayCacheSize: 2, now: () => clock, clockSkewSeconds: 0 });
    // iat from the test's clock, not the wall clock: with no skew allowed, a token signed just
    // after a second boundary would otherwise be issued "in the future".
    const t = async (): Promise<string> => `Bearer ${await signToken(es384, { claims: { iat: Math.floor(clock / 1000), exp: Math.floor(clock / 1000) + 60 } })}`;
    assert.equal((await auth.verify(await t(), SERVICE_PATH)).ok, true);
    assert.equal((await auth.verify(await t(), SERVICE_PATH)).ok, true);
    const full = await auth.verify(await t(), SERVICE_PATH);
    assert.deepEqual(full, { ok: false, reason: 'jwt_replay_cache_full', iss: ISS });
    // Once the remembered tokens have expired, their slots are reclaimed.
    clock += 61_000;
    const later = await signToken(es384, { claims: { iat: Math.floor(clock / 1000), exp: Math.floor(clock / 1000) + 60 } });
    assert.equal((await auth.verify(`Bearer ${later}`, SERVICE_PATH)).ok, true);
  });
  it('responds identically whatever the reason', async () => {
    const { app } = setup();
    const a = await request(app).post(SERVICE_PATH).set('Authorization', `Bearer ${await signToken(impostor)}`);
    const b = await request(app).post(SERVICE_PATH);
    assert.equal(a.status, 401);
    assert.equal(b.status, 401);
    assert.equal(a.text, b.text);
  });
});

describe('client JWT authentication: jku', () => {
  let jwksServer: RecordingServer;
  let elsewhere: RecordingServer;
  let served: { keys: unknown[] };

  before(async () => {
    served = { keys: [] };
    jwksServer = await startRecordingServer((req, res) => {
      if (req.url === '/jwks.json') json(res, 200, served);
      else if (req.url === '/redirect.json') res.writeHead(302, { location: `${elsewhere.origin}/jwks.json` }).end();
      else json(res, 404, {});
    });
    elsewhere = await startRecordingServer((_req, res) => json(res, 200, served));
  });
  after(async () => {
    await jwksServer.close();
    await elsewhere.close();
  });

  function jkuClients(extra: Partial<TrustedClient> = {}): TrustedClient[] {
    return [{ iss: ISS, jku: [`${jwksServer.origin}/jwks.json`, `${jwksServer.origin}/redirect.json`], fhirServers: [], ...extra }];
  }

  it('never contacts a jku that is not on the client allowlist', async () => {
    jwksServer.requests.length = 0;
    elsewhere.requests.length = 0;
    const token = await signToken(es384, { header: { jku: `${elsewhere.origin}/jwks.json` } });
    await expectRejected(token, 'jwt_jku_not_allowed', SERVICE_PATH, { clients: jkuClients() });
    // Also when the client has inline keys that would verify the token.
    await expectRejected(await signToken(es384, { header: { jku: `${elsewhere.origin}/jwks.json` } }), 'jwt_jku_not_allowed');
    assert.equal(elsewhere.requests.length, 0);
    assert.equal(jwksServer.requests.length, 0);
  });

  it('fetches keys from an allowlisted jku and caches them', async () => {
    served.keys = [es384.publicJwk];
    jwksServer.requests.length = 0;
    const { app } = setup({ clients: jkuClients() });
    const jku = `${jwksServer.origin}/jwks.json`;
    for (let i = 0; i < 3; i++) {
      const token = await signToken(es384, { header: { jku } });
      await request(app).post(SERVICE_PATH).set('Authorization', `Bearer ${token}`).expect(200);
    }
    assert.equal(jwksServer.requests.length, 1);
  });

  it('uses the single configured jku when the token names none', async () => {
    served.keys = [rs384.publicJwk];
    const { app } = setup({ clients: [{ iss: ISS, jku: [`${jwksServer.origin}/jwks.json`], fhirServers: [] }] });
    await request(app).post(SERVICE_PATH).set('Authorization', `Bearer ${await signToken(rs384)}`).expect(200);
  });

  it('handles key rotation: an unknown kid triggers a refetch after the cooldown', async () => {
    const jku = `${jwksServer.origin}/jwks.json`;
    const rotated = await makeKey('ES384', 'ehr-es384-2026');
    served.keys = [es384.publicJwk];
    jwksServer.requests.length = 0;
    const { app, reasons } = setup({ clients: jkuClients(), jwksCooldownMs: 200 });
    await request(app).post(SERVICE_PATH).set('Authorization', `Bearer ${await signToken(es384, { header: { jku } })}`).expect(200);
    served.keys = [rotated.publicJwk];
    // Within the cooldown an unknown kid does not cause a download (no fetch amplification).
    await request(app).post(SERVICE_PATH).set('Authorization', `Bearer ${await signToken(rotated, { header: { jku } })}`).expect(401);
    assert.equal(jwksServer.requests.length, 1);
    await new Promise((r) => setTimeout(r, 250));
    await request(app).post(SERVICE_PATH).set('Authorization', `Bearer ${await signToken(rotated, { header: { jku } })}`).expect(200);
    assert.equal(jwksServer.requests.length, 2);
    assert.deepEqual(reasons(), ['jwt_unknown_kid']);
  });

  it('prefers inline keys and falls back to the allowlisted jku for new kids', async () => {
    const jku = `${jwksServer.origin}/jwks.json`;
    const rotated = await makeKey('ES384', 'rotated-inline');
    served.keys = [rotated.publicJwk];
    jwksServer.requests.length = 0;
    const { app } = setup({ clients: jkuClients({ jwks: { keys: [es384.publicJwk] } }) });
    await request(app).post(SERVICE_PATH).set('Authorization', `Bearer ${await signToken(es384, { header: { jku } })}`).expect(200);
    assert.equal(jwksServer.requests.length, 0);
    await request(app).post(SERVICE_PATH).set('Authorization', `Bearer ${await signToken(rotated, { header: { jku } })}`).expect(200);
    assert.equal(jwksServer.requests.length, 1);
  });

  it('does not follow a jku redirect to another origin', async () => {
    served.keys = [es384.publicJwk];
    elsewhere.requests.length = 0;
    const token = await signToken(es384, { header: { jku: `${jwksServer.origin}/redirect.json` } });
    await expectRejected(token, 'jwt_jwks_unavailable', SERVICE_PATH, { clients: jkuClients() });
    assert.equal(elsewhere.requests.length, 0);
  });

  it('treats an unreachable JWKS as a 401, not a 5xx', async () => {
    const token = await signToken(es384, { header: { jku: 'http://127.0.0.1:1/jwks.json' } });
    await expectRejected(token, 'jwt_jwks_unavailable', SERVICE_PATH, {
      clients: [{ iss: ISS, jku: ['http://127.0.0.1:1/jwks.json'], fhirServers: [] }],
    });
  });
});

describe('client JWT authentication: off (development)', () => {
  it('passes requests through, sets nothing, and warns once at creation', async () => {
    const log = captureLogger();
    const auth = createClientAuthenticator({ clients: undefined, baseUrl: BASE_URL, logger: log.logger });
    assert.equal(auth.enabled, false);
    const app = express();
    app.use('/cds-services', auth);
    app.use((_req, res) => {
      res.json({ clientIss: res.locals.clientIss ?? null, client: res.locals.client ?? null });
    });
    await request(app).get('/cds-services').expect(200, { clientIss: null, client: null });
    await request(app).post(SERVICE_PATH).expect(200);
    const warnings = log.entries().filter((e) => e.event === 'client_auth_disabled');
    assert.equal(warnings.length, 1);
    assert.equal(warnings[0]?.level, 40);
  });
});
