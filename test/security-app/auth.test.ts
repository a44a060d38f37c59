import assert from 'node:assert/strict';
import { after, before, describe, mock, test } from 'node:test';
import type { RequestHandler } from 'express';
import { SignJWT } from 'jose';
import request from 'supertest';
import { createFeedbackRouter } from '../../server/http/feedback.ts';
import { createLogger, type Logger } from '../../server/logger.ts';
import type { DecisionStore } from '../../server/store/types.ts';
import type { TrustedClient } from '../../server/security/trusted-clients.ts';
import { json, makeKey, nowSeconds, rawToken, startRecordingServer, type RecordingServer, type TestKey } from '../security/helpers.ts';
import { LogCapture, ORDER_SELECT, ORDER_SIGN, testApp, type TestApp } from '../support/app.ts';
import { hookRequest, zolgensmaCase } from '../support/fixtures.ts';
import { assertBare401, BASE, bearer, inlineClient, ISS_A, ISS_B, logEntries, tokenFor } from './helpers.ts';

/**
 * Issue 4, authentication of CDS clients, proven through the whole service (createApp as main.ts
 * builds it) with real ES384/RS384 tokens: every rejection is a bare 401 and the log carries the
 * reason code, never the token.
 */

const DISCOVERY = '/cds-services';
const FEEDBACK = `${ORDER_SIGN}/feedback`;
const ISS_JKU = 'https://ehr-jku.example.org';
const ISS_MIXED = 'https://ehr-mixed.example.org';

let es: TestKey;
let rs: TestKey;
let bKey: TestKey;
/** Same kid as `es`, different key pair: a forger who knows the kid. */
let forger: TestKey;
let jkuOld: TestKey;
let jkuNew: TestKey;
let mixedInline: TestKey;
let mixedPublished: TestKey;
let jwksServer: RecordingServer;
let mixedJwksServer: RecordingServer;
let evil: RecordingServer;
let published: { keys: unknown[] };
let t: TestApp;

/** The feedback route as main.ts mounts it, over a store stub that accepts everything. */
function feedbackRouter(logger: Logger): RequestHandler {
  const store = {
    saveFeedback: async (_serviceId: string, _iss: string | null, items: unknown[]) => ({ stored: items.length, duplicates: 0, unknownCards: [] }),
  } as unknown as DecisionStore;
  return createFeedbackRouter({ store, serviceIds: new Set(['gene-therapy-crd-order-sign', 'gene-therapy-crd-order-select']), logger });
}

const feedbackBody = {
  feedback: [{ card: '9b1a6d3e-6f1e-4f0c-9b36-0c1c7c3b8e01', outcome: 'overridden', outcomeTimestamp: '2025-01-01T10:00:00Z' }],
};

before(async () => {
  [es, rs, bKey, forger, jkuOld, jkuNew, mixedInline, mixedPublished] = await Promise.all([
    makeKey('ES384', 'es-1'),
    makeKey('RS384', 'rs-1'),
    makeKey('ES384', 'es-1'),
    makeKey('ES384', 'es-1'),
    makeKey('ES384', 'jku-2024'),
    makeKey('RS384', 'jku-2025'),
    makeKey('ES384', 'mixed-old'),
    makeKey('ES384', 'mixed-new'),
  ]);
  published = { keys: [jkuOld.publicJwk] };
  jwksServer = await startRecordingServer((_req, res) => json(res, 200, published));
  mixedJwksServer = await startRecordingServer((_req, res) => json(res, 200, { keys: [mixedPublished.publicJwk] }));
  evil = await startRecordingServer((_req, res) => json(res, 200, { keys: [forger.publicJwk] }));

  const clients: TrustedClient[] = [
    inlineClient(ISS_A, [es, rs]),
    // B's key has the same kid as A's: kids are looked up per issuer.
    inlineClient(ISS_B, [bKey]),
    { iss: ISS_JKU, jku: [`${jwksServer.url}jwks.json`], fhirServers: [] },
    { iss: ISS_MIXED, jwks: { keys: [mixedInline.publicJwk] }, jku: [`${mixedJwksServer.url}jwks.json`], fhirServers: [] },
  ];
  const logs = new LogCapture();
  const logger = createLogger('info', logs);
  t = { ...testApp({}, { clients, logger, routers: [feedbackRouter(logger)] }), logs, logger };
});

after(async () => {
  await Promise.all([jwksServer.close(), mixedJwksServer.close(), evil.close()]);
});

type Method = 'get' | 'post';

function send(method: Method, urlPath: string, authorization: string | undefined) {
  const body = urlPath.endsWith('/feedback')
    ? feedbackBody
    : hookRequest(zolgensmaCase(), { hook: urlPath.startsWith(ORDER_SELECT) ? 'order-select' : 'order-sign' });
  const req = method === 'get' ? request(t.app).get(urlPath) : request(t.app).post(urlPath).send(body);
  return authorization === undefined ? req : req.set('Authorization', authorization);
}

/** Sends, expects the bare 401, and checks the new log lines: the reason is there, the token is not. */
async function expectRejected(method: Method, urlPath: string, authorization: string | undefined, reason: string): Promise<void> {
  const from = t.logs.lines.length;
  const res = await send(method, urlPath, authorization);
  assertBare401(res);
  const fresh = t.logs.lines.slice(from);
  const failures = logEntries(fresh).filter((e) => e.event === 'client_auth_failed');
  assert.equal(failures.length, 1, `one auth failure logged: ${fresh.join('\n')}`);
  assert.equal(failures[0]!.reason, reason, `logged reason: ${fresh.join('\n')}`);
  assert.equal(failures[0]!.level, 40, 'logged at warn');
  if (authorization !== undefined) assertNotLogged(authorization);
}

/** Neither the token nor any of its segments appears anywhere in the captured log. */
function assertNotLogged(authorization: string): void {
  const token = authorization.replace(/^\S+\s+/, '');
  const text = t.logs.text;
  assert.ok(!text.includes(token), 'the token reached the log');
  for (const segment of token.split('.')) {
    if (segment.length >= 8) assert.ok(!text.includes(segment), `a token segment reached the log: ${segment.slice(0, 12)}…`);
  }
}

async function expectAccepted(method: Method, urlPath: string, authorization: string): Promise<void> {
  const res = await send(method, urlPath, authorization);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assertNotLogged(authorization);
}

describe('authentication through the real routes: accepted', () => {
  test('ES384 token on discovery and on each service', async () => {
    await expectAccepted('get', DISCOVERY, bearer(await tokenFor(es, ISS_A, DISCOVERY)));
    await expectAccepted('post', ORDER_SIGN, bearer(await tokenFor(es, ISS_A, ORDER_SIGN)));
    await expectAccepted('post', ORDER_SELECT, bearer(await tokenFor(es, ISS_A, ORDER_SELECT)));
  });

  test('RS384 token on discovery and on a service', async () => {
    await expectAccepted('get', DISCOVERY, bearer(await tokenFor(rs, ISS_A, DISCOVERY)));
    await expectAccepted('post', ORDER_SIGN, bearer(await tokenFor(rs, ISS_A, ORDER_SIGN)));
  });

  test('the hook answer names the verified issuer in the log line', async () => {
    const from = t.logs.lines.length;
    await expectAccepted('post', ORDER_SIGN, bearer(await tokenFor(es, ISS_A, ORDER_SIGN)));
    const answered = logEntries(t.logs.lines.slice(from)).find((e) => e.msg === 'hook answered');
    assert.equal(answered?.iss, ISS_A);
  });

  test('aud with a trailing slash, and a request path with one, are both tolerated', async () => {
    await expectAccepted('post', ORDER_SIGN, bearer(await tokenFor(es, ISS_A, `${ORDER_SIGN}/`)));
    await expectAccepted('post', `${ORDER_SIGN}/`, bearer(await tokenFor(es, ISS_A, ORDER_SIGN)));
    await expectAccepted('get', DISCOVERY, bearer(await tokenFor(es, ISS_A, `${DISCOVERY}/`)));
  });

  test('aud as an array containing this endpoint', async () => {
    await expectAccepted('post', ORDER_SIGN, bearer(await tokenFor(es, ISS_A, ORDER_SIGN, { aud: [`${BASE}${ORDER_SELECT}`, `${BASE}${ORDER_SIGN}`] })));
  });

  test('a lifetime of exactly one hour is accepted', async () => {
    const iat = nowSeconds();
    await expectAccepted('post', ORDER_SIGN, bearer(await tokenFor(es, ISS_A, ORDER_SIGN, { claims: { iat, exp: iat + 3600 } })));
  });

  test('Inferno shape: typ JWT, kid, allowlisted jku, 64-hex jti', async () => {
    const iat = nowSeconds();
    const token = await tokenFor(jkuOld, ISS_JKU, ORDER_SIGN, {
      header: { jku: `${jwksServer.url}jwks.json` },
      claims: { iat, exp: iat + 300, jti: 'a'.repeat(64) },
    });
    await expectAccepted('post', ORDER_SIGN, bearer(token));
  });
});

describe('authentication through the real routes: each rejection is a bare 401', () => {
  test('no Authorization header, and a non-Bearer scheme', async () => {
    await expectRejected('get', DISCOVERY, undefined, 'missing_token');
    await expectRejected('post', ORDER_SIGN, undefined, 'missing_token');
    await expectRejected('post', ORDER_SIGN, `Basic ${Buffer.from('a:b').toString('base64')}`, 'not_bearer');
  });

  test('bad signature: a key with the right kid but not the client\'s', async () => {
    await expectRejected('post', ORDER_SIGN, bearer(await tokenFor(forger, ISS_A, ORDER_SIGN)), 'jwt_bad_signature');
    await expectRejected('get', DISCOVERY, bearer(await tokenFor(forger, ISS_A, DISCOVERY)), 'jwt_bad_signature');
  });

  test('bad signature: a valid token whose payload was altered', async () => {
    const [h, , s] = (await tokenFor(es, ISS_A, ORDER_SIGN)).split('.');
    const other = (await tokenFor(es, ISS_A, ORDER_SIGN, { claims: { exp: nowSeconds() + 600 } })).split('.')[1];
    await expectRejected('post', ORDER_SIGN, bearer(`${h}.${other}.${s}`), 'jwt_bad_signature');
  });

  test('bad signature: B\'s issuer, A\'s key (same kid in both JWKS)', async () => {
    await expectRejected('post', ORDER_SIGN, bearer(await tokenFor(es, ISS_B, ORDER_SIGN)), 'jwt_bad_signature');
  });

  test('alg none', async () => {
    const iat = nowSeconds();
    const token = rawToken({ alg: 'none', typ: 'JWT', kid: 'es-1' }, { iss: ISS_A, aud: `${BASE}${ORDER_SIGN}`, iat, exp: iat + 300, jti: 'none-1' });
    await expectRejected('post', ORDER_SIGN, bearer(token), 'jwt_alg_not_allowed');
  });

  test('HS256, keyed with a public JWK as the secret (the classic confusion attack)', async () => {
    const iat = nowSeconds();
    const secret = new TextEncoder().encode(JSON.stringify(es.publicJwk));
    const token = await new SignJWT({ iss: ISS_A, aud: `${BASE}${ORDER_SIGN}`, iat, exp: iat + 300, jti: 'hs-1' })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT', kid: 'es-1' })
      .sign(secret);
    await expectRejected('post', ORDER_SIGN, bearer(token), 'jwt_alg_not_allowed');
  });

  test('unknown kid', async () => {
    const stranger = await makeKey('ES384', 'not-in-jwks');
    await expectRejected('post', ORDER_SIGN, bearer(await tokenFor(stranger, ISS_A, ORDER_SIGN)), 'jwt_unknown_kid');
  });

  test('iss not on the allowlist', async () => {
    await expectRejected('post', ORDER_SIGN, bearer(await tokenFor(es, 'https://stranger.example.org', ORDER_SIGN)), 'jwt_unknown_iss');
  });

  test('aud for a different service path', async () => {
    await expectRejected('post', ORDER_SIGN, bearer(await tokenFor(es, ISS_A, ORDER_SELECT)), 'jwt_aud_mismatch');
  });

  test('aud for discovery used on a service, and a service aud used on discovery', async () => {
    await expectRejected('post', ORDER_SIGN, bearer(await tokenFor(es, ISS_A, DISCOVERY)), 'jwt_aud_mismatch');
    await expectRejected('get', DISCOVERY, bearer(await tokenFor(es, ISS_A, ORDER_SIGN)), 'jwt_aud_mismatch');
  });

  test('aud for the right path on another host', async () => {
    await expectRejected('post', ORDER_SIGN, bearer(await tokenFor(es, ISS_A, ORDER_SIGN, { aud: `https://other.example.org${ORDER_SIGN}` })), 'jwt_aud_mismatch');
  });

  test('expired (beyond the 60 s skew)', async () => {
    const now = nowSeconds();
    await expectRejected('post', ORDER_SIGN, bearer(await tokenFor(es, ISS_A, ORDER_SIGN, { claims: { iat: now - 600, exp: now - 120 } })), 'jwt_expired');
  });

  test('iat in the future (beyond the skew)', async () => {
    const now = nowSeconds();
    await expectRejected('post', ORDER_SIGN, bearer(await tokenFor(es, ISS_A, ORDER_SIGN, { claims: { iat: now + 600, exp: now + 900 } })), 'jwt_iat_in_future');
  });

  test('lifetime longer than one hour', async () => {
    const now = nowSeconds();
    await expectRejected('post', ORDER_SIGN, bearer(await tokenFor(es, ISS_A, ORDER_SIGN, { claims: { iat: now, exp: now + 3601 } })), 'jwt_lifetime_too_long');
  });

  test('issued more than an hour ago, still unexpired', async () => {
    const now = nowSeconds();
    await expectRejected('post', ORDER_SIGN, bearer(await tokenFor(es, ISS_A, ORDER_SIGN, { claims: { iat: now - 3700, exp: now + 60 } })), 'jwt_too_old');
  });

  test('missing jti', async () => {
    await expectRejected('post', ORDER_SIGN, bearer(await tokenFor(es, ISS_A, ORDER_SIGN, { claims: { jti: undefined } })), 'jwt_missing_jti');
  });

  test('replayed jti: the same token twice, and a new token reusing the jti', async () => {
    const token = bearer(await tokenFor(es, ISS_A, ORDER_SIGN));
    await expectAccepted('post', ORDER_SIGN, token);
    await expectRejected('post', ORDER_SIGN, token, 'jwt_replay');
    const jti = 'fixed-jti-for-replay-test';
    await expectAccepted('get', DISCOVERY, bearer(await tokenFor(es, ISS_A, DISCOVERY, { claims: { jti } })));
    await expectRejected('post', ORDER_SIGN, bearer(await tokenFor(rs, ISS_A, ORDER_SIGN, { claims: { jti } })), 'jwt_replay');
  });

  test('the same jti from two issuers is not a replay', async () => {
    const jti = 'shared-jti-between-issuers';
    await expectAccepted('post', ORDER_SIGN, bearer(await tokenFor(es, ISS_A, ORDER_SIGN, { claims: { jti } })));
    await expectAccepted('post', ORDER_SIGN, bearer(await tokenFor(bKey, ISS_B, ORDER_SIGN, { claims: { jti } })));
  });

  test('jku not on the client\'s allowlist: rejected and the named server sees no request', async () => {
    const before = evil.requests.length;
    const jku = `${evil.url}jwks.json`;
    // The evil JWKS would even hold the forger's key; it must never be asked.
    await expectRejected('post', ORDER_SIGN, bearer(await tokenFor(forger, ISS_JKU, ORDER_SIGN, { header: { jku } })), 'jwt_jku_not_allowed');
    await expectRejected('post', ORDER_SIGN, bearer(await tokenFor(forger, ISS_A, ORDER_SIGN, { header: { jku } })), 'jwt_jku_not_allowed');
    // Same origin as the allowlisted URL but another path: still not the exact URL.
    await expectRejected('post', ORDER_SIGN, bearer(await tokenFor(jkuOld, ISS_JKU, ORDER_SIGN, { header: { jku: `${jwksServer.url}other.json` } })), 'jwt_jku_not_allowed');
    assert.equal(evil.requests.length - before, 0, 'the server named by a non-allowlisted jku was contacted');
    assert.ok(!jwksServer.requests.some((r) => r.url === '/other.json'), 'a non-allowlisted path was fetched');
  });
});

describe('jku and key rotation through the app', () => {
  test('allowlisted jku served by a local server: fetched once, then cached', async () => {
    const jku = `${jwksServer.url}jwks.json`;
    await expectAccepted('post', ORDER_SIGN, bearer(await tokenFor(jkuOld, ISS_JKU, ORDER_SIGN, { header: { jku } })));
    // Without a jku header the client's only jku is used.
    await expectAccepted('get', DISCOVERY, bearer(await tokenFor(jkuOld, ISS_JKU, DISCOVERY)));
    const fetches = jwksServer.requests.filter((r) => r.url === '/jwks.json');
    assert.equal(fetches.length, 1, `JWKS fetched ${fetches.length} times`);
    assert.equal(fetches[0]!.method, 'GET');
    assert.equal(fetches[0]!.headers.authorization, undefined, 'no credentials sent to the JWKS URL');
  });

  test('inline jwks plus allowlisted jku: a kid not configured is found in the published set', async () => {
    const jku = `${mixedJwksServer.url}jwks.json`;
    await expectAccepted('post', ORDER_SIGN, bearer(await tokenFor(mixedInline, ISS_MIXED, ORDER_SIGN, { header: { jku } })));
    assert.equal(mixedJwksServer.requests.length, 0, 'configured keys are tried before the network');
    await expectAccepted('post', ORDER_SIGN, bearer(await tokenFor(mixedPublished, ISS_MIXED, ORDER_SIGN, { header: { jku } })));
    assert.equal(mixedJwksServer.requests.length, 1);
  });

  test('rotation: the client publishes a new key; after jose\'s 30 s cooldown it is fetched and the retired key fails', async () => {
    const jku = `${jwksServer.url}jwks.json`;
    // Make sure the old set is cached (the previous test may have run in another order).
    await expectAccepted('post', ORDER_SIGN, bearer(await tokenFor(jkuOld, ISS_JKU, ORDER_SIGN, { header: { jku } })));
    const fetchesBefore = jwksServer.requests.length;
    published = { keys: [jkuNew.publicJwk] };
    mock.timers.enable({ apis: ['Date'], now: Date.now() });
    try {
      // Within the cooldown an unknown kid does not trigger a download (no refetch storm)...
      mock.timers.tick(1_000);
      await expectRejected('post', ORDER_SIGN, bearer(await tokenFor(jkuNew, ISS_JKU, ORDER_SIGN, { header: { jku } })), 'jwt_unknown_kid');
      assert.equal(jwksServer.requests.length, fetchesBefore);
      // ...after it, the new key is fetched and accepted.
      mock.timers.tick(31_000);
      await expectAccepted('post', ORDER_SIGN, bearer(await tokenFor(jkuNew, ISS_JKU, ORDER_SIGN, { header: { jku } })));
      assert.equal(jwksServer.requests.length, fetchesBefore + 1);
      // The retired key is no longer in the cached set.
      await expectRejected('post', ORDER_SIGN, bearer(await tokenFor(jkuOld, ISS_JKU, ORDER_SIGN, { header: { jku } })), 'jwt_unknown_kid');
    } finally {
      mock.timers.reset();
      published = { keys: [jkuOld.publicJwk] };
    }
  });
});

describe('feedback route', () => {
  test('POST /cds-services/{id}/feedback needs a token for its own URL', async () => {
    await expectAccepted('post', FEEDBACK, bearer(await tokenFor(es, ISS_A, FEEDBACK)));
    await expectAccepted('post', FEEDBACK, bearer(await tokenFor(rs, ISS_A, FEEDBACK)));
    await expectRejected('post', FEEDBACK, undefined, 'missing_token');
    await expectRejected('post', FEEDBACK, bearer(await tokenFor(forger, ISS_A, FEEDBACK)), 'jwt_bad_signature');
    await expectRejected('post', FEEDBACK, bearer(await tokenFor(es, ISS_A, ORDER_SIGN)), 'jwt_aud_mismatch');
    const token = bearer(await tokenFor(es, ISS_A, FEEDBACK));
    await expectAccepted('post', FEEDBACK, token);
    await expectRejected('post', FEEDBACK, token, 'jwt_replay');
  });
});

describe('unauthenticated parts of the app', () => {
  test('/health and policy pages need no token; nothing under /cds-services is reachable without one', async () => {
    await request(t.app).get('/health').expect(200);
    await expectRejected('get', '/cds-services/does-not-exist', undefined, 'missing_token');
    await expectRejected('post', '/cds-services/does-not-exist', undefined, 'missing_token');
  });

  test('a valid token for an unknown service gets the 404 OperationOutcome, not a 5xx', async () => {
    const res = await send('post', '/cds-services/does-not-exist', bearer(await tokenFor(es, ISS_A, '/cds-services/does-not-exist')));
    assert.equal(res.status, 404);
    assert.equal((res.body as { resourceType?: unknown }).resourceType, 'OperationOutcome');
  });
});
