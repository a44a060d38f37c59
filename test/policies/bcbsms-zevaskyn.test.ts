// BCBSMS L.5.01.628 Zevaskyn (prademagene zamikeracel), seed 000: not medically necessary, matched by
// HCPCS (J3389 from 2026-01-01, J3590 before), RxNorm and name; effective from 2025-11-01; State
// Health Plan participants governed by their benefit plan language.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import request from 'supertest';
import { testApp } from '../support/app.ts';
import {
  bcbsmsPayer,
  coding,
  condition,
  COVERAGE_CLASS,
  HCPCS,
  ICD10,
  medicationOrder,
  patientCase,
  RXNORM,
  type ClinicalCase,
  type CodeRef,
} from '../support/fixtures.ts';
import { answerFor, assertSilent, send } from './helpers.ts';

const ORDER = 'MedicationRequest/mr-zevaskyn';
const J3389 = coding(HCPCS, 'J3389', 'Topical administration, prademagene zamikeracel, per treatment');
const J3590 = coding(HCPCS, 'J3590', 'Unclassified biologics');
const RXCUI = coding(RXNORM, '2713314', 'prademagene zamikeracel');
const SHP = { type: { coding: [coding(COVERAGE_CLASS, 'group')] }, value: 'MS-SSEHIP', name: "State and School Employees' Health Insurance Plan" };

function rdebCase(options: { codes?: CodeRef[]; text?: string; sopt?: string; classes?: ClinicalCase['coverage']['class']; validFrom?: string } = {}): ClinicalCase {
  const c = patientCase({ payer: bcbsmsPayer(), ...(options.sopt === 'none' ? {} : { sopt: options.sopt ?? '6' }), ...(options.classes ? { classes: options.classes } : {}), specialty: { code: '207RH0000X', display: 'Hematology' } });
  const p = c.patient.id!;
  c.conditions.push(condition('cond-rdeb', p, coding(ICD10, 'Q81.2', 'Epidermolysis bullosa dystrophica')));
  c.orders.push(
    medicationOrder('mr-zevaskyn', p, {
      codes: options.codes ?? [J3389],
      ...(options.text ? { text: options.text } : {}),
      reason: coding(ICD10, 'Q81.2', 'Epidermolysis bullosa dystrophica'),
      ...(options.validFrom ? { validFrom: options.validFrom } : {}),
    }),
  );
  return c;
}

const zevaskyn = answerFor(ORDER);

describe('BCBSMS L.5.01.628 Zevaskyn: Policy (not medically necessary)', () => {
  it('J3389 order: not-covered with the policy reason, no pa-needed, billing code J3389, the 2026-01-01 version', async () => {
    const a = await zevaskyn(rdebCase());
    assert.equal(a.covered, 'not-covered');
    assert.equal(a.paNeeded, undefined, 'crd-ci-q2: no pa-needed when not covered');
    assert.deepEqual(a.docNeeded, []);
    assert.equal(a.reasons.length, 1);
    assert.match(a.reasons[0]!, /Zevaskyn \(prademagene zamikeracel\) is not medically necessary: there are other options covered by the Plan for the treatment of recessive dystrophic epidermolysis bullosa/);
    assert.deepEqual(a.billingCodes, ['J3389']);
    assert.equal(a.policyVersion, 'L.5.01.628 version 2026-01-01');
  });

  it('the card: not covered with the reason, a link to the policy, and administration services without PA approval also not medically necessary', async () => {
    const a = await zevaskyn(rdebCase());
    const card = a.card;
    assert.match(card.summary, /^Zevaskyn: not covered — Zevaskyn \(prademagene zamikeracel\) is not medically necessary/);
    assert.equal(card.indicator, 'warning');
    assert.equal(card.source.topic.code, 'off-guideline');
    assert.equal(card.source.label, 'Blue Cross & Blue Shield of Mississippi');
    assert.match(a.detailText, /\*\*Not covered\.\*\*/);
    assert.match(a.detailText, /other options covered by the Plan/);
    assert.match(a.detailText, /delivery and\/or administration of a medication that has not been approved through the BCBSMS prior authorization review process are also considered not medically necessary/);
    assert.match(a.detailText, /Route: Perform a formulary drug search on the member's ID/);
    assert.equal(a.status('Not medically necessary: other covered options for RDEB'), 'not-met');
    const link = card.links?.[0];
    assert.ok(link, 'a link to the policy');
    assert.equal(link.type, 'absolute');
    assert.equal(link.url, 'http://crd.test/policies/bcbsms-l501628-zevaskyn-2026-01-01');
    assert.equal(a.detailValue('policy-link')?.valueUrl, link.url);
    const page = await request(testApp().app).get('/policies/bcbsms-l501628-zevaskyn-2026-01-01').set('Accept', 'text/html');
    assert.equal(page.status, 200);
    assert.match(page.text, /L\.5\.01\.628/);
    assert.match(page.text, /other options covered by the Plan for the treatment of recessive dystrophic epidermolysis bullosa/);
    assert.match(page.text, /Removed unclassified biologics code J3590/);
    assert.equal(a.instructionsCard(), undefined, 'no administration instructions for a product that is not covered');
  });
});

describe('BCBSMS L.5.01.628 Zevaskyn: product identification', () => {
  it('by RxNorm 2713314 alone', async () => {
    const a = await zevaskyn(rdebCase({ codes: [RXCUI] }));
    assert.equal(a.covered, 'not-covered');
    assert.match(a.detailText, /^\*\*Zevaskyn\*\* \(prademagene zamikeracel\)/);
  });

  it('by name alone (brand, any case)', async () => {
    const a = await zevaskyn(rdebCase({ codes: [], text: 'ZEVASKYN topical sheets' }));
    assert.equal(a.covered, 'not-covered');
  });

  it('by nonproprietary name alone', async () => {
    const a = await zevaskyn(rdebCase({ codes: [], text: 'prademagene zamikeracel gene-corrected keratinocyte sheets' }));
    assert.equal(a.covered, 'not-covered');
  });

  it('J3590 with RxNorm before 2026-01-01: identified by RxNorm, the 2025-11-01 version, billed as J3590', async () => {
    const a = await zevaskyn(rdebCase({ codes: [J3590, RXCUI] }), { on: '2025-12-15' });
    assert.equal(a.covered, 'not-covered');
    assert.equal(a.policyVersion, 'L.5.01.628 version 2025-11-01');
    assert.deepEqual(a.billingCodes, ['J3590']);
    assert.match(a.detailText, /Until 12\/31\/2025 Zevaskyn has no product-specific HCPCS code: claims use J3590/);
  });

  it('J3590 with the product name before 2026-01-01', async () => {
    const a = await zevaskyn(rdebCase({ codes: [J3590], text: 'Zevaskyn' }), { on: '2025-11-20' });
    assert.equal(a.covered, 'not-covered');
    assert.equal(a.policyVersion, 'L.5.01.628 version 2025-11-01');
  });

  it('J3590 alone identifies nothing: no assertion (the policy names no unidentified products)', async () => {
    const c = rdebCase({ codes: [J3590], text: 'unclassified biologic' });
    assertSilent(await send(c, { on: '2025-12-15' }), ORDER);
  });

  it('J3389 on an order before the code took effect still identifies Zevaskyn; the claim code is J3590 until 12/31/2025', async () => {
    const a = await zevaskyn(rdebCase({ codes: [J3389] }), { on: '2025-12-31' });
    assert.equal(a.covered, 'not-covered');
    assert.deepEqual(a.billingCodes, ['J3590']);
  });
});

describe('BCBSMS L.5.01.628 Zevaskyn: effective dates (Revision History)', () => {
  it('2025-10-31, before "11/01/2025: New policy added": no assertion', async () => {
    assertSilent(await send(rdebCase({ codes: [RXCUI] }), { on: '2025-10-31' }), ORDER);
  });

  it('2025-11-01: the first version applies', async () => {
    const a = await zevaskyn(rdebCase({ codes: [RXCUI] }), { on: '2025-11-01' });
    assert.equal(a.covered, 'not-covered');
    assert.equal(a.policyVersion, 'L.5.01.628 version 2025-11-01');
  });

  it('2025-12-31 → 2025-11-01 version with J3590; 2026-01-01 → 2026-01-01 version with J3389', async () => {
    const before = await zevaskyn(rdebCase({ codes: [RXCUI] }), { on: '2025-12-31' });
    assert.equal(before.policyVersion, 'L.5.01.628 version 2025-11-01');
    assert.deepEqual(before.billingCodes, ['J3590']);
    const after = await zevaskyn(rdebCase({ codes: [RXCUI] }), { on: '2026-01-01' });
    assert.equal(after.policyVersion, 'L.5.01.628 version 2026-01-01');
    assert.deepEqual(after.billingCodes, ['J3389']);
  });

  it('the planned service date decides the version: signed 2025-12-30 for a treatment on 2026-01-05', async () => {
    const a = await zevaskyn(rdebCase({ codes: [RXCUI], validFrom: '2026-01-05' }), { on: '2025-12-30' });
    assert.equal(a.policyVersion, 'L.5.01.628 version 2026-01-01');
    assert.deepEqual(a.billingCodes, ['J3389']);
  });
});

describe('BCBSMS L.5.01.628 Zevaskyn: State Health Plan (State and School Employees) Participants', () => {
  it('a member of group MS-SSEHIP: conditional, the benefit plan language governs (info-needed OTH), pa-needed conditional', async () => {
    const a = await zevaskyn(rdebCase({ classes: [SHP] }));
    assert.equal(a.covered, 'conditional');
    assert.equal(a.paNeeded, 'conditional');
    assert.deepEqual(a.infoNeeded, ['OTH']);
    assert.deepEqual(a.docNeeded, []);
    assert.match(a.reasons[0]!, /specific benefit plan language governs for State Health Plan \(State and School Employees\) participants/);
    assert.match(a.reasons[1]!, /^Under L\.5\.01\.628 itself: Zevaskyn .* not medically necessary/);
    assert.match(a.card.summary, /^Zevaskyn: prior authorization may be required; the member's specific benefit plan language governs/);
    assert.match(a.detailText, /Covered only if the conditions below are met\. Prior authorization may be required\./);
    assert.match(a.detailText, /Route: Check the State and School Employees' Health Insurance Plan benefit plan language/);
  });

  it('another group value is an ordinary BCBSMS member: not covered', async () => {
    const a = await zevaskyn(rdebCase({ classes: [{ ...SHP, value: 'EMPLOYER-42' }] }));
    assert.equal(a.covered, 'not-covered');
  });

  it('the State Health Plan value as a plan (not group) class is not the configured group: not covered', async () => {
    const a = await zevaskyn(rdebCase({ classes: [{ ...SHP, type: { coding: [coding(COVERAGE_CLASS, 'plan')] } }] }));
    assert.equal(a.covered, 'not-covered');
  });
});

describe('BCBSMS L.5.01.628 Zevaskyn: product lines', () => {
  it('private insurance (SOPT 5) and no Coverage.type are judged', async () => {
    assert.equal((await zevaskyn(rdebCase({ sopt: '51' }))).covered, 'not-covered');
    assert.equal((await zevaskyn(rdebCase({ sopt: 'none' }))).covered, 'not-covered');
  });

  it('a product line the policy does not name (Medicare, SOPT 1) gets no assertion', async () => {
    assertSilent(await send(rdebCase({ sopt: '1' })), ORDER);
  });
});
