import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import request from 'supertest';
import type { DecisionRecorder } from '../../server/app.ts';
import type { HookResponse } from '../../server/protocol/types.ts';
import type { DecisionRecord } from '../../server/store/types.ts';
import { ORDER_SELECT, ORDER_SIGN, testApp } from '../support/app.ts';
import { hookRequest, zolgensmaCase } from '../support/fixtures.ts';
import { codes, coverageInfo, reasons } from '../support/responses.ts';

/** The hook route's contract with the decision log, with an in-memory recorder. */

const ORDER = 'MedicationRequest/mr-zolgensma';

function recorder(behaviour: { delayMs?: number; fail?: boolean } = {}) {
  const saved: DecisionRecord[] = [];
  const events: string[] = [];
  const impl: DecisionRecorder = {
    async record(decision) {
      events.push('record-start');
      await new Promise((r) => setTimeout(r, behaviour.delayMs ?? 0));
      if (behaviour.fail) throw new Error('database and spool both unavailable');
      saved.push(structuredClone(decision));
      events.push('record-committed');
    },
    async health() {
      return { ok: !behaviour.fail, engine: 'memory', spooled: 0 };
    },
  };
  return { impl, saved, events };
}

describe('every answer is recorded before it is acknowledged', () => {
  test('the 200 waits for the commit, and the record matches the response', async () => {
    const rec = recorder({ delayMs: 150 });
    const { app } = testApp({}, { recorder: rec.impl });
    const c = zolgensmaCase();
    const started = Date.now();
    const res = await request(app).post(ORDER_SIGN).send(hookRequest(c, { fhirServer: 'http://127.0.0.1:9/fhir', accessToken: 'secret-token-abc123' }));
    assert.equal(res.status, 200);
    assert.ok(Date.now() - started >= 150, 'the response came after the commit');
    assert.deepEqual(rec.events, ['record-start', 'record-committed']);
    const body = res.body as HookResponse;
    const saved = rec.saved[0]!;
    const assertionId = coverageInfo(body, ORDER).get('coverage-assertion-id')?.[0]?.valueString;
    assert.deepEqual(saved.assertionIds, [assertionId]);
    assert.deepEqual(saved.cardUuids.sort(), body.cards.map((card) => card.uuid).sort());
    assert.deepEqual(saved.response, body);
    assert.equal(saved.responseJson, res.text, 'the record keeps the response byte for byte as sent');
    assert.equal(saved.hook, 'order-sign');
    assert.equal(saved.patientId, c.patient.id);
    assert.equal(saved.payerId, 'jefferson-health-plans');
    const order = saved.orders.find((o) => o.orderReference === ORDER)!;
    assert.equal(order.policyId, 'jefferson-dr005d-zolgensma');
    assert.equal(order.policyVersion, 'D');
    assert.equal(order.assertionId, assertionId);
    assert.equal(order.covered, 'covered');
    const criteria = order.criteria as { results: { id: string; status: string; evidence: { reference?: string }[] }[] };
    assert.equal(criteria.results.filter((r) => r.status === 'met').length, 12);
    assert.ok(criteria.results.find((r) => r.id === 'aav9-titer')?.evidence.some((e) => e.reference === 'Observation/obs-aav9'));
  });

  test('never the token, never the whole prefetch: evidence keeps what the decision rests on', async () => {
    const rec = recorder();
    const { app } = testApp({}, { recorder: rec.impl });
    const c = zolgensmaCase();
    c.observations.push({ ...c.observations[0]!, id: 'obs-unrelated', code: { coding: [{ system: 'http://loinc.org', code: '8310-5', display: 'Body temperature' }] } });
    await request(app).post(ORDER_SIGN).send(hookRequest(c, { fhirServer: 'http://127.0.0.1:9/fhir', accessToken: 'secret-token-abc123' })).expect(200);
    const text = JSON.stringify(rec.saved[0]);
    assert.ok(!text.includes('secret-token-abc123'), 'no access token');
    assert.ok(!text.includes('Testbaby') && !text.includes('MRN-77341'), "the patient's name and MRN are not kept");
    assert.ok(!text.includes('obs-unrelated'), 'unrelated prefetch is not kept');
    const evidence = rec.saved[0]!.evidence as { resourceType: string; id?: string }[];
    assert.ok(evidence.some((r) => r.resourceType === 'Observation' && r.id === 'obs-aav9'));
    assert.ok(evidence.some((r) => r.resourceType === 'Coverage'));
  });

  test('order-select answers are recorded too', async () => {
    const rec = recorder();
    const { app } = testApp({}, { recorder: rec.impl });
    await request(app).post(ORDER_SELECT).send(hookRequest(zolgensmaCase(), { hook: 'order-select' })).expect(200);
    assert.equal(rec.saved[0]?.hook, 'order-select');
  });

  test('invalid requests are not recorded (nothing was answered)', async () => {
    const rec = recorder();
    const { app } = testApp({}, { recorder: rec.impl });
    await request(app).post(ORDER_SIGN).send({ hook: 'order-sign' }).expect(400);
    assert.equal(rec.saved.length, 0);
  });

  test('when nothing can keep the record, the EHR still gets an answer, but no coverage assertion', async () => {
    const rec = recorder({ fail: true });
    const { app, logs } = testApp({}, { recorder: rec.impl });
    const res = await request(app).post(ORDER_SIGN).send(hookRequest(zolgensmaCase()));
    assert.equal(res.status, 200);
    const info = coverageInfo(res.body as HookResponse, ORDER);
    assert.deepEqual(codes(info, 'covered'), ['indeterminate']);
    assert.equal(info.get('reason')?.[0]?.valueCodeableConcept?.coding?.[0]?.code, 'technical');
    assert.match(reasons(info).join(' '), /could not be recorded/);
    for (const card of (res.body as HookResponse).cards) {
      assert.match(card.summary, /^Not recorded: /);
      assert.equal(card.indicator, 'warning');
      assert.ok(card.summary.length < 140);
    }
    assert.match(logs.text, /decision could not be recorded/);
  });

  test('/health reports the decision log', async () => {
    const rec = recorder();
    const { app } = testApp({}, { recorder: rec.impl });
    const res = await request(app).get('/health').expect(200);
    assert.deepEqual(res.body.decisionLog, { ok: true, engine: 'memory', spooled: 0 });
  });
});
