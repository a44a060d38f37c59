import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import request from 'supertest';
import { makeKey, type TestKey } from '../security/helpers.ts';
import { ORDER_SIGN, testApp, type TestApp } from '../support/app.ts';
import { hookRequest, zolgensmaCase } from '../support/fixtures.ts';
import { assertBare401, bearer, inlineClient, ISS_A, isOperationOutcomeBody, logEntries, tokenFor } from './helpers.ts';

/**
 * Issue 4, CORS through the app (authentication on): preflights are answered without a JWT, only
 * allowlisted origins get Access-Control-Allow-* headers, and every response to an allowed origin,
 * errors included, carries Access-Control-Allow-Origin so the browser page can read it.
 */

const SANDBOX = 'https://sandbox.cds-hooks.org';
const STRANGER = 'https://evil.example.org';

let key: TestKey;
let t: TestApp;

before(async () => {
  key = await makeKey('ES384', 'cors-1');
  t = testApp({ corsOrigins: [SANDBOX], rateLimitPerMinute: 3 }, { clients: [inlineClient(ISS_A, [key])] });
});

function preflight(path: string, origin: string) {
  return request(t.app)
    .options(path)
    .set('Origin', origin)
    .set('Access-Control-Request-Method', 'POST')
    .set('Access-Control-Request-Headers', 'authorization,content-type');
}

function accessControlHeaders(headers: Record<string, string | undefined>): string[] {
  return Object.keys(headers).filter((h) => h.startsWith('access-control-'));
}

describe('CORS through the app', () => {
  test('preflight from an allowed origin, with no JWT: 204 with the allow headers, authentication never consulted', async () => {
    for (const path of [ORDER_SIGN, '/cds-services', `${ORDER_SIGN}/feedback`]) {
      const from = t.logs.lines.length;
      const res = await preflight(path, SANDBOX);
      assert.equal(res.status, 204, path);
      assert.equal(res.headers['access-control-allow-origin'], SANDBOX);
      assert.match(res.headers['access-control-allow-methods'] ?? '', /\bPOST\b/);
      assert.match(res.headers['access-control-allow-methods'] ?? '', /\bGET\b/);
      assert.match(res.headers['access-control-allow-headers'] ?? '', /\bAuthorization\b/i);
      assert.match(res.headers['access-control-allow-headers'] ?? '', /\bContent-Type\b/i);
      assert.ok(Number(res.headers['access-control-max-age']) > 0);
      assert.match(res.headers.vary ?? '', /Origin/);
      assert.equal(res.text, '');
      assert.ok(!logEntries(t.logs.lines.slice(from)).some((e) => e.event === 'client_auth_failed'), 'the preflight reached authentication');
    }
  });

  test('preflight from a disallowed origin: no Access-Control-Allow-* headers at all', async () => {
    for (const origin of [STRANGER, 'null', 'https://sandbox.cds-hooks.org.evil.example.org', 'http://sandbox.cds-hooks.org']) {
      const res = await preflight(ORDER_SIGN, origin);
      assert.equal(res.status, 204);
      assert.deepEqual(accessControlHeaders(res.headers), [], origin);
    }
  });

  test('the POST response to an allowed origin carries Access-Control-Allow-Origin', async () => {
    const res = await request(t.app)
      .post(ORDER_SIGN)
      .set('Origin', SANDBOX)
      .set('Authorization', bearer(await tokenFor(key, ISS_A, ORDER_SIGN)))
      .send(hookRequest(zolgensmaCase()));
    assert.equal(res.status, 200);
    assert.equal(res.headers['access-control-allow-origin'], SANDBOX);
    assert.match(res.headers['access-control-expose-headers'] ?? '', /Retry-After/);
  });

  test('a 401 to an allowed origin carries Access-Control-Allow-Origin too, so the page can see the failure', async () => {
    const res = await request(t.app).post(ORDER_SIGN).set('Origin', SANDBOX).send(hookRequest(zolgensmaCase()));
    assertBare401(res);
    assert.equal(res.headers['access-control-allow-origin'], SANDBOX);
  });

  test('a 400 and the discovery GET carry it as well', async () => {
    let res = await request(t.app)
      .post(ORDER_SIGN)
      .set('Origin', SANDBOX)
      .set('Authorization', bearer(await tokenFor(key, ISS_A, ORDER_SIGN)))
      .send({ hook: 'order-sign' });
    assert.equal(res.status, 400);
    assert.ok(isOperationOutcomeBody(res.body));
    assert.equal(res.headers['access-control-allow-origin'], SANDBOX);
    res = await request(t.app).get('/cds-services').set('Origin', SANDBOX).set('Authorization', bearer(await tokenFor(key, ISS_A, '/cds-services')));
    assert.equal(res.status, 200);
    assert.equal(res.headers['access-control-allow-origin'], SANDBOX);
  });

  test('a 429 to an allowed origin carries it, with Retry-After exposed', async () => {
    let last: request.Response | undefined;
    for (let i = 0; i < 5; i++) {
      last = await request(t.app).get('/cds-services').set('Origin', SANDBOX).set('Authorization', bearer(await tokenFor(key, ISS_A, '/cds-services')));
    }
    assert.equal(last?.status, 429);
    assert.equal(last.headers['access-control-allow-origin'], SANDBOX);
    assert.ok(last.headers['retry-after']);
  });

  test('a disallowed origin is still authenticated and answered, but gets no CORS headers (the browser withholds it)', async () => {
    const k = await makeKey('ES384', 'cors-2');
    const other = testApp({ corsOrigins: [SANDBOX] }, { clients: [inlineClient(ISS_A, [k])] });
    let res = await request(other.app)
      .post(ORDER_SIGN)
      .set('Origin', STRANGER)
      .set('Authorization', bearer(await tokenFor(k, ISS_A, ORDER_SIGN)))
      .send(hookRequest(zolgensmaCase()));
    assert.equal(res.status, 200);
    assert.deepEqual(accessControlHeaders(res.headers), []);
    res = await request(other.app).post(ORDER_SIGN).set('Origin', STRANGER).send(hookRequest(zolgensmaCase()));
    assertBare401(res);
    assert.deepEqual(accessControlHeaders(res.headers), []);
  });

  test('server-to-server calls (no Origin) get no CORS headers', async () => {
    const res = await request(t.app).post(ORDER_SIGN).send({});
    assert.equal(res.status, 401);
    assert.deepEqual(accessControlHeaders(res.headers), []);
  });

  test('no CORS_ORIGINS configured: nobody gets allow headers; "*" only when configured', async () => {
    const none = testApp({ corsOrigins: [] }, { clients: [inlineClient(ISS_A, [key])] });
    let res = await request(none.app).options(ORDER_SIGN).set('Origin', SANDBOX).set('Access-Control-Request-Method', 'POST');
    assert.equal(res.status, 204);
    assert.deepEqual(accessControlHeaders(res.headers), []);
    const any = testApp({ corsOrigins: ['*'] }, { clients: [inlineClient(ISS_A, [key])] });
    res = await request(any.app).options(ORDER_SIGN).set('Origin', STRANGER).set('Access-Control-Request-Method', 'POST');
    assert.equal(res.headers['access-control-allow-origin'], '*');
  });
});
