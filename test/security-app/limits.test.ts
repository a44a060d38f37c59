import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import request from 'supertest';
import { makeKey, type TestKey } from '../security/helpers.ts';
import { ORDER_SELECT, ORDER_SIGN, testApp } from '../support/app.ts';
import { startFhirServer, type FhirTestServer } from '../support/fhir-server.ts';
import { allResources, fullPrefetch, hookRequest, zolgensmaCase, zolgensmaOrder } from '../support/fixtures.ts';
import { assertBare401, bearer, inlineClient, ISS_A, ISS_B, isOperationOutcomeBody, logEntries, tokenFor } from './helpers.ts';

/**
 * Issue 4, limits through the app as main.ts builds it: body size, JSON nesting, number of draft
 * orders, the request timeout against a slow FHIR server, and the per-client rate limit.
 */

function issueCode(body: unknown): unknown {
  return (body as { issue?: Array<{ code?: unknown }> }).issue?.[0]?.code;
}

function assertJsonOutcome(res: request.Response, status: number, code: string): void {
  assert.equal(res.status, status, JSON.stringify(res.body));
  assert.match(res.headers['content-type'] ?? '', /^application\/json/);
  assert.ok(isOperationOutcomeBody(res.body), res.text);
  assert.equal(issueCode(res.body), code);
}

describe('body size', () => {
  test('a body over MAX_BODY_BYTES: 413 JSON OperationOutcome', async () => {
    const { app } = testApp({ maxBodyBytes: 8 * 1024 });
    const body = hookRequest(zolgensmaCase(), { extension: { padding: 'x'.repeat(16 * 1024) } });
    assertJsonOutcome(await request(app).post(ORDER_SIGN).send(body), 413, 'too-costly');
  });

  test('a normal request under the limit is accepted', async () => {
    const { app } = testApp({ maxBodyBytes: 64 * 1024 });
    const res = await request(app).post(ORDER_SIGN).send(hookRequest(zolgensmaCase()));
    assert.equal(res.status, 200);
  });

  test('the declared Content-Length alone is enough to refuse (nothing parsed)', async () => {
    const { app } = testApp({ maxBodyBytes: 4096 });
    const res = await request(app).post(ORDER_SIGN).set('Content-Type', 'application/json').send(`{"x":"${'y'.repeat(5000)}"}`);
    assertJsonOutcome(res, 413, 'too-costly');
  });

  test('with authentication on, an unauthenticated large body gets the 401 (authentication runs before parsing)', async () => {
    const key = await makeKey('ES384', 'size-1');
    const { app } = testApp({ maxBodyBytes: 8 * 1024 }, { clients: [inlineClient(ISS_A, [key])] });
    const big = hookRequest(zolgensmaCase(), { extension: { padding: 'x'.repeat(16 * 1024) } });
    assertBare401(await request(app).post(ORDER_SIGN).send(big));
    const res = await request(app).post(ORDER_SIGN).set('Authorization', bearer(await tokenFor(key, ISS_A, ORDER_SIGN))).send(big);
    assertJsonOutcome(res, 413, 'too-costly');
  });
});

describe('JSON nesting', () => {
  const { app } = testApp({ maxJsonDepth: 32 });

  function nested(depth: number): unknown {
    let v: unknown = 'leaf';
    for (let i = 0; i < depth; i++) v = { a: v };
    return v;
  }

  test('deeper than MAX_JSON_DEPTH inside a valid request: 400 too-costly', async () => {
    const res = await request(app).post(ORDER_SIGN).send(hookRequest(zolgensmaCase(), { extension: { deep: nested(40) } }));
    assertJsonOutcome(res, 400, 'too-costly');
  });

  test('deep nesting inside a prefetch resource: 400 too-costly', async () => {
    const c = zolgensmaCase();
    const prefetch = fullPrefetch(c);
    const patient = { ...c.patient, extension: [{ url: 'x', valueString: 'y', extension: nested(40) }] };
    const res = await request(app).post(ORDER_SIGN).send(hookRequest(c, { prefetch: { ...prefetch, patient } as never }));
    assertJsonOutcome(res, 400, 'too-costly');
  });

  test('arrays count too', async () => {
    const res = await request(app).post(ORDER_SIGN).set('Content-Type', 'application/json').send(`{"hook":"order-sign","x":${'['.repeat(40)}${']'.repeat(40)}}`);
    assertJsonOutcome(res, 400, 'too-costly');
  });

  test('a body that is nothing but 500 000 open brackets: 400, no crash', async () => {
    const res = await request(app).post(ORDER_SIGN).set('Content-Type', 'application/json').send('['.repeat(500_000));
    assert.equal(res.status, 400);
    assert.ok(isOperationOutcomeBody(res.body));
    await request(app).get('/health').expect(200);
  });

  test('a normal request within the limit is accepted', async () => {
    const res = await request(app).post(ORDER_SIGN).send(hookRequest(zolgensmaCase()));
    assert.equal(res.status, 200);
  });
});

describe('number of draft orders', () => {
  const { app } = testApp({ maxDraftOrders: 3 });

  function withOrders(n: number, hook: 'order-sign' | 'order-select' = 'order-sign'): Record<string, unknown> {
    const c = zolgensmaCase();
    c.orders = Array.from({ length: n }, (_, i) => zolgensmaOrder(`mr-${i}`, c.patient.id!));
    return hookRequest(c, { hook, ...(hook === 'order-select' ? { selections: ['MedicationRequest/mr-0'] } : {}) });
  }

  test('more than MAX_DRAFT_ORDERS: 400 too-costly naming context.draftOrders', async () => {
    const res = await request(app).post(ORDER_SIGN).send(withOrders(4));
    assertJsonOutcome(res, 400, 'too-costly');
    assert.deepEqual((res.body as { issue: Array<{ expression?: string[] }> }).issue[0]?.expression, ['context.draftOrders']);
    assertJsonOutcome(await request(app).post(ORDER_SELECT).send(withOrders(4, 'order-select')), 400, 'too-costly');
  });

  test('exactly MAX_DRAFT_ORDERS is answered', async () => {
    assert.equal((await request(app).post(ORDER_SIGN).send(withOrders(3))).status, 200);
  });

  test('too many selections in order-select are refused by validation', async () => {
    const body = withOrders(3, 'order-select');
    (body.context as { selections: string[] }).selections = ['MedicationRequest/mr-0', 'MedicationRequest/mr-1', 'MedicationRequest/mr-2', 'MedicationRequest/mr-0'];
    const res = await request(app).post(ORDER_SELECT).send(body);
    assert.equal(res.status, 400);
    assert.ok(isOperationOutcomeBody(res.body));
  });
});

describe('request timeout against a slow FHIR server', () => {
  let fhir: FhirTestServer;
  const c = zolgensmaCase();

  before(async () => {
    fhir = await startFhirServer();
    await fhir.seed(allResources(c));
    fhir.setBehaviour({ delayMs: 900 });
  });
  after(() => fhir.close());

  test('FHIR deadline above REQUEST_TIMEOUT_MS: 408 OperationOutcome (timeout), not 5xx, and the late answer is dropped quietly', async () => {
    const t = testApp({ requestTimeoutMs: 250, fhirDeadlineMs: 1500 });
    const started = performance.now();
    const res = await request(t.app).post(ORDER_SIGN).send(hookRequest(c, { prefetch: 'none', fhirServer: fhir.baseUrl }));
    const elapsed = performance.now() - started;
    assertJsonOutcome(res, 408, 'timeout');
    assert.equal(res.headers.connection, 'close');
    assert.ok(elapsed < 900, `answered after ${Math.round(elapsed)} ms`);
    // Let the pipeline finish in the background: it must not write again or log an error.
    await new Promise((resolve) => setTimeout(resolve, 1200));
    const errors = logEntries(t.logs.lines).filter((e) => Number(e.level) >= 50);
    assert.deepEqual(errors, []);
  });

  test('FHIR deadline below REQUEST_TIMEOUT_MS, data partly prefetched: the pipeline answers 200 itself, degraded', async () => {
    const t = testApp({ requestTimeoutMs: 3000, fhirDeadlineMs: 250 });
    const prefetch: Record<string, unknown> = { ...fullPrefetch(c) };
    delete prefetch.procedures;
    delete prefetch.medicationStatements;
    const started = performance.now();
    const res = await request(t.app).post(ORDER_SIGN).send(hookRequest(c, { prefetch: prefetch as never, fhirServer: fhir.baseUrl }));
    const elapsed = performance.now() - started;
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.ok(elapsed < 900, `answered after ${Math.round(elapsed)} ms`);
    const answered = logEntries(t.logs.lines).find((e) => e.msg === 'hook answered');
    assert.equal((answered?.sources as Record<string, string>).procedures, 'unavailable');
    assert.ok((answered?.problems as string[]).some((p) => /deadline exceeded/.test(p)));
  });

  test('FHIR deadline below REQUEST_TIMEOUT_MS, nothing prefetched: 412 (no Coverage) from the pipeline, before the timeout', async () => {
    const t = testApp({ requestTimeoutMs: 3000, fhirDeadlineMs: 250 });
    const res = await request(t.app).post(ORDER_SIGN).send(hookRequest(c, { prefetch: 'none', fhirServer: fhir.baseUrl }));
    assertJsonOutcome(res, 412, 'not-found');
  });
});

describe('per-client rate limit', () => {
  let keyA: TestKey;
  let keyB: TestKey;

  before(async () => {
    [keyA, keyB] = await Promise.all([makeKey('ES384', 'rl-a'), makeKey('RS384', 'rl-b')]);
  });

  test('client A is throttled with 429 JSON and Retry-After; client B is not; forged tokens naming A do not spend A\'s budget', async () => {
    const { app } = testApp({ rateLimitPerMinute: 3 }, { clients: [inlineClient(ISS_A, [keyA]), inlineClient(ISS_B, [keyB])] });
    const forger = await makeKey('ES384', 'rl-a');
    for (let i = 0; i < 6; i++) {
      assertBare401(await request(app).get('/cds-services').set('Authorization', bearer(await tokenFor(forger, ISS_A, '/cds-services'))));
    }
    const call = async (key: TestKey, iss: string) =>
      request(app).post(ORDER_SIGN).set('Authorization', bearer(await tokenFor(key, iss, ORDER_SIGN))).send(hookRequest(zolgensmaCase()));
    for (let i = 0; i < 3; i++) assert.equal((await call(keyA, ISS_A)).status, 200, `A call ${i + 1}`);
    const throttled = await call(keyA, ISS_A);
    assertJsonOutcome(throttled, 429, 'throttled');
    const retryAfter = Number(throttled.headers['retry-after']);
    assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60, `Retry-After ${throttled.headers['retry-after']}`);
    for (let i = 0; i < 3; i++) assert.equal((await call(keyB, ISS_B)).status, 200, `B call ${i + 1}`);
    assertJsonOutcome(await call(keyB, ISS_B), 429, 'throttled');
    // Discovery counts against the same per-client budget.
    const discovery = await request(app).get('/cds-services').set('Authorization', bearer(await tokenFor(keyA, ISS_A, '/cds-services')));
    assert.equal(discovery.status, 429);
  });

  test('authentication off: keyed by the remote address', async () => {
    const { app } = testApp({ rateLimitPerMinute: 2 });
    assert.equal((await request(app).get('/cds-services')).status, 200);
    assert.equal((await request(app).get('/cds-services')).status, 200);
    assertJsonOutcome(await request(app).get('/cds-services'), 429, 'throttled');
    // /health is mounted before the limiter and stays reachable for probes.
    await request(app).get('/health').expect(200);
  });
});
