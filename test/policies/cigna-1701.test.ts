// Cigna Coverage Policy 1701, Unassigned Drug or Biologic Code Medical Precertification, seed 004:
// medically necessary when the product-specific criteria of the table are met (Defitelio, Dsuvia,
// Isuprel, Ketalar, Macrilen, Regiocit); any other use experimental, investigational or unproven;
// precertification, authorization up to 12 months, Dsuvia 36 tablets per 72 hours.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { MedicationRequest } from 'fhir/r4.js';
import {
  birthDateYearsAgo,
  cignaPayer,
  coding,
  condition,
  HCPCS,
  ICD10,
  location,
  LOINC,
  medicationOrder,
  NDC,
  observation,
  patientCase,
  quantity,
  RXNORM,
  serviceOrder,
  today,
  type ClinicalCase,
  type CodeRef,
} from '../support/fixtures.ts';
import { answerFor, assertSilent, send } from './helpers.ts';

const ORDER = 'MedicationRequest/mr-drug';
const J3490 = coding(HCPCS, 'J3490', 'Unclassified drugs');
const EIU = 'is considered experimental, investigational or unproven (Cigna 1701, Conditions Not Covered).';

interface DrugOptions {
  codes: CodeRef[];
  text?: string;
  reason?: CodeRef | string;
  conditions?: CodeRef[];
  age?: number;
  encounterClass?: string;
  encounterLocationTypes?: string[];
  sopt?: string;
  quantity?: MedicationRequest['dispenseRequest'];
  dosage?: MedicationRequest['dosageInstruction'];
}

function drugCase(options: DrugOptions): ClinicalCase {
  const c = patientCase({
    payer: cignaPayer(),
    sopt: options.sopt ?? '5',
    birthDate: birthDateYearsAgo(options.age ?? 45),
    encounterClass: options.encounterClass ?? 'IMP',
    ...(options.encounterLocationTypes ? { encounterLocations: [location('loc-1', 'Unit 4', options.encounterLocationTypes)] } : {}),
  });
  const p = c.patient.id!;
  (options.conditions ?? []).forEach((code, i) => c.conditions.push(condition(`cond-${i}`, p, code)));
  const order = medicationOrder('mr-drug', p, {
    codes: options.codes,
    ...(options.text ? { text: options.text } : {}),
    ...(options.reason ? { reason: options.reason } : {}),
    ...(options.dosage ? { dosage: options.dosage } : {}),
  });
  if (options.quantity) order.dispenseRequest = options.quantity;
  c.orders.push(order);
  return c;
}

const drug = answerFor(ORDER);

function inTwelveMonths(): string {
  const [y, m, d] = today().split('-').map(Number) as [number, number, number];
  const last = new Date(Date.UTC(y + 1, m, 0)).getUTCDate();
  return new Date(Date.UTC(y + 1, m - 1, Math.min(d, last))).toISOString().slice(0, 10);
}

const DEFITELIO = [J3490, coding(NDC, '68727-800-01')];
const DSUVIA = [J3490, coding(NDC, '61621-430-01')];
const ISUPREL = [J3490, coding(NDC, '0409-1410-01')];
const KETALAR = [J3490, coding(NDC, '42023-113-10')];
const MACRILEN = [J3490, coding(NDC, '0169-1401-01')];
const REGIOCIT = [J3490, coding(NDC, '24571-123-02')];

describe('Cigna 1701: products billed under J3490 identified by NDC, RxNorm or name (Product-Specific Criteria table)', () => {
  const table: [string, CodeRef[], string | undefined][] = [
    ['Defitelio', [J3490, coding(NDC, '68727-800-01')], undefined],
    ['Defitelio', [coding(NDC, '68727080001')], undefined],
    ['Defitelio', [coding(RXNORM, '1311089')], undefined],
    ['Dsuvia', [J3490, coding(NDC, '61621-430-01')], undefined],
    ['Dsuvia', [coding(RXNORM, '56795')], undefined],
    ['Dsuvia', [J3490], 'DSUVIA 30 mcg sublingual tablet'],
    ['Isuprel', [J3490, coding(NDC, '0409-1410-01')], undefined],
    ['Isuprel', [coding(NDC, '00409141001')], undefined],
    ['Isuprel', [coding(RXNORM, '6054')], undefined],
    ['Isuprel', [J3490], 'isoproterenol 0.2 mg/mL injection'],
    ['Ketalar', [J3490, coding(NDC, '42023-113-10')], undefined],
    ['Ketalar', [J3490, coding(NDC, '42023-114-10')], undefined],
    ['Ketalar', [J3490, coding(NDC, '42023-115-10')], undefined],
    ['Ketalar', [coding(RXNORM, '6130')], undefined],
    ['Macrilen', [J3490, coding(NDC, '0169-1401-01')], undefined],
    ['Macrilen', [J3490, coding(NDC, '58844-130-01')], undefined],
    ['Macrilen', [J3490], 'macimorelin granules for oral solution'],
    ['Regiocit', [J3490, coding(NDC, '24571-123-02')], undefined],
    ['Regiocit', [coding(RXNORM, '2397249')], undefined],
    ['Regiocit', [J3490], 'REGIOCIT replacement solution'],
  ];
  for (const [name, codes, text] of table) {
    it(`${name} by ${codes.map((c) => c.code).join(' + ')}${text ? ` + "${text}"` : ''}`, async () => {
      const a = await drug(drugCase({ codes, ...(text ? { text } : {}) }));
      assert.match(a.detailText, new RegExp(`^\\*\\*${name}\\*\\*`));
      assert.equal(a.status('Product identified'), 'met');
      assert.deepEqual(a.billingCodes, ['J3490']);
    });
  }

  for (const code of ['J3490', 'J3590']) {
    it(`${code} with nothing that identifies the product: conditional on the NDC (1.A/1.B cannot be judged), precertification`, async () => {
      const a = await drug(drugCase({ codes: [coding(HCPCS, code)], text: 'compounded injection' }));
      assert.equal(a.covered, 'conditional');
      assert.equal(a.paNeeded, 'auth-needed');
      assert.deepEqual(a.infoNeeded, ['detail-code']);
      assert.equal(a.status('Product identified'), 'missing');
      assert.match(a.card.summary, new RegExp(`^Product billed as HCPCS ${code}: prior authorization required`));
    });
  }
});

describe('Cigna 1701 Defitelio: hepatic VOD/SOS with renal or pulmonary dysfunction after HSCT', () => {
  const vod = coding(ICD10, 'K76.5', 'Hepatic veno-occlusive disease');
  it('met: covered, precertification, authorization for 12 months, billed J3490', async () => {
    const a = await drug(drugCase({ codes: DEFITELIO, reason: vod, conditions: [coding(ICD10, 'Z94.84'), coding(ICD10, 'N17.9')] }));
    assert.equal(a.covered, 'covered');
    assert.equal(a.paNeeded, 'auth-needed');
    assert.deepEqual(a.docNeeded, []);
    assert.equal(a.expiryDate, inTwelveMonths());
    assert.match(a.detailText, new RegExp(`Authorization up to ${inTwelveMonths()}`));
    assert.equal(a.card.summary, 'Defitelio: prior authorization required; all criteria documented');
  });

  it('pulmonary dysfunction (J96.0x) instead of renal', async () => {
    const a = await drug(drugCase({ codes: DEFITELIO, reason: vod, conditions: [coding(ICD10, 'Z94.84'), coding(ICD10, 'J96.01')] }));
    assert.equal(a.covered, 'covered');
    assert.deepEqual(a.docNeeded, []);
  });

  it('no renal or pulmonary dysfunction recorded: documentation names it', async () => {
    const a = await drug(drugCase({ codes: DEFITELIO, reason: vod, conditions: [coding(ICD10, 'Z94.84')] }));
    assert.deepEqual(a.docNeeded, ['clinical']);
    assert.match(a.detailText, /Document: Renal \(N17\.9\) or pulmonary \(J96\.0x\) dysfunction/);
  });

  it('no HSCT recorded: documentation names it', async () => {
    const a = await drug(drugCase({ codes: DEFITELIO, reason: vod, conditions: [coding(ICD10, 'N17.9')] }));
    assert.match(a.detailText, /Document: Hematopoietic stem-cell transplantation before the VOD \(Z94\.84\)/);
  });

  it('any other use: not covered, experimental, investigational or unproven', async () => {
    const a = await drug(drugCase({ codes: DEFITELIO, reason: coding(ICD10, 'N17.9', 'Acute kidney failure'), conditions: [coding(ICD10, 'Z94.84')] }));
    assert.equal(a.covered, 'not-covered');
    assert.deepEqual(a.reasons, [`Defitelio is covered only for hepatic VOD/SOS with renal or pulmonary dysfunction following HSCT; any other use ${EIU}`]);
    assert.equal(a.expiryDate, undefined);
  });

  it('no stated use and no VOD in the record: the diagnosis is documentation to submit', async () => {
    const a = await drug(drugCase({ codes: DEFITELIO }));
    assert.match(a.detailText, /Document: Diagnosis of hepatic veno-occlusive disease \/ sinusoidal obstruction syndrome \(K76\.5\)/);
  });
});

describe('Cigna 1701 Dsuvia: acute pain, age ≥ 18, certified supervised setting, non-opioid failure, 36 tablets / 72 h', () => {
  const ACUTE = 'Acute postoperative pain severe enough to require an opioid';

  it('every criterion the record can show is met; the certified setting and the non-opioid failure are documentation, named exactly', async () => {
    const a = await drug(drugCase({ codes: DSUVIA, reason: ACUTE }));
    assert.equal(a.covered, 'covered');
    assert.equal(a.paNeeded, 'auth-needed');
    assert.deepEqual([...a.docNeeded].sort(), ['admin', 'clinical']);
    assert.equal(a.status('Acute pain'), 'met');
    assert.equal(a.status('18 years'), 'met');
    assert.equal(a.status('Given by a health care provider'), 'missing');
    assert.match(a.line('Given by a health care provider'), /Encounter class IMP \(inpatient\)/);
    assert.match(a.detailText, /- Certification of the administering healthcare setting as a certified medically supervised setting, with administration by a health care provider/);
    assert.match(a.detailText, /- Documented failure or inadequate response, contraindication per FDA label, intolerance, or not a candidate for non-opioid analgesics or opioid combination products/);
    assert.match(a.card.summary, /^Dsuvia: prior authorization required; 2 items missing/);
  });

  it('the quantity limit goes out as detail allowed-quantity and on the card', async () => {
    const a = await drug(drugCase({ codes: DSUVIA, reason: ACUTE }));
    const detail = a.detail('allowed-quantity');
    assert.ok(detail);
    assert.equal(detail.extension?.find((x) => x.url === 'category')?.valueCode, 'cat-limitation');
    assert.deepEqual(a.detailValue('allowed-quantity')?.valueQuantity, { value: 36, unit: 'tablets', system: 'http://unitsofmeasure.org', code: '{tbl}' });
    assert.equal(detail.extension?.find((x) => x.url === 'qualification')?.valueString, 'per 72 hours');
    assert.match(a.detailText, /Limit: 36 tablets per 72 hours/);
  });

  it('17 years old: not covered', async () => {
    const a = await drug(drugCase({ codes: DSUVIA, reason: ACUTE, age: 17 }));
    assert.equal(a.covered, 'not-covered');
    assert.deepEqual(a.reasons, ['Dsuvia is covered only for individuals 18 years of age and older (Cigna 1701).']);
  });

  it('a home-health encounter is not a medically supervised setting: not covered', async () => {
    const a = await drug(drugCase({ codes: DSUVIA, reason: ACUTE, encounterClass: 'HH' }));
    assert.equal(a.covered, 'not-covered');
    assert.equal(a.status('Given by a health care provider'), 'not-met');
  });

  it('an ambulatory encounter may be a surgical center: the setting is documentation to submit', async () => {
    const a = await drug(drugCase({ codes: DSUVIA, reason: ACUTE, encounterClass: 'AMB' }));
    assert.equal(a.covered, 'covered');
    assert.match(a.detailText, /Document: Documentation that Dsuvia is given in a medically supervised healthcare setting/);
  });

  it('an emergency-room location establishes the supervised setting', async () => {
    const a = await drug(drugCase({ codes: DSUVIA, reason: ACUTE, encounterClass: 'AMB', encounterLocationTypes: ['ER'] }));
    assert.match(a.line('Given by a health care provider'), /Encounter location Unit 4: HL7 RoleCode ER \(Encounter\/enc-1\)/);
    assert.doesNotMatch(a.detailText, /Document: Documentation that Dsuvia is given/);
  });

  it('40 tablets for 72 hours exceeds the limit: not covered, with the limit still stated', async () => {
    const a = await drug(drugCase({ codes: DSUVIA, reason: ACUTE, quantity: { quantity: quantity(40, 'tablet', '{tbl}'), expectedSupplyDuration: { value: 72, unit: 'h', system: 'http://unitsofmeasure.org', code: 'h' } } }));
    assert.equal(a.covered, 'not-covered');
    assert.deepEqual(a.reasons, ['The order exceeds the Dsuvia authorization limit of 36 tablets per 72 hours (Cigna 1701).']);
    assert.ok(a.detail('allowed-quantity'));
    assert.match(a.detailText, /Route: Reduce the quantity or dosing frequency to at most 36 tablets per 72 hours/);
  });

  it('36 tablets is within the limit', async () => {
    const a = await drug(drugCase({ codes: DSUVIA, reason: ACUTE, quantity: { quantity: quantity(36, 'tablet', '{tbl}') } }));
    assert.equal(a.status('At most 36 tablets'), 'met');
  });

  it('a dosing frequency of one tablet every hour (72 per 72 h) exceeds the limit', async () => {
    const dosage = [{ timing: { repeat: { frequency: 1, period: 1, periodUnit: 'h' as const } }, doseAndRate: [{ doseQuantity: quantity(1, 'tablet', '{tbl}') }] }];
    const a = await drug(drugCase({ codes: DSUVIA, reason: ACUTE, dosage }));
    assert.equal(a.covered, 'not-covered');
    assert.match(a.line('At most 36 tablets'), /allows 72 tablets per 72 hours/);
  });

  it('a maximum of 12 tablets per 24 hours is within the limit', async () => {
    const dosage = [{ maxDosePerPeriod: { numerator: quantity(12, 'tablet', '{tbl}'), denominator: quantity(24, 'h') } }];
    const a = await drug(drugCase({ codes: DSUVIA, reason: ACUTE, dosage }));
    assert.equal(a.status('At most 36 tablets'), 'met');
  });

  it('any other use (chronic pain): not covered', async () => {
    const a = await drug(drugCase({ codes: DSUVIA, reason: coding(ICD10, 'G89.29', 'Other chronic pain') }));
    assert.equal(a.covered, 'not-covered');
    assert.ok(a.reasons.includes(`Dsuvia is covered only for acute pain severe enough to require an opioid analgesic; any other use ${EIU}`));
  });

  it('no stated use: the indication is documentation to submit', async () => {
    const a = await drug(drugCase({ codes: DSUVIA }));
    assert.match(a.detailText, /Document: Indication: acute pain severe enough to require an opioid analgesic/);
  });
});

describe('Cigna 1701 Isuprel: the 11 uses', () => {
  const uses: [string, CodeRef | string][] = [
    ['1 mild or transient heart block (I44.x)', coding(ICD10, 'I44.1', 'Atrioventricular block, second degree')],
    ['2 serious heart block and Adams-Stokes attacks', 'Adams-Stokes attacks with complete heart block'],
    ['3 cardiac arrest until shock or pacing', 'Cardiac arrest pending transvenous pacing'],
    ['4 bronchospasm during anesthesia', 'Bronchospasm during general anesthesia'],
    ['5 cardiogenic shock (R57.0)', coding(ICD10, 'R57.0', 'Cardiogenic shock')],
    ['5 septic shock (text)', 'Septic shock, adjunct to fluids'],
    ['6 bradycardia with hemodynamic compromise', 'Symptomatic bradycardia with hypotension'],
    ['7 cardiogenic shock due to bradycardia', 'Cardiogenic shock due to bradycardia'],
    ['8 I45.81 (listed for this row)', coding(ICD10, 'I45.81')],
    ['8 short QT syndrome', 'Short QT syndrome, VT storm'],
    ['9 torsades de pointes', 'Torsades de pointes'],
    ['10 tilt-table testing', 'Tilt table testing for syncope'],
    ['11 electrophysiologic testing', 'Electrophysiology study, post-ablation'],
  ];
  for (const [what, reason] of uses) {
    it(`use ${what}: covered with precertification`, async () => {
      const a = await drug(drugCase({ codes: ISUPREL, reason }));
      assert.equal(a.covered, 'covered');
      assert.equal(a.status('One of the 11 covered uses'), 'met');
      assert.deepEqual(a.docNeeded, []);
    });
  }

  it('any other use: not covered, experimental, investigational or unproven', async () => {
    const a = await drug(drugCase({ codes: ISUPREL, reason: coding(ICD10, 'F32.9', 'Major depressive disorder, single episode') }));
    assert.equal(a.covered, 'not-covered');
    assert.deepEqual(a.reasons, [`Isuprel is covered only for the 11 uses listed in Cigna 1701; any other use ${EIU}`]);
    assert.match(a.line('One of the 11 covered uses'), /None of the 11 alternatives applies/);
  });

  it("the order's stated use decides: heart block in the record does not cover another stated use", async () => {
    const a = await drug(drugCase({ codes: ISUPREL, reason: 'weight loss', conditions: [coding(ICD10, 'I44.2')] }));
    assert.equal(a.covered, 'not-covered');
  });

  it('no stated use: a covered use in the record (complete heart block) is taken as the use', async () => {
    const a = await drug(drugCase({ codes: ISUPREL, conditions: [coding(ICD10, 'I44.2', 'Atrioventricular block, complete')] }));
    assert.equal(a.covered, 'covered');
  });

  it('no stated use and none in the record: the indication is documentation to submit', async () => {
    const a = await drug(drugCase({ codes: ISUPREL }));
    assert.deepEqual(a.docNeeded, ['clinical']);
    assert.match(a.detailText, /Document: The indication for Isuprel: one of the 11 uses in Cigna 1701/);
  });

  it('the dosing limitations are on the card', async () => {
    const a = await drug(drugCase({ codes: ISUPREL, reason: 'Torsades de pointes' }));
    assert.match(a.detailText, /Isuprel dosing: adults have no well-established maximum dose/);
  });
});

describe('Cigna 1701 Ketalar: anesthesia uses; bipolar disorder, MDD, chronic pain and CRPS not covered', () => {
  for (const [what, reason] of [
    ['1 anesthesia for a diagnostic or surgical procedure', 'Anesthesia for closed reduction of fracture'],
    ['2 induction of anesthesia', 'Induction before inhalational agents'],
    ['3 supplement to a low-potency agent', 'Supplement to nitrous oxide'],
  ] as const) {
    it(`use ${what}: covered`, async () => {
      const a = await drug(drugCase({ codes: KETALAR, reason }));
      assert.equal(a.covered, 'covered');
      for (const line of ['Not ordered for bipolar', 'Not ordered for major depressive', 'Not ordered for chronic pain', 'Not ordered for complex regional']) assert.equal(a.status(line), 'met', line);
    });
  }

  const excluded: [string, CodeRef, string, string][] = [
    ['bipolar disorder (F31.x)', coding(ICD10, 'F31.9', 'Bipolar disorder, unspecified'), 'bipolar disorder', 'Not ordered for bipolar'],
    ['major depressive disorder (F32.x)', coding(ICD10, 'F32.9'), 'major depressive disorder', 'Not ordered for major depressive'],
    ['major depressive disorder (F33.x)', coding(ICD10, 'F33.1'), 'major depressive disorder', 'Not ordered for major depressive'],
    ['chronic pain (G89.29)', coding(ICD10, 'G89.29'), 'chronic pain', 'Not ordered for chronic pain'],
    ['chronic pain syndrome (G89.4)', coding(ICD10, 'G89.4'), 'chronic pain', 'Not ordered for chronic pain'],
    ['CRPS (G90.5x)', coding(ICD10, 'G90.50', 'Complex regional pain syndrome I, unspecified'), 'complex regional pain syndrome', 'Not ordered for complex regional'],
  ];
  for (const [what, reason, name, line] of excluded) {
    it(`for ${what}: not covered, with that condition named first`, async () => {
      const a = await drug(drugCase({ codes: KETALAR, reason }));
      assert.equal(a.covered, 'not-covered');
      assert.equal(a.reasons[0], `Ketalar for ${name} ${EIU}`);
      assert.equal(a.status(line), 'not-met');
      assert.match(a.card.summary, new RegExp(`^Ketalar: not covered — Ketalar for ${name} is considered experimental`));
    });
  }

  it('treatment-resistant depression in free text: not covered', async () => {
    const a = await drug(drugCase({ codes: KETALAR, reason: 'Treatment-resistant depression, IV infusion series' }));
    assert.equal(a.covered, 'not-covered');
  });

  it('a patient with depression whose Ketalar is for surgical anesthesia: covered (the use is judged, not the history)', async () => {
    const a = await drug(drugCase({ codes: KETALAR, reason: 'Anesthesia for laparoscopic appendectomy', conditions: [coding(ICD10, 'F33.1')] }));
    assert.equal(a.covered, 'covered');
  });

  it('no stated use: the anesthesia use is documentation to submit', async () => {
    const a = await drug(drugCase({ codes: KETALAR }));
    assert.match(a.detailText, /Document: The anesthesia use of Ketalar/);
  });
});

describe('Cigna 1701 Macrilen: diagnosis of adult growth hormone deficiency, age ≥ 18, BMI ≤ 40', () => {
  const AGHD = coding(ICD10, 'E23.0', 'Hypopituitarism');
  function macrilen(bmi: number | null, age = 35, reason: CodeRef | string = AGHD): ClinicalCase {
    const c = drugCase({ codes: MACRILEN, reason, age });
    if (bmi !== null) c.observations.push(observation('obs-bmi', c.patient.id!, coding(LOINC, '39156-5', 'Body mass index'), { valueQuantity: quantity(bmi, 'kg/m2') }, { category: 'vital-signs' }));
    return c;
  }

  it('met (BMI 35): covered', async () => {
    const a = await drug(macrilen(35));
    assert.equal(a.covered, 'covered');
    assert.deepEqual(a.docNeeded, []);
  });

  it('BMI exactly 40 is within the limit; 41 is not covered', async () => {
    assert.equal((await drug(macrilen(40))).status('BMI'), 'met');
    const over = await drug(macrilen(41));
    assert.equal(over.covered, 'not-covered');
    assert.deepEqual(over.reasons, ['Macrilen is covered only with a body mass index of 40 kg/m² or less (Cigna 1701).']);
  });

  it('no BMI: documentation to submit', async () => {
    const a = await drug(macrilen(null));
    assert.match(a.detailText, /Document: Body mass index \(BMI\)/);
  });

  it('17 years old: not covered', async () => {
    assert.equal((await drug(macrilen(30, 17))).covered, 'not-covered');
  });

  it('suspected AGHD in text is the covered use; any other use is not covered', async () => {
    assert.equal((await drug(macrilen(30, 35, 'Suspected adult growth hormone deficiency'))).covered, 'covered');
    const other = await drug(macrilen(30, 35, 'Cachexia'));
    assert.equal(other.covered, 'not-covered');
    assert.ok(other.reasons.includes(`Macrilen is covered only to diagnose adult growth hormone deficiency; any other use ${EIU}`));
  });
});

describe('Cigna 1701 Regiocit: adult CRRT replacement solution with regional citrate anticoagulation, critical care setting', () => {
  function regiocit(options: { age?: number; crrt?: 'order' | 'reason' | 'none'; encounterClass?: string; locationTypes?: string[] } = {}): ClinicalCase {
    const crrt = options.crrt ?? 'order';
    const c = drugCase({
      codes: REGIOCIT,
      age: options.age ?? 60,
      encounterClass: options.encounterClass ?? 'IMP',
      encounterLocationTypes: options.locationTypes ?? ['ICU'],
      ...(crrt === 'reason' ? { reason: 'Replacement fluid for CRRT with regional citrate anticoagulation' } : {}),
    });
    if (crrt === 'order') c.orders.push(serviceOrder('sr-crrt', c.patient.id!, 'Continuous renal replacement therapy (CVVHDF), citrate anticoagulation'));
    return c;
  }

  it('adult on CRRT in the ICU: covered; that regional citrate anticoagulation is appropriate is clinical documentation', async () => {
    const a = await drug(regiocit());
    assert.equal(a.covered, 'covered');
    assert.deepEqual(a.docNeeded, ['clinical']);
    assert.equal(a.status('Administered in a critical care setting'), 'met');
    assert.match(a.line('Replacement solution for an adult on CRRT'), /Continuous renal replacement therapy \(CVVHDF\)/);
    assert.match(a.detailText, /Document: Documentation that regional citrate anticoagulation \(RCA\) is appropriate for the patient/);
  });

  it('CRRT named by the order reason', async () => {
    const a = await drug(regiocit({ crrt: 'reason' }));
    assert.notEqual(a.covered, 'not-covered');
    assert.doesNotMatch(a.detailText, /Document: The continuous renal replacement therapy/);
  });

  it('no CRRT in the record: documentation to submit', async () => {
    const a = await drug(regiocit({ crrt: 'none' }));
    assert.match(a.detailText, /Document: The continuous renal replacement therapy \(CRRT\) Regiocit is the replacement solution for/);
  });

  it('an inpatient ward that is not a critical care unit: the critical care setting is documentation to submit', async () => {
    const a = await drug(regiocit({ locationTypes: ['HU'] }));
    assert.deepEqual([...a.docNeeded].sort(), ['admin', 'clinical']);
    assert.match(a.detailText, /Document: Documentation that Regiocit is administered in a critical care setting/);
  });

  it('an ambulatory encounter: not covered', async () => {
    const a = await drug(regiocit({ encounterClass: 'AMB', locationTypes: [] }));
    assert.equal(a.covered, 'not-covered');
    assert.ok(a.reasons.includes('Regiocit is covered only when administered in a critical care setting (Cigna 1701).'));
  });

  it('a 16-year-old: not covered (adult patients only)', async () => {
    const a = await drug(regiocit({ age: 16, locationTypes: ['PEDICU'] }));
    assert.equal(a.covered, 'not-covered');
    assert.ok(a.reasons[0]!.startsWith('Regiocit is covered only as a CRRT replacement solution in adults'));
  });
});

describe('Cigna 1701: precertification, authorization duration and scope', () => {
  it('order-select: the same determination, no documentation requested yet', async () => {
    const a = await drug(drugCase({ codes: DSUVIA, reason: 'Acute pain after trauma' }), { hook: 'order-select', selections: [ORDER] });
    assert.equal(a.covered, 'covered');
    assert.deepEqual(a.docNeeded, []);
    assert.equal(a.expiryDate, inTwelveMonths());
  });

  it('before the 7/1/2024 effective date: no assertion; from 2024-07-01 judged', async () => {
    const c = drugCase({ codes: ISUPREL, reason: 'Torsades de pointes' });
    assertSilent(await send(c, { on: '2024-06-30' }), ORDER);
    const a = await drug(c, { on: '2024-07-01' });
    assert.equal(a.policyVersion, '1701 version 2024-07-01');
    assert.equal(a.expiryDate, '2025-07-01');
  });

  it('a Cigna product line the policy does not name (Medicare Advantage, SOPT 11): no assertion', async () => {
    assertSilent(await send(drugCase({ codes: ISUPREL, reason: 'Torsades de pointes', sopt: '11' })), ORDER);
  });
});
