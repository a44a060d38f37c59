import assert from 'node:assert/strict';
import { test } from 'node:test';
import request from 'supertest';
import type { Medication } from 'fhir/r4.js';
import type { HookResponse } from '../../server/protocol/types.ts';
import { ORDER_SIGN, testApp } from '../support/app.ts';
import { coding, hookRequest, RXNORM, zolgensmaCase } from '../support/fixtures.ts';
import { codes, coverageInfo } from '../support/responses.ts';

test('a draft order may reference a Medication in the same Bundle by its urn:uuid fullUrl', async () => {
  const c = zolgensmaCase();
  const medication: Medication = { resourceType: 'Medication', id: 'med-z', code: { coding: [coding(RXNORM, '2170226', 'onasemnogene abeparvovec')] } };
  const order = c.orders[0]!;
  if (order.resourceType !== 'MedicationRequest') throw new Error('fixture changed');
  delete order.medicationCodeableConcept;
  order.medicationReference = { reference: 'urn:uuid:7b1c5c3e-0d0e-4a51-9d3f-2a7f0f6a1b11' };
  const body = hookRequest(c) as { context: { draftOrders: { entry: { fullUrl: string; resource: unknown }[] } } };
  body.context.draftOrders.entry.push({ fullUrl: 'urn:uuid:7b1c5c3e-0d0e-4a51-9d3f-2a7f0f6a1b11', resource: medication });
  const res = await request(testApp().app).post(ORDER_SIGN).send(body).expect(200);
  assert.deepEqual(codes(coverageInfo(res.body as HookResponse, 'MedicationRequest/mr-zolgensma'), 'covered'), ['covered']);
});
