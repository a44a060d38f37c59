// BCBSMS L.5.01.594 Gene Therapy for Hemophilia B (Hemgenix, Beqvez), seed 001: not medically
// necessary (formulary alternatives); products by HCPCS J1411/J1414, NDC (10- and 11-digit),
// RxNorm and name; versions from the revision history (Hemgenix from 2023-05-15, Beqvez from
// 2025-01-15, "place in therapy" reason until 2025-12-01); State Health Plan participants.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  bcbsmsPayer,
  coding,
  condition,
  COVERAGE_CLASS,
  HCPCS,
  ICD10,
  medicationOrder,
  NDC,
  patientCase,
  RXNORM,
  type ClinicalCase,
  type CodeRef,
} from '../support/fixtures.ts';
import { answerFor, assertSilent, send } from './helpers.ts';

const ORDER = 'MedicationRequest/mr-gene';
const SHP = { type: { coding: [coding(COVERAGE_CLASS, 'group')] }, value: 'MS-SSEHIP' };

function hemophiliaCase(codes: CodeRef[], options: { text?: string; classes?: ClinicalCase['coverage']['class'] } = {}): ClinicalCase {
  const c = patientCase({ payer: bcbsmsPayer(), sopt: '61', gender: 'male', ...(options.classes ? { classes: options.classes } : {}) });
  const p = c.patient.id!;
  c.conditions.push(condition('cond-hemb', p, coding(ICD10, 'D67', 'Hereditary factor IX deficiency')));
  c.orders.push(medicationOrder('mr-gene', p, { codes, ...(options.text ? { text: options.text } : {}), reason: coding(ICD10, 'D67') }));
  return c;
}

const gene = answerFor(ORDER);

const HEMGENIX_REASON = /^Hemgenix \(etranacogene dezaparvovec-drlb\) is not medically necessary: there are other formulary alternatives covered by the Plan for the treatment of hemophilia B\.$/;
const BEQVEZ_REASON = /^Beqvez \(fidanacogene elaparvovec-dzkt\) is not medically necessary: there are other formulary alternatives covered by the Plan for the treatment of hemophilia B\.$/;

describe('BCBSMS L.5.01.594: Policy (Hemgenix and Beqvez not medically necessary)', () => {
  it('Hemgenix by HCPCS J1411: not-covered with the formulary-alternatives reason, billed J1411, current version', async () => {
    const a = await gene(hemophiliaCase([coding(HCPCS, 'J1411')]));
    assert.equal(a.covered, 'not-covered');
    assert.equal(a.paNeeded, undefined);
    assert.equal(a.reasons.length, 1);
    assert.match(a.reasons[0]!, HEMGENIX_REASON);
    assert.deepEqual(a.billingCodes, ['J1411']);
    assert.equal(a.policyVersion, 'L.5.01.594 version 2025-12-02');
    assert.match(a.card.summary, /^Hemgenix: not covered — Hemgenix \(etranacogene dezaparvovec-drlb\) is not medically necessary/);
    assert.match(a.detailText, /Gene Therapy for the Treatment of Hemophilia B, version 2025-12-02/);
    assert.match(a.detailText, /administration of a medication that has not been approved through the BCBSMS prior authorization review process are also considered not medically necessary/);
    assert.equal(a.card.links?.[0]?.url, 'http://crd.test/policies/bcbsms-l501594-hemophilia-b-2025-12-02');
  });

  it('Beqvez by HCPCS J1414: not-covered with its own reason, billed J1414', async () => {
    const a = await gene(hemophiliaCase([coding(HCPCS, 'J1414')]));
    assert.equal(a.covered, 'not-covered');
    assert.match(a.reasons[0]!, BEQVEZ_REASON);
    assert.deepEqual(a.billingCodes, ['J1414']);
    assert.equal(a.status('Not medically necessary: formulary alternatives for hemophilia B'), 'not-met');
  });
});

describe('BCBSMS L.5.01.594: product identification', () => {
  const cases: [string, CodeRef[], string | undefined, RegExp][] = [
    ['Hemgenix NDC 10-digit 0053-0300-30', [coding(NDC, '0053-0300-30')], undefined, HEMGENIX_REASON],
    ['Hemgenix NDC 11-digit 00053030030', [coding(NDC, '00053030030')], undefined, HEMGENIX_REASON],
    ['Hemgenix RxNorm 2626727', [coding(RXNORM, '2626727')], undefined, HEMGENIX_REASON],
    ['Hemgenix by brand name', [], 'HEMGENIX 1 x 10^13 gc/mL', HEMGENIX_REASON],
    ['Hemgenix by nonproprietary name', [], 'etranacogene dezaparvovec-drlb suspension', HEMGENIX_REASON],
    ['Hemgenix billed J3590 with its NDC', [coding(HCPCS, 'J3590'), coding(NDC, '00053030030')], undefined, HEMGENIX_REASON],
    ['Beqvez RxNorm 2681011', [coding(RXNORM, '2681011')], undefined, BEQVEZ_REASON],
    ['Beqvez by brand name', [], 'Beqvez kit', BEQVEZ_REASON],
    ['Beqvez by nonproprietary name', [], 'fidanacogene elaparvovec', BEQVEZ_REASON],
  ];
  for (const [what, codes, text, reason] of cases) {
    it(`${what}: not covered`, async () => {
      const a = await gene(hemophiliaCase(codes, text ? { text } : {}));
      assert.equal(a.covered, 'not-covered');
      assert.match(a.reasons[0]!, reason);
    });
  }

  it('an order for a product outside the policy (Roctavian, J1412) gets no assertion from BCBSMS', async () => {
    assertSilent(await send(hemophiliaCase([coding(HCPCS, 'J1412')])), ORDER);
  });
});

describe('BCBSMS L.5.01.594: effective dates (Revision History)', () => {
  const hemgenix = [coding(HCPCS, 'J1411')];
  const beqvez = [coding(HCPCS, 'J1414')];

  it('Hemgenix before 05/15/2023 (New policy added): no assertion', async () => {
    assertSilent(await send(hemophiliaCase(hemgenix), { on: '2023-05-14' }), ORDER);
  });

  it('Hemgenix 2023-05-15 to 2025-01-14: the original Hemgenix policy (with the 07/01/2023 State Health Plan exception)', async () => {
    for (const on of ['2023-05-15', '2024-06-01', '2025-01-14']) {
      const a = await gene(hemophiliaCase(hemgenix), { on });
      assert.equal(a.covered, 'not-covered', on);
      assert.equal(a.policyVersion, 'L.5.01.594 version 2023-07-01', on);
      assert.match(a.detailText, /L\.5\.01\.594 Hemgenix \(etranacogene dezaparvovec-drlb\), version 2023-07-01/);
    }
    const shp = await gene(hemophiliaCase(hemgenix, { classes: [SHP] }), { on: '2023-08-01' });
    assert.equal(shp.covered, 'conditional');
  });

  it('Beqvez before 01/15/2025 (not yet in the policy): no assertion', async () => {
    assertSilent(await send(hemophiliaCase(beqvez), { on: '2025-01-14' }), ORDER);
  });

  it('Beqvez 2025-01-15 to 2025-12-01: not covered, and its place in therapy has not been addressed in treatment guidelines', async () => {
    for (const on of ['2025-01-15', '2025-12-01']) {
      const a = await gene(hemophiliaCase(beqvez), { on });
      assert.equal(a.covered, 'not-covered', on);
      assert.equal(a.policyVersion, 'L.5.01.594 version 2025-01-15', on);
      assert.match(a.reasons[0]!, /formulary alternatives covered by the Plan for the treatment of hemophilia B, and its place in therapy has not been addressed in treatment guidelines\.$/);
    }
    const hemgenixThen = await gene(hemophiliaCase(hemgenix), { on: '2025-01-15' });
    assert.match(hemgenixThen.reasons[0]!, HEMGENIX_REASON, 'the place-in-therapy clause was Beqvez only');
  });

  it('from 2025-12-02 the place-in-therapy statement is removed', async () => {
    const a = await gene(hemophiliaCase(beqvez), { on: '2025-12-02' });
    assert.equal(a.policyVersion, 'L.5.01.594 version 2025-12-02');
    assert.match(a.reasons[0]!, BEQVEZ_REASON);
  });
});

describe('BCBSMS L.5.01.594: State Health Plan (State and School Employees) Participants', () => {
  it('Beqvez for a State Health Plan member: conditional on the benefit plan language, info-needed OTH', async () => {
    const a = await gene(hemophiliaCase([coding(HCPCS, 'J1414')], { classes: [SHP] }));
    assert.equal(a.covered, 'conditional');
    assert.equal(a.paNeeded, 'conditional');
    assert.deepEqual(a.infoNeeded, ['OTH']);
    assert.match(a.reasons[0]!, /benefit plan language governs/);
    assert.match(a.reasons[1]!, /^Under L\.5\.01\.594 itself: Beqvez/);
    assert.match(a.card.summary, /prior authorization may be required/);
  });
});
