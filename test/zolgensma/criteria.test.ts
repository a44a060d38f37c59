import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import request from 'supertest';
import type { HookResponse } from '../../server/protocol/types.ts';
import { ORDER_SIGN, testApp } from '../support/app.ts';
import {
  aav9Titer,
  birthDateMonthsAgo,
  coding,
  condition,
  daysAgo,
  HCPCS,
  hookRequest,
  ICD10,
  LOINC,
  observation,
  quantity,
  smn1Result,
  SNOMED,
  NUCC,
  weight,
  zolgensmaCase,
  zolgensmaOrder,
  type ClinicalCase,
  type RequestOptions,
} from '../support/fixtures.ts';
import { checklist, checklistCard, codes, coverageInfo, detailCodes, detailValue, reasons, ruleLine } from '../support/responses.ts';

/**
 * Jefferson Health Plans DR.005.D: every initial criterion as met, not met and missing, through
 * the HTTP API with full prefetch, reading the answer as the EHR does: the coverage-information
 * system action and the clinician's checklist card.
 */

const ORDER = 'MedicationRequest/mr-zolgensma';
const { app } = testApp();

async function sign(c: ClinicalCase, options: RequestOptions = {}): Promise<HookResponse> {
  const res = await request(app).post(ORDER_SIGN).send(hookRequest(c, options));
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body as HookResponse;
}

function criterion(response: HookResponse, n: number) {
  const line = checklist(checklistCard(response, ORDER)).get(n);
  assert.ok(line, `criterion ${n} on the checklist`);
  return line;
}

function removeObservation(c: ClinicalCase, id: string): void {
  c.observations = c.observations.filter((o) => o.id !== id);
}

function replaceObservation(c: ClinicalCase, id: string, next: ClinicalCase['observations'][number]): void {
  removeObservation(c, id);
  c.observations.push(next);
}

describe('DR.005.D: all criteria met', () => {
  test('covered with prior authorization, no documentation asked, 11 of 11 met with evidence', async () => {
    const response = await sign(zolgensmaCase());
    const info = coverageInfo(response, ORDER);
    assert.deepEqual(codes(info, 'covered'), ['covered']);
    assert.deepEqual(codes(info, 'pa-needed'), ['auth-needed']);
    assert.deepEqual(codes(info, 'doc-needed'), []);
    assert.equal(info.get('billingCode')?.[0]?.valueCoding?.code, 'J3399');
    assert.deepEqual(detailCodes(info), ['policy-link']);
    const card = checklistCard(response, ORDER);
    assert.equal(card.summary, 'Zolgensma: prior authorization required; all criteria documented');
    assert.equal(card.indicator, 'info');
    assert.equal(card.source.label, 'Jefferson Health Plans');
    const lines = checklist(card);
    assert.equal(lines.size, 11);
    for (const [n, line] of lines) assert.equal(line.status, 'met', `criterion ${n}: ${line.line}`);
    assert.match(lines.get(6)!.line, /AAV9 titer 1:25 by ELISA on \d{4}-\d{2}-\d{2} \(Observation\/obs-aav9\)/);
    assert.match(lines.get(2)!.line, /SMN1 copy number 0/);
    assert.match(lines.get(11)!.line, /Kit NDC 71894-131-06 is for 8\.1–8\.5 kg/);
    assert.equal(ruleLine(card, 'One-time only')?.status, 'met');
  });

  test('the prednisolone draft order in the same call gets no assertion of its own', async () => {
    const response = await sign(zolgensmaCase());
    assert.equal(response.systemActions?.length, 1);
    assert.equal(response.cards.filter((c) => c.source.topic.code === 'guideline').length, 1);
  });
});

describe('criterion 1: prescribed by or in consultation with an SMA specialist', () => {
  test('met: SNOMED neurology specialty also counts', async () => {
    const c = zolgensmaCase();
    c.role.specialty = [{ coding: [coding(SNOMED, '394591006', 'Neurology')] }];
    assert.equal(criterion(await sign(c), 1).status, 'met');
  });

  test('not met by the prescriber: a family physician without a documented consultation → asks for it', async () => {
    const c = zolgensmaCase();
    c.role.specialty = [{ coding: [coding(NUCC, '207Q00000X', 'Family Medicine')] }];
    const response = await sign(c);
    const line = criterion(response, 1);
    assert.equal(line.status, 'missing');
    assert.match(line.line, /Family Medicine/);
    assert.match(line.line, /Consultation with a physician who specializes in SMA/);
    const info = coverageInfo(response, ORDER);
    assert.deepEqual(codes(info, 'doc-needed'), ['clinical']);
    assert.deepEqual(codes(info, 'doc-purpose'), ['withpa']);
  });

  test('missing: the ordering clinician has no role in the record', async () => {
    const c = zolgensmaCase();
    c.orders[0] = zolgensmaOrder('mr-zolgensma', c.patient.id!, { requester: 'Practitioner/unknown-doc' });
    const line = criterion(await sign(c, { userId: 'Practitioner/unknown-doc' }), 1);
    assert.equal(line.status, 'missing');
    assert.match(line.line, /specialty is not in the record/);
  });
});

describe('criterion 2: SMA with genetically confirmed bi-allelic SMN1 deletions or variants', () => {
  test('met: dotless ICD-10 G120 and SNOMED 5262007 are SMA too', async () => {
    const c = zolgensmaCase();
    c.conditions = [condition('cond-sma', c.patient.id!, coding(ICD10, 'G120'))];
    assert.equal(criterion(await sign(c), 2).status, 'met');
    c.conditions = [condition('cond-sma', c.patient.id!, coding(SNOMED, '5262007', 'Spinal muscular atrophy'))];
    assert.equal(criterion(await sign(c), 2).status, 'met');
  });

  test('not met: two SMN1 copies → not covered, off-label route named', async () => {
    const c = zolgensmaCase();
    replaceObservation(c, 'obs-smn1', smn1Result('obs-smn1', c.patient.id!, 2));
    const response = await sign(c);
    assert.equal(criterion(response, 2).status, 'not-met');
    const info = coverageInfo(response, ORDER);
    assert.deepEqual(codes(info, 'covered'), ['not-covered']);
    assert.deepEqual(codes(info, 'pa-needed'), [], 'crd-ci-q2: no pa-needed when not covered');
    assert.match(reasons(info).join(' '), /Bi-allelic SMN1 deletions or variants are not confirmed/);
    const card = checklistCard(response, ORDER);
    assert.equal(card.source.topic.code, 'off-guideline');
    assert.match(card.detail ?? '', /Off-label requests are evaluated individually/);
    assert.match(card.summary, /^Zolgensma: not covered — /);
  });

  test('not met: the order is for a motor neuron disease (G12.21), not SMA', async () => {
    const c = zolgensmaCase();
    c.conditions = [];
    c.orders[0] = { ...c.orders[0]!, reasonCode: [{ coding: [coding(ICD10, 'G12.21', 'Amyotrophic lateral sclerosis')] }] };
    const response = await sign(c);
    assert.equal(criterion(response, 2).status, 'not-met');
    assert.deepEqual(codes(coverageInfo(response, ORDER), 'covered'), ['not-covered']);
  });

  test('missing: no genetic result', async () => {
    const c = zolgensmaCase();
    removeObservation(c, 'obs-smn1');
    const response = await sign(c);
    const line = criterion(response, 2);
    assert.equal(line.status, 'missing');
    assert.match(line.line, /Genetic report confirming bi-allelic SMN1/);
    const card = checklistCard(response, ORDER);
    assert.equal(card.summary, 'Zolgensma: prior authorization required; 1 item missing');
    assert.match(reasons(coverageInfo(response, ORDER)).join(' '), /Documentation needed: Genetic report/);
  });

  test('missing: a narrative-only SMN1 result cannot be read as confirmation', async () => {
    const c = zolgensmaCase();
    removeObservation(c, 'obs-smn1');
    c.observations.push(observation('obs-smn1-text', c.patient.id!, coding(LOINC, '35462-1', 'SMN1 gene targeted mutation analysis'), { valueString: 'Homozygous deletion of SMN1 exon 7 detected' }));
    const line = criterion(await sign(c), 2);
    assert.equal(line.status, 'missing');
    assert.match(line.line, /narrative/);
  });

  test('missing: one SMN1 copy needs the second variant documented', async () => {
    const c = zolgensmaCase();
    replaceObservation(c, 'obs-smn1', smn1Result('obs-smn1', c.patient.id!, 1));
    const line = criterion(await sign(c), 2);
    assert.equal(line.status, 'missing');
    assert.match(line.line, /One SMN1 copy/);
  });

  test('missing: no SMA diagnosis recorded', async () => {
    const c = zolgensmaCase();
    c.conditions = [];
    const line = criterion(await sign(c), 2);
    assert.equal(line.status, 'missing');
    assert.match(line.line, /SMA diagnosis/);
  });
});

describe('criterion 3: no advanced SMA (else refer to Medical Director)', () => {
  test('met: a resolved tracheostomy status does not count', async () => {
    const c = zolgensmaCase();
    c.conditions.push(condition('cond-trach', c.patient.id!, coding(ICD10, 'Z93.0'), { clinicalStatus: 'resolved' }));
    assert.equal(criterion(await sign(c), 3).status, 'met');
  });

  test('not met: ventilator dependence → conditional, Medical Director review (info-needed OTH)', async () => {
    const c = zolgensmaCase();
    c.conditions.push(condition('cond-vent', c.patient.id!, coding(ICD10, 'Z99.11', 'Dependence on respirator [ventilator] status')));
    const response = await sign(c);
    assert.equal(criterion(response, 3).status, 'review');
    const info = coverageInfo(response, ORDER);
    assert.deepEqual(codes(info, 'covered'), ['conditional']);
    assert.deepEqual(codes(info, 'pa-needed'), ['auth-needed']);
    assert.deepEqual(codes(info, 'info-needed'), ['OTH']);
    assert.match(reasons(info).join(" "), /Referred to the Medical Director/);
    assert.match(checklistCard(response, ORDER).summary, /Medical Director/i);
  });

  test('not met: SNOMED dependence on ventilator 444932008 is recognised too', async () => {
    const c = zolgensmaCase();
    c.conditions.push(condition('cond-vent', c.patient.id!, coding(SNOMED, '444932008', 'Dependence on ventilator')));
    assert.equal(criterion(await sign(c), 3).status, 'review');
  });

  test('missing: conditions could not be retrieved → cannot be checked, coverage indeterminate (technical)', async () => {
    const c = zolgensmaCase();
    const full = hookRequest(c).prefetch as Record<string, unknown>;
    const { conditions: _dropped, ...prefetch } = full;
    const response = await sign(c, { prefetch: prefetch as RequestOptions['prefetch'] });
    assert.equal(criterion(response, 3).status, 'unavailable');
    const info = coverageInfo(response, ORDER);
    assert.deepEqual(codes(info, 'covered'), ['indeterminate']);
    const technical = (info.get('reason') ?? []).find((r) => r.valueCodeableConcept?.coding?.[0]?.code === 'technical');
    assert.ok(technical, 'a technical reason (crd-ci-q9)');
    assert.match(technical.valueCodeableConcept?.text ?? '', /Conditions could not be retrieved/);
  });
});

describe('criterion 4: premature infants wait for full-term corrected age', () => {
  test('met: born at 30 weeks, now 10 months old (term-corrected age long reached)', async () => {
    const c = zolgensmaCase();
    replaceObservation(c, 'obs-ga', observation('obs-ga', c.patient.id!, coding(LOINC, '76516-4'), { valueQuantity: quantity(30, 'wk') }, { category: 'exam' }));
    const line = criterion(await sign(c), 4);
    assert.equal(line.status, 'met');
    assert.match(line.line, /Full-term corrected age reached on/);
  });

  test('not met yet: born at 30 weeks, 3 weeks old → conditional with timeframe and the earliest date', async () => {
    const c = zolgensmaCase();
    c.patient.birthDate = daysAgo(21);
    replaceObservation(c, 'obs-ga', observation('obs-ga', c.patient.id!, coding(LOINC, '76516-4'), { valueQuantity: quantity(210, 'd') }, { category: 'exam' }));
    const response = await sign(c);
    const expected = new Date(Date.parse(`${c.patient.birthDate}T00:00:00Z`) + 70 * 86_400_000).toISOString().slice(0, 10);
    const line = criterion(response, 4);
    assert.equal(line.status, 'deferred');
    assert.match(line.line, new RegExp(expected));
    const info = coverageInfo(response, ORDER);
    assert.deepEqual(codes(info, 'covered'), ['conditional']);
    assert.deepEqual(codes(info, 'info-needed'), ['timeframe']);
    assert.equal(detailValue(info, 'allowed-period')?.valuePeriod?.start, expected);
  });

  test('not met yet: preterm ICD-10 P07.33 (30 weeks) without a GA observation gives the same date', async () => {
    const c = zolgensmaCase();
    c.patient.birthDate = daysAgo(21);
    removeObservation(c, 'obs-ga');
    c.conditions.push(condition('cond-preterm', c.patient.id!, coding(ICD10, 'P07.33', 'Preterm newborn, gestational age 30 completed weeks')));
    const line = criterion(await sign(c), 4);
    assert.equal(line.status, 'deferred');
    assert.match(line.line, /30 weeks/);
  });

  test('missing: preterm birth coded without the number of weeks', async () => {
    const c = zolgensmaCase();
    removeObservation(c, 'obs-ga');
    c.conditions.push(condition('cond-preterm', c.patient.id!, coding(ICD10, 'P07.30', 'Preterm newborn, unspecified weeks of gestation')));
    const line = criterion(await sign(c), 4);
    assert.equal(line.status, 'missing');
    assert.match(line.line, /Gestational age at birth/);
  });
});

describe('criterion 5: less than 2 years of age', () => {
  test('met: the card gives the last day the infusion is within the age limit', async () => {
    const c = zolgensmaCase();
    const line = criterion(await sign(c), 5);
    assert.equal(line.status, 'met');
    assert.match(line.line, /Age 10 months/);
  });

  test('not met: 25 months old → not covered, off-label use reviewed individually', async () => {
    const c = zolgensmaCase();
    c.patient.birthDate = birthDateMonthsAgo(25);
    const response = await sign(c);
    assert.equal(criterion(response, 5).status, 'not-met');
    const info = coverageInfo(response, ORDER);
    assert.deepEqual(codes(info, 'covered'), ['not-covered']);
    assert.match(reasons(info).join(' '), /2 years of age or older/);
    assert.match(checklistCard(response, ORDER).detail ?? '', /Medical Directors review/);
  });

  test('boundary: the day before the second birthday is met, the birthday itself is not', async () => {
    const c = zolgensmaCase();
    c.patient.birthDate = birthDateMonthsAgo(24, -1);
    assert.equal(criterion(await sign(c), 5).status, 'met');
    c.patient.birthDate = birthDateMonthsAgo(24);
    assert.equal(criterion(await sign(c), 5).status, 'not-met');
  });

  test('missing: no birth date', async () => {
    const c = zolgensmaCase();
    delete c.patient.birthDate;
    const line = criterion(await sign(c), 5);
    assert.equal(line.status, 'missing');
    assert.match(line.line, /Date of birth/);
  });
});

describe('criterion 6: baseline anti-AAV9 titer ≤ 1:50 by ELISA', () => {
  const met = [
    ['"<1:25" string', { valueString: '<1:25' }],
    ['"1:50" string (boundary)', { valueString: '1:50' }],
    ['Ratio 1/25', { valueRatio: { numerator: { value: 1 }, denominator: { value: 25 } } }],
    ['Quantity <25 {titer}', { valueQuantity: { value: 25, comparator: '<' as const, unit: '{titer}' } }],
  ] as const;
  for (const [name, value] of met) {
    test(`met: ${name}`, async () => {
      const c = zolgensmaCase();
      replaceObservation(c, 'obs-aav9', aav9Titer('obs-aav9', c.patient.id!, value));
      assert.equal(criterion(await sign(c), 6).status, 'met');
    });
  }

  test('met: a result identified only by its display text (no configured code)', async () => {
    const c = zolgensmaCase();
    replaceObservation(
      c,
      'obs-aav9',
      aav9Titer('obs-aav9', c.patient.id!, { valueString: '1:25' }, { code: coding('urn:oid:2.16.840.1.113883.999', 'X-7731', 'Anti-AAV9 total binding antibody titer') }),
    );
    const line = criterion(await sign(c), 6);
    assert.equal(line.status, 'met');
  });

  test('not met: 1:100 → not covered, with the label retest route', async () => {
    const c = zolgensmaCase();
    replaceObservation(c, 'obs-aav9', aav9Titer('obs-aav9', c.patient.id!, { valueString: '1:100' }));
    const response = await sign(c);
    const line = criterion(response, 6);
    assert.equal(line.status, 'not-met');
    assert.match(line.line, /AAV9 titer 1:100 by ELISA/);
    const info = coverageInfo(response, ORDER);
    assert.deepEqual(codes(info, 'covered'), ['not-covered']);
    assert.match(checklistCard(response, ORDER).detail ?? '', /retesting when the titer is above 1:50/);
  });

  test('not met: ">1:400"', async () => {
    const c = zolgensmaCase();
    replaceObservation(c, 'obs-aav9', aav9Titer('obs-aav9', c.patient.id!, { valueString: '>1:400' }));
    assert.equal(criterion(await sign(c), 6).status, 'not-met');
  });

  test('missing: no titer result', async () => {
    const c = zolgensmaCase();
    removeObservation(c, 'obs-aav9');
    const line = criterion(await sign(c), 6);
    assert.equal(line.status, 'missing');
    assert.match(line.line, /Baseline anti-AAV9 antibody titer measured by ELISA/);
  });

  test('missing: the assay method is not recorded', async () => {
    const c = zolgensmaCase();
    replaceObservation(c, 'obs-aav9', aav9Titer('obs-aav9', c.patient.id!, { valueString: '1:25' }, { method: '' }));
    const line = criterion(await sign(c), 6);
    assert.equal(line.status, 'missing');
    assert.match(line.line, /method is not recorded/);
  });

  test('missing: ">1:25" cannot be compared with ≤ 1:50', async () => {
    const c = zolgensmaCase();
    replaceObservation(c, 'obs-aav9', aav9Titer('obs-aav9', c.patient.id!, { valueString: '>1:25' }));
    const line = criterion(await sign(c), 6);
    assert.equal(line.status, 'missing');
    assert.match(line.line, /cannot be compared/);
  });

  test('the newest result decides: an older 1:200 is superseded by a recent 1:25', async () => {
    const c = zolgensmaCase();
    c.observations.push(aav9Titer('obs-aav9-old', c.patient.id!, { valueString: '1:200' }, { date: daysAgo(90) }));
    assert.equal(criterion(await sign(c), 6).status, 'met');
  });
});

describe('criterion 7: systemic corticosteroids from 1 day before infusion for 30 days', () => {
  test('met: an active methylprednisolone order in the record', async () => {
    const c = zolgensmaCase();
    c.orders = c.orders.slice(0, 1);
    c.medicationRequests.push({
      resourceType: 'MedicationRequest',
      id: 'mr-mp',
      status: 'active',
      intent: 'order',
      medicationCodeableConcept: { coding: [coding('http://www.nlm.nih.gov/research/umls/rxnorm', '6902', 'methylprednisolone')] },
      subject: { reference: `Patient/${c.patient.id}` },
    });
    assert.equal(criterion(await sign(c), 7).status, 'met');
  });

  test('missing: only a cancelled prednisolone order', async () => {
    const c = zolgensmaCase();
    c.orders = c.orders.slice(0, 1);
    c.medicationRequests.push({
      resourceType: 'MedicationRequest',
      id: 'mr-pred-old',
      status: 'cancelled',
      intent: 'order',
      medicationCodeableConcept: { text: 'prednisolone oral solution' },
      subject: { reference: `Patient/${c.patient.id}` },
    });
    const line = criterion(await sign(c), 7);
    assert.equal(line.status, 'missing');
    assert.match(line.line, /Systemic corticosteroid order/);
  });
});

describe('criterion 8: baseline liver function tests and monitoring for 3 months', () => {
  test('met: INR stands for the prothrombin time', async () => {
    const c = zolgensmaCase();
    replaceObservation(c, 'obs-pt', observation('obs-pt', c.patient.id!, coding(LOINC, '6301-6', 'INR'), { valueQuantity: quantity(1.0, '{INR}') }));
    assert.equal(criterion(await sign(c), 8).status, 'met');
  });

  test('missing: no prothrombin time, and no monitoring order', async () => {
    const c = zolgensmaCase();
    removeObservation(c, 'obs-pt');
    c.serviceRequests = c.serviceRequests.filter((s) => s.id !== 'sr-lft');
    const response = await sign(c);
    const line = criterion(response, 8);
    assert.equal(line.status, 'missing');
    assert.match(line.line, /Baseline prothrombin time/);
    assert.match(line.line, /Liver function monitoring plan/);
    assert.match(checklistCard(response, ORDER).summary, /2 items missing/);
  });

  test('not met as documentation: an AST entered in error does not count', async () => {
    const c = zolgensmaCase();
    const ast = c.observations.find((o) => o.id === 'obs-ast')!;
    ast.status = 'entered-in-error';
    const line = criterion(await sign(c), 8);
    assert.equal(line.status, 'missing');
    assert.match(line.line, /Baseline AST/);
  });
});

describe('criterion 9: baseline platelet count and troponin-I, with monitoring', () => {
  test('met: high-sensitivity troponin I (89579-7) counts', async () => {
    const c = zolgensmaCase();
    replaceObservation(c, 'obs-trop', observation('obs-trop', c.patient.id!, coding(LOINC, '89579-7'), { valueQuantity: quantity(4, 'ng/L') }));
    assert.equal(criterion(await sign(c), 9).status, 'met');
  });

  test('missing: no troponin-I', async () => {
    const c = zolgensmaCase();
    removeObservation(c, 'obs-trop');
    const line = criterion(await sign(c), 9);
    assert.equal(line.status, 'missing');
    assert.match(line.line, /Baseline troponin-I/);
  });
});

describe('criterion 10: no signs or symptoms of infection', () => {
  test('met: an infection with onset 30 days ago is outside the 14-day window', async () => {
    const c = zolgensmaCase();
    c.conditions.push(condition('cond-uri-old', c.patient.id!, coding(ICD10, 'J06.9', 'Acute upper respiratory infection'), { onset: daysAgo(30) }));
    assert.equal(criterion(await sign(c), 10).status, 'met');
  });

  test('not met now: an upper respiratory infection 3 days ago → conditional, postpone (timeframe)', async () => {
    const c = zolgensmaCase();
    c.conditions.push(condition('cond-uri', c.patient.id!, coding(ICD10, 'J06.9', 'Acute upper respiratory infection, unspecified'), { onset: daysAgo(3) }));
    const response = await sign(c);
    const line = criterion(response, 10);
    assert.equal(line.status, 'deferred');
    assert.match(line.line, /J06\.9/);
    const info = coverageInfo(response, ORDER);
    assert.deepEqual(codes(info, 'covered'), ['conditional']);
    assert.deepEqual(codes(info, 'info-needed'), ['timeframe']);
    assert.match(reasons(info).join(' '), /postpone the infusion until the infection has resolved/);
  });

  test('not met now: an infectious disease chapter code (B34.9 viral infection) counts', async () => {
    const c = zolgensmaCase();
    c.conditions.push(condition('cond-viral', c.patient.id!, coding(ICD10, 'B34.9'), { onset: daysAgo(1) }));
    assert.equal(criterion(await sign(c), 10).status, 'deferred');
  });

  test('missing: conditions could not be retrieved → cannot be checked', async () => {
    const c = zolgensmaCase();
    const response = await sign(c, { prefetch: { ...(hookRequest(c).prefetch as object), conditions: undefined } as RequestOptions['prefetch'] });
    assert.equal(criterion(response, 10).status, 'unavailable');
  });
});

describe('criterion 11: dose within 1.1 × 10^14 vg/kg', () => {
  test('met: stated dose 9.35 × 10^14 vg for 8.4 kg (kit band 8.1–8.5 kg)', async () => {
    const c = zolgensmaCase();
    c.orders[0] = zolgensmaOrder('mr-zolgensma', c.patient.id!, { codes: 'hcpcs', dose: { value: 9.35e14, unit: 'vg', system: 'http://unitsofmeasure.org', code: '{vg}' } });
    const line = criterion(await sign(c), 11);
    assert.equal(line.status, 'met');
    assert.match(line.line, /vg\/kg/);
  });

  test('met: dose per kg and dose by volume (46.2 mL × 2 × 10^13 vg/mL)', async () => {
    const c = zolgensmaCase();
    c.orders[0] = zolgensmaOrder('mr-zolgensma', c.patient.id!, { codes: 'hcpcs', dose: { value: 1.1e14, unit: 'vg/kg', system: 'http://unitsofmeasure.org', code: '{vg}/kg' } });
    assert.equal(criterion(await sign(c), 11).status, 'met');
    c.orders[0] = zolgensmaOrder('mr-zolgensma', c.patient.id!, { codes: 'hcpcs', dose: { value: 46.2, unit: 'mL', system: 'http://unitsofmeasure.org', code: 'mL' } });
    assert.equal(criterion(await sign(c), 11).status, 'met');
  });

  test('met: weight in grams and in pounds converts through UCUM', async () => {
    const c = zolgensmaCase();
    replaceObservation(c, 'obs-weight', weight('obs-weight', c.patient.id!, 8400, 'g'));
    assert.equal(criterion(await sign(c), 11).status, 'met');
    replaceObservation(c, 'obs-weight', weight('obs-weight', c.patient.id!, 18.52, '[lb_av]'));
    assert.equal(criterion(await sign(c), 11).status, 'met');
  });

  test('not met: a 1.5 × 10^14 vg/kg dose → not covered', async () => {
    const c = zolgensmaCase();
    c.orders[0] = zolgensmaOrder('mr-zolgensma', c.patient.id!, { codes: 'hcpcs', dose: { value: 1.5e14, unit: 'vg/kg', system: 'http://unitsofmeasure.org', code: '{vg}/kg' } });
    const response = await sign(c);
    assert.equal(criterion(response, 11).status, 'not-met');
    assert.deepEqual(codes(coverageInfo(response, ORDER), 'covered'), ['not-covered']);
  });

  test('not met: the 10.1–10.5 kg kit for an 8.4 kg infant exceeds the labelled dose', async () => {
    const c = zolgensmaCase();
    c.orders[0] = zolgensmaOrder('mr-zolgensma', c.patient.id!, { kitNdc: '71894-135-07' });
    const line = criterion(await sign(c), 11);
    assert.equal(line.status, 'not-met');
    assert.match(line.line, /exceeds the labelled dose/);
  });

  test('missing: no body weight', async () => {
    const c = zolgensmaCase();
    removeObservation(c, 'obs-weight');
    const line = criterion(await sign(c), 11);
    assert.equal(line.status, 'missing');
    assert.match(line.line, /Current body weight/);
  });

  test('missing: neither a dose nor a weight-based kit NDC', async () => {
    const c = zolgensmaCase();
    c.orders[0] = zolgensmaOrder('mr-zolgensma', c.patient.id!, { codes: 'hcpcs' });
    const line = criterion(await sign(c), 11);
    assert.equal(line.status, 'missing');
    assert.match(line.line, /Prescribed dose/);
  });
});

describe('one-time-only rule (RENEWAL CRITERIA)', () => {
  test('a recorded Zolgensma administration → not covered', async () => {
    const c = zolgensmaCase();
    c.medicationAdministrations.push({
      resourceType: 'MedicationAdministration',
      id: 'ma-zolgensma',
      status: 'completed',
      medicationCodeableConcept: { coding: [coding(HCPCS, 'J3399')], text: 'Zolgensma' },
      subject: { reference: `Patient/${c.patient.id}` },
      effectiveDateTime: daysAgo(120),
    });
    const response = await sign(c);
    const card = checklistCard(response, ORDER);
    assert.equal(ruleLine(card, 'One-time only')?.status, 'not-met');
    const info = coverageInfo(response, ORDER);
    assert.deepEqual(codes(info, 'covered'), ['not-covered']);
    assert.match(reasons(info).join(' '), /one-time-only dose/);
  });

  test('a history of a different gene therapy is not a repeat of Zolgensma', async () => {
    const c = zolgensmaCase();
    c.medicationStatements.push({
      resourceType: 'MedicationStatement',
      id: 'ms-other',
      status: 'completed',
      medicationCodeableConcept: { text: 'Luxturna' },
      subject: { reference: `Patient/${c.patient.id}` },
    });
    const card = checklistCard(await sign(c), ORDER);
    assert.equal(ruleLine(card, 'One-time only')?.status, 'met');
  });
});

describe('product lines (PRODUCT VARIATIONS)', () => {
  test('Medicare (SOPT 1) follows DR.005.D', async () => {
    const response = await sign(zolgensmaCase({ sopt: '1' }));
    assert.deepEqual(codes(coverageInfo(response, ORDER), 'covered'), ['covered']);
  });

  test('CHIP (SOPT 23) follows DR.005.D and shows the case-by-case note', async () => {
    const response = await sign(zolgensmaCase({ sopt: '23' }));
    assert.match(checklistCard(response, ORDER).detail ?? '', /evaluated case by case/);
  });

  test('ACA Individual & Family (commercial SOPT 5 / 6) → benefit exclusion, not covered, no criteria judged', async () => {
    for (const sopt of ['5', '62']) {
      const response = await sign(zolgensmaCase({ sopt }));
      const info = coverageInfo(response, ORDER);
      assert.deepEqual(codes(info, 'covered'), ['not-covered']);
      assert.match(reasons(info).join(' '), /benefit exclusion/);
      assert.equal(checklist(checklistCard(response, ORDER)).size, 0);
    }
  });

  test('no product line on the coverage → conditional with a reason (info-needed OTH)', async () => {
    const c = zolgensmaCase();
    delete c.coverage.type;
    const info = coverageInfo(await sign(c), ORDER);
    assert.deepEqual(codes(info, 'covered'), ['conditional']);
    assert.deepEqual(codes(info, 'info-needed'), ['OTH']);
    assert.match(reasons(info).join(' '), /does not state its product line/);
  });

  test('a line the policy does not govern (SOPT 3, other government) gets no assertion at all', async () => {
    const response = await sign(zolgensmaCase({ sopt: '3' }));
    assert.equal(response.systemActions, undefined);
    assert.deepEqual(response.cards, []);
  });
});

describe('product identification', () => {
  for (const codes of ['hcpcs', 'ndc', 'rxnorm', 'name'] as const) {
    test(`identified by ${codes} alone`, async () => {
      const c = zolgensmaCase();
      c.orders[0] = zolgensmaOrder('mr-zolgensma', c.patient.id!, { codes });
      const response = await sign(c);
      assert.equal(response.systemActions?.length, 1);
    });
  }

  test('the 11-digit NDC of the kit identifies the product and its weight band', async () => {
    const c = zolgensmaCase();
    c.orders[0] = zolgensmaOrder('mr-zolgensma', c.patient.id!, { kitNdc: '71894013106', codes: 'ndc' });
    assert.equal(criterion(await sign(c), 11).status, 'met');
  });
});
