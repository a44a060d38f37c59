// One patient, several orders in one hook call: each order gets its own answer under its own
// policy (BCBSMS L.5.01.628 and L.5.01.594; WellCare WNC.CP.299 with a companion service; Cigna
// 1701 rows), and the DR.005.D spine still answers as before.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  bcbsmsPayer,
  birthDateYearsAgo,
  cignaPayer,
  coding,
  condition,
  COVERAGE_CLASS,
  CPT,
  HCPCS,
  ICD10,
  LOINC,
  medicationOrder,
  NDC,
  NPI,
  patientCase,
  QTC_NPI,
  serviceOrder,
  wellcarePayer,
  zolgensmaCase,
  type ClinicalCase,
} from '../support/fixtures.ts';
import { answer, assertSilent, send } from './helpers.ts';

const ZEVASKYN = 'MedicationRequest/mr-zevaskyn';
const HEMGENIX = 'MedicationRequest/mr-hemgenix';

function bcbsmsTwoOrders(classes?: ClinicalCase['coverage']['class']): ClinicalCase {
  const c = patientCase({ payer: bcbsmsPayer(), sopt: '6', ...(classes ? { classes } : {}) });
  const p = c.patient.id!;
  c.conditions.push(condition('cond-rdeb', p, coding(ICD10, 'Q81.2')), condition('cond-hemb', p, coding(ICD10, 'D67')));
  c.orders.push(
    medicationOrder('mr-zevaskyn', p, { codes: [coding(HCPCS, 'J3389')], reason: coding(ICD10, 'Q81.2') }),
    medicationOrder('mr-hemgenix', p, { codes: [coding(NDC, '00053030030')], reason: coding(ICD10, 'D67') }),
  );
  return c;
}

describe('one patient, orders under two BCBSMS policies in one call', () => {
  it('each order gets its own system action, reason, billing code and policy version; one assertion id for the one coverage', async () => {
    const response = await send(bcbsmsTwoOrders());
    assert.equal(response.systemActions?.length, 2);
    const zevaskyn = answer(response, ZEVASKYN);
    const hemgenix = answer(response, HEMGENIX);
    assert.equal(zevaskyn.covered, 'not-covered');
    assert.equal(hemgenix.covered, 'not-covered');
    assert.equal(zevaskyn.policyVersion, 'L.5.01.628 version 2026-01-01');
    assert.equal(hemgenix.policyVersion, 'L.5.01.594 version 2025-12-02');
    assert.match(zevaskyn.reasons[0]!, /^Zevaskyn .* recessive dystrophic epidermolysis bullosa/);
    assert.match(hemgenix.reasons[0]!, /^Hemgenix .* hemophilia B\.$/);
    assert.deepEqual(zevaskyn.billingCodes, ['J3389']);
    assert.deepEqual(hemgenix.billingCodes, ['J1411']);
    const id = (x: typeof zevaskyn) => x.info.get('coverage-assertion-id')?.[0]?.valueString;
    assert.ok(id(zevaskyn));
    assert.equal(id(zevaskyn), id(hemgenix), 'same coverage → same coverage-assertion-id (CRD §resp-33)');
    assert.equal(zevaskyn.cards.length, 1);
    assert.equal(hemgenix.cards.length, 1);
    assert.match(zevaskyn.card.summary, /^Zevaskyn: not covered/);
    assert.match(hemgenix.card.summary, /^Hemgenix: not covered/);
    assert.equal(zevaskyn.card.links?.[0]?.url, 'http://crd.test/policies/bcbsms-l501628-zevaskyn-2026-01-01');
    assert.equal(hemgenix.card.links?.[0]?.url, 'http://crd.test/policies/bcbsms-l501594-hemophilia-b-2025-12-02');
  });

  it('a State Health Plan member: both orders conditional on the benefit plan language, each citing its own policy', async () => {
    const response = await send(bcbsmsTwoOrders([{ type: { coding: [coding(COVERAGE_CLASS, 'group')] }, value: 'MS-SSEHIP' }]));
    const zevaskyn = answer(response, ZEVASKYN);
    const hemgenix = answer(response, HEMGENIX);
    for (const a of [zevaskyn, hemgenix]) {
      assert.equal(a.covered, 'conditional');
      assert.equal(a.paNeeded, 'conditional');
      assert.deepEqual(a.infoNeeded, ['OTH']);
    }
    assert.match(zevaskyn.reasons[1]!, /^Under L\.5\.01\.628 itself/);
    assert.match(hemgenix.reasons[1]!, /^Under L\.5\.01\.594 itself/);
  });

  it('order-select for one of them: only the selected order is answered', async () => {
    const response = await send(bcbsmsTwoOrders(), { hook: 'order-select', selections: [HEMGENIX] });
    assert.equal(answer(response, HEMGENIX).covered, 'not-covered');
    assertSilent(response, ZEVASKYN);
  });
});

describe('one WellCare NC member: a CGT, fertility preservation and a lab order in one call', () => {
  it('the CGT covered with its CGT Access Model paperwork, fertility preservation not covered, the lab order not judged', async () => {
    const c = patientCase({ payer: wellcarePayer(), sopt: '21', birthDate: birthDateYearsAgo(19) });
    const p = c.patient.id!;
    c.conditions.push(condition('cond-scd', p, coding(ICD10, 'D57.01', 'Hb-SS disease with acute chest syndrome')));
    c.orders.push(
      medicationOrder('mr-casgevy', p, { codes: [coding(HCPCS, 'J3392'), coding(NDC, '51167029009')], performer: { identifier: { system: NPI, value: QTC_NPI } } }),
      serviceOrder('sr-sperm', p, coding(CPT, '89259', 'Cryopreservation; sperm')),
      serviceOrder('sr-hb', p, coding(LOINC, '718-7', 'Hemoglobin')),
    );
    const response = await send(c);
    const casgevy = answer(response, 'MedicationRequest/mr-casgevy');
    assert.equal(casgevy.covered, 'covered');
    assert.deepEqual(casgevy.docNeeded, ['admin']);
    assert.deepEqual(casgevy.billingCodes, ['J3392']);
    assert.match(casgevy.detailText, /EPSDT \(member under 21\)/);
    const sperm = answer(response, 'ServiceRequest/sr-sperm');
    assert.equal(sperm.covered, 'not-covered');
    assert.match(sperm.line('Fertility preservation ordered with'), /Casgevy ordered in this session \(MedicationRequest\/mr-casgevy\)/);
    assertSilent(response, 'ServiceRequest/sr-hb');
  });
});

describe('one Cigna member: three unassigned-code drugs in one call', () => {
  it('Isuprel for torsades covered, Ketalar for MDD not covered, an unidentified J3490 drug conditional on its NDC', async () => {
    const c = patientCase({ payer: cignaPayer(), sopt: '5', encounterClass: 'IMP' });
    const p = c.patient.id!;
    c.orders.push(
      medicationOrder('mr-isuprel', p, { codes: [coding(HCPCS, 'J3490'), coding(NDC, '0409-1410-01')], reason: 'Torsades de pointes' }),
      medicationOrder('mr-ketalar', p, { codes: [coding(HCPCS, 'J3490'), coding(NDC, '42023-114-10')], reason: coding(ICD10, 'F32.9') }),
      medicationOrder('mr-other', p, { codes: [coding(HCPCS, 'J3490')], text: 'compounded injection' }),
    );
    const response = await send(c);
    assert.equal(answer(response, 'MedicationRequest/mr-isuprel').covered, 'covered');
    const ketalar = answer(response, 'MedicationRequest/mr-ketalar');
    assert.equal(ketalar.covered, 'not-covered');
    assert.match(ketalar.reasons[0]!, /^Ketalar for major depressive disorder/);
    const other = answer(response, 'MedicationRequest/mr-other');
    assert.equal(other.covered, 'conditional');
    assert.deepEqual(other.infoNeeded, ['detail-code']);
  });
});

describe('DR.005.D smoke: the Jefferson Zolgensma policy still answers as before', () => {
  it('the shipped Zolgensma case: covered, prior authorization, all 11 criteria met, J3399', async () => {
    const response = await send(zolgensmaCase(), { userId: 'PractitionerRole/role-neuro' });
    const a = answer(response, 'MedicationRequest/mr-zolgensma');
    assert.equal(a.covered, 'covered');
    assert.equal(a.paNeeded, 'auth-needed');
    assert.deepEqual(a.docNeeded, []);
    assert.deepEqual(a.billingCodes, ['J3399']);
    assert.match(a.detailText, /Criteria \(11 of 11 met\)/);
    assert.equal(a.card.summary, 'Zolgensma: prior authorization required; all criteria documented');
  });
});
