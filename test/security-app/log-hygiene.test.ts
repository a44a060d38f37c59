import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Bundle, Observation } from 'fhir/r4.js';
import request from 'supertest';
import { createFeedbackRouter } from '../../server/http/feedback.ts';
import { createLogger } from '../../server/logger.ts';
import type { DecisionStore } from '../../server/store/types.ts';
import { makeKey, nowSeconds, type TestKey } from '../security/helpers.ts';
import { LogCapture, ORDER_SELECT, ORDER_SIGN, testApp, type TestApp } from '../support/app.ts';
import { startFhirServer, type FhirTestServer } from '../support/fhir-server.ts';
import { allResources, condition, coding, fullPrefetch, hookRequest, ICD10, observation, zolgensmaCase, type ClinicalCase } from '../support/fixtures.ts';
import { bearer, inlineClient, ISS_A, logEntries, tokenFor } from './helpers.ts';

/**
 * Issue 4, log hygiene: representative traffic (answers, 400, 401, 404, 412, 413, FHIR fallback with
 * the EHR's token, FHIR failures) through the app with a trace-level logger, then the whole captured
 * log is searched for every secret and identifier the traffic carried.
 */

const ACCESS_TOKEN = 'ya29.ehr-fhir-access-token-2b7e151628aed2a6';
const PATIENT_ID = 'pat-x7q2m9';
const OBSERVATION_VALUE = 'titer-note-Q8F3K-positive-at-1:400';
const CONDITION_TEXT = 'family-reported-onset-ZK41-at-two-months';

let key: TestKey;
let fhir: FhirTestServer;
let t: TestApp;
let capture: LogCapture;
let c: ClinicalCase;
const jwts: string[] = [];

function sensitiveCase(): ClinicalCase {
  const k = zolgensmaCase({ patientId: PATIENT_ID });
  k.observations.push(observation('obs-note', PATIENT_ID, coding('http://lab.example.org/test-codes', 'AAV9-AB'), { valueString: OBSERVATION_VALUE }));
  k.conditions.push(condition('cond-note', PATIENT_ID, coding(ICD10, 'G12.9'), { text: CONDITION_TEXT }));
  return k;
}

async function jwt(path: string, opts: Parameters<typeof tokenFor>[3] = {}): Promise<string> {
  const token = await tokenFor(key, ISS_A, path, opts);
  jwts.push(token);
  return token;
}

async function post(path: string, body: unknown, authorization?: string) {
  const req = request(t.app).post(path).set('Authorization', authorization ?? bearer(await jwt(path)));
  return typeof body === 'string' ? req.set('Content-Type', 'application/json').send(body) : req.send(body as object);
}

before(async () => {
  key = await makeKey('ES384', 'log-1');
  c = sensitiveCase();
  fhir = await startFhirServer();
  await fhir.seed(allResources(c));
  capture = new LogCapture();
  // trace: the most verbose level an operator could switch on must still be clean.

  const logger = createLogger('trace', capture);
  const store = {
    saveFeedback: async (_serviceId: string, _iss: string | null, items: unknown[]) => ({ stored: items.length, duplicates: 0, unknownCards: ['x'] }),
  } as unknown as DecisionStore;
  const feedback = createFeedbackRouter({ store, serviceIds: new Set(['gene-therapy-crd-order-sign']), logger });
  t = testApp({ maxBodyBytes: 256 * 1024 }, { logger, clients: [inlineClient(ISS_A, [key], [`${fhir.baseUrl}/`])], routers: [feedback] });

  const statuses: number[] = [];
  const record = (res: { status: number }) => statuses.push(res.status);

  // Answers: full prefetch with a token; order-select; FHIR fallback with the token.
  record(await post(ORDER_SIGN, hookRequest(c, { fhirServer: fhir.baseUrl, accessToken: ACCESS_TOKEN })));
  record(await post(ORDER_SELECT, hookRequest(c, { hook: 'order-select', fhirServer: fhir.baseUrl, accessToken: ACCESS_TOKEN })));
  fhir.setBehaviour({ requireBearer: ACCESS_TOKEN });
  record(await post(ORDER_SIGN, hookRequest(c, { prefetch: 'none', fhirServer: fhir.baseUrl, accessToken: ACCESS_TOKEN })));
  // FHIR failures while falling back: one category fails (degraded 200), then every query fails (412).
  fhir.setBehaviour({ requireBearer: ACCESS_TOKEN, failWith: 500, failPathPattern: /Observation/ });
  record(await post(ORDER_SIGN, hookRequest(c, { prefetch: 'none', fhirServer: fhir.baseUrl, accessToken: ACCESS_TOKEN })));
  fhir.setBehaviour({ requireBearer: 'another-token' });
  record(await post(ORDER_SIGN, hookRequest(c, { prefetch: 'none', fhirServer: fhir.baseUrl, accessToken: ACCESS_TOKEN })));
  fhir.setBehaviour({});
  // A paged prefetch whose next link leaves the server (refused), and a refused fhirServer (412).
  const paged = fullPrefetch(c);
  (paged.observations as Bundle).link = [{ relation: 'next', url: `http://127.0.0.1:9/fhir/Observation?access_token=${ACCESS_TOKEN}&patient=${PATIENT_ID}` }];
  record(await post(ORDER_SIGN, hookRequest(c, { prefetch: paged, fhirServer: fhir.baseUrl, accessToken: ACCESS_TOKEN })));
  record(await post(ORDER_SIGN, hookRequest(c, { prefetch: 'none', fhirServer: `http://127.0.0.1:9/fhir?access_token=${ACCESS_TOKEN}`, accessToken: ACCESS_TOKEN })));
  // 400s: schema, prefetch of the wrong type, malformed JSON carrying the token, malformed resource data.
  const badUser = hookRequest(c, { fhirServer: fhir.baseUrl, accessToken: ACCESS_TOKEN });
  (badUser.context as Record<string, unknown>).userId = `Avery Testbaby ${PATIENT_ID}`;
  record(await post(ORDER_SIGN, badUser));
  record(await post(ORDER_SIGN, hookRequest(c, { prefetch: { ...fullPrefetch(c), patient: c.coverage }, fhirServer: fhir.baseUrl, accessToken: ACCESS_TOKEN })));
  record(await post(ORDER_SIGN, JSON.stringify(hookRequest(c, { fhirServer: fhir.baseUrl, accessToken: ACCESS_TOKEN })).slice(0, 900)));
  const odd = fullPrefetch(c);
  const obs = (odd.observations as Bundle).entry?.[0]?.resource as Observation;
  (obs as unknown as Record<string, unknown>).valueQuantity = OBSERVATION_VALUE;
  record(await post(ORDER_SIGN, hookRequest(c, { prefetch: odd, fhirServer: fhir.baseUrl, accessToken: ACCESS_TOKEN })));
  // 401s: bad signature, replay, the EHR's FHIR token sent as the bearer, a JWT for another path.
  const forger = await makeKey('ES384', 'log-1');
  const forged = await tokenFor(forger, ISS_A, ORDER_SIGN);
  jwts.push(forged);
  record(await post(ORDER_SIGN, hookRequest(c), bearer(forged)));
  const once = await jwt(ORDER_SIGN);
  record(await post(ORDER_SIGN, hookRequest(c), bearer(once)));
  record(await post(ORDER_SIGN, hookRequest(c), bearer(once)));
  record(await post(ORDER_SIGN, hookRequest(c), bearer(ACCESS_TOKEN)));
  record(await post(ORDER_SIGN, hookRequest(c), bearer(await jwt(ORDER_SELECT))));
  const stranger = await tokenFor(key, 'https://x.example.org', ORDER_SIGN, { claims: { iat: nowSeconds() } });
  jwts.push(stranger);
  record(await post(ORDER_SIGN, hookRequest(c), bearer(stranger)));
  // Feedback whose free-text override comment names the patient, valid and invalid.
  const comment = { reason: { code: 'other', system: 'http://example.org/override' }, userComment: `Avery Testbaby ${PATIENT_ID} MRN-77341` };
  const item = { card: 'c0ffee00-0000-4000-8000-000000000001', outcome: 'overridden', overrideReason: comment, outcomeTimestamp: new Date().toISOString() };
  const stored = await post(`${ORDER_SIGN}/feedback`, { feedback: [item] });
  assert.equal(stored.status, 200, stored.text);
  const refused = await post(`${ORDER_SIGN}/feedback`, { feedback: [{ ...item, outcome: 'accepted' }] });
  assert.equal(refused.status, 400, refused.text);
  // 404 and 413 with patient data in the body.
  record(await post('/cds-services/no-such-service', hookRequest(c, { fhirServer: fhir.baseUrl, accessToken: ACCESS_TOKEN })));
  record(await post(ORDER_SIGN, hookRequest(c, { fhirServer: fhir.baseUrl, accessToken: ACCESS_TOKEN, extension: { pad: `${OBSERVATION_VALUE} `.repeat(10_000) } })));

  // The traffic really was representative.
  for (const status of [200, 400, 401, 404, 412, 413]) assert.ok(statuses.includes(status), `no ${status} in ${statuses.join(',')}`);
  assert.ok(fhir.requests.some((r) => r.authorization === `Bearer ${ACCESS_TOKEN}`), 'the FHIR fallback ran with the token');
});

after(() => fhir.close());

describe('log hygiene over representative traffic', () => {
  test('the log is not empty: the useful fields are there', () => {
    const entries = logEntries(capture.lines);
    const answered = entries.filter((e) => e.msg === 'hook answered');
    assert.ok(answered.length >= 4);
    for (const e of answered) {
      for (const field of ['serviceId', 'hook', 'hookInstance', 'iss', 'payer', 'orders', 'sources', 'problems', 'ms']) assert.ok(field in e, `hook answered lacks ${field}`);
    }
    const reasons = entries.filter((e) => e.event === 'client_auth_failed').map((e) => e.reason);
    for (const reason of ['jwt_bad_signature', 'jwt_replay', 'jwt_malformed', 'jwt_aud_mismatch', 'jwt_unknown_iss']) assert.ok(reasons.includes(reason), `${reason} not logged: ${reasons.join(',')}`);
  });

  test('no access token, in any form', () => {
    assert.ok(!capture.text.includes(ACCESS_TOKEN));
    assert.ok(!capture.text.includes('2b7e151628aed2a6'));
  });

  test('no JWT and no JWT segment', () => {
    assert.ok(jwts.length >= 8);
    for (const token of jwts) {
      assert.ok(!capture.text.includes(token));
      for (const segment of token.split('.')) assert.ok(!capture.text.includes(segment), `JWT segment logged: ${segment.slice(0, 16)}…`);
    }
    assert.ok(!/eyJ[A-Za-z0-9_-]{8,}/.test(capture.text), 'something shaped like a JOSE header was logged');
  });

  test('no patient identity: name, MRN, birth date, patient id', () => {
    for (const value of ['Testbaby', 'Avery', 'MRN-77341', c.patient.birthDate!, PATIENT_ID, 'Okafor', 'Ngozi']) {
      assert.ok(!capture.text.includes(value), `logged: ${value}`);
    }
  });

  test('no prefetch contents', () => {
    for (const value of [OBSERVATION_VALUE, 'Q8F3K', CONDITION_TEXT, 'M0001', 'HealthChoices', 'prednisolone 1 mg/kg/day']) {
      assert.ok(!capture.text.includes(value), `logged: ${value}`);
    }
  });
});
