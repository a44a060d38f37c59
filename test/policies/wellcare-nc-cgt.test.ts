// WellCare of North Carolina WNC.CP.299 Cell and Gene Therapies, seed 002: covered with prior
// approval when FDA-approved, used per label and given at a Qualified Treatment Center; not
// covered for repeat therapy, with compliance barriers needing review, fertility preservation
// ordered alongside not covered; CGT Access Model paperwork; billing codes and NDC; EPSDT.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import type { MedicationRequest, Organization, Reference } from 'fhir/r4.js';
import { startFhirServer, type FhirTestServer } from '../support/fhir-server.ts';
import {
  allResources,
  birthDateMonthsAgo,
  birthDateYearsAgo,
  coding,
  condition,
  CPT,
  daysAgo,
  facility,
  fullPrefetch,
  HCPCS,
  ICD10,
  ICD10_PCS,
  location,
  LOINC,
  medicationOrder,
  NDC,
  NPI,
  pastAdministration,
  pastProcedure,
  pastStatement,
  patientCase,
  QTC_NPI,
  RXNORM,
  serviceOrder,
  weight,
  wellcarePayer,
  type ClinicalCase,
  type CodeRef,
} from '../support/fixtures.ts';
import { answer, answerFor, assertSilent, editedPolicies, editJson, send } from './helpers.ts';

const ORDER = 'MedicationRequest/mr-cgt';
const QTC: Reference = { identifier: { system: NPI, value: QTC_NPI }, display: 'Piedmont Regional Gene Therapy Center' };
const OTHER_SITE: Reference = { identifier: { system: 'http://hospital.example.org/facility-id', value: 'CLINIC-7' }, display: 'Eastside Infusion Clinic' };

const PRODUCTS: Record<string, { codes: readonly CodeRef[]; text?: string; diagnosis: CodeRef | undefined }> = {
  zynteglo: { codes: [coding(HCPCS, 'J3590', 'Unclassified biologics'), coding(NDC, '73554-3111-1')], diagnosis: coding(ICD10, 'D56.1', 'Beta thalassemia') },
  casgevy: { codes: [coding(HCPCS, 'J3392'), coding(NDC, '51167-290-01')], diagnosis: coding(ICD10, 'D57.00', 'Hb-SS disease with crisis, unspecified') },
  lyfgenia: { codes: [coding(HCPCS, 'J3394'), coding(NDC, '73554-1111-1')], diagnosis: coding(ICD10, 'D57.1', 'Sickle-cell disease without crisis') },
  skysona: { codes: [coding(HCPCS, 'J3590')], text: 'Skysona (elivaldogene autotemcel)', diagnosis: coding(ICD10, 'E71.520', 'Childhood cerebral X-linked adrenoleukodystrophy') },
  hemgenix: { codes: [coding(HCPCS, 'J1411'), coding(NDC, '0053-0300-30')], diagnosis: coding(ICD10, 'D67', 'Hereditary factor IX deficiency') },
  kebilidi: { codes: [coding(HCPCS, 'J1322'), coding(NDC, '52856-601-01')], diagnosis: undefined },
};

interface CgtOptions {
  product?: 'zynteglo' | 'casgevy' | 'lyfgenia' | 'skysona' | 'hemgenix' | 'kebilidi';
  codes?: CodeRef[];
  text?: string;
  /** The diagnosis as a Condition (default the product's), or none. */
  diagnosis?: CodeRef | null;
  /** The order's reason (default none: the diagnosis comes from the Conditions). */
  reason?: CodeRef | string;
  birthDate?: string;
  gender?: 'male' | 'female';
  performer?: Reference | null;
  sopt?: string;
}

/** A WellCare NC Medicaid member (SOPT 21) with a cell or gene therapy order given at the QTC. */
function cgtCase(options: CgtOptions = {}): ClinicalCase {
  const product = PRODUCTS[options.product ?? 'zynteglo']!;
  const c = patientCase({ payer: wellcarePayer(), sopt: options.sopt ?? '21', birthDate: options.birthDate ?? birthDateYearsAgo(22), gender: options.gender ?? 'male' });
  const p = c.patient.id!;
  const diagnosis = options.diagnosis === undefined ? product.diagnosis : options.diagnosis;
  if (diagnosis) c.conditions.push(condition('cond-dx', p, diagnosis));
  c.orders.push(
    medicationOrder('mr-cgt', p, {
      codes: options.codes ?? [...product.codes],
      ...(options.text ?? (options.codes ? undefined : product.text) ? { text: options.text ?? product.text } : {}),
      ...(options.reason ? { reason: options.reason } : {}),
      ...(options.performer === null ? {} : { performer: options.performer ?? QTC }),
    }),
  );
  return c;
}

const cgt = answerFor(ORDER);

describe('WNC.CP.299 covered with prior approval (Policy/Criteria I, Background II)', () => {
  it('Zynteglo for β-thalassemia at the QTC: covered, auth-needed, nothing missing, billed J3590 with the NDC', async () => {
    const a = await cgt(cgtCase());
    assert.equal(a.covered, 'covered');
    assert.equal(a.paNeeded, 'auth-needed');
    assert.deepEqual(a.docNeeded, []);
    assert.deepEqual(a.infoNeeded, []);
    assert.deepEqual(a.reasons, []);
    assert.deepEqual(a.billingCodes, ['J3590'], 'an FDA-approved therapy without a product-specific code is billed J3590');
    assert.equal(a.expiryDate, undefined, 'one-time therapy: no authorization period');
    assert.equal(a.policyVersion, 'WNC.CP.299 version 2025-01');
    assert.equal(a.card.summary, 'Zynteglo: prior authorization required; all criteria documented');
    for (const label of ['I.A FDA-approved', 'I.B.1 Used per', 'I.B.2 Labelled dosage', 'I.B.3 Labelled dosage form', 'I.C Administered at a Qualified', 'Manufacturer enrolled', 'III.D No prior', 'III.E Psychosocial', 'III.F No current']) {
      assert.equal(a.status(label), 'met', label);
    }
    assert.match(a.detailText, /Continued therapy is not authorized: cell and gene therapy is a one-time, lifetime treatment/);
    const instructions = a.instructionsCard();
    assert.ok(instructions, 'an instructions card');
    assert.equal(instructions.source.topic.code, 'claim');
    assert.match(instructions.detail ?? '', /must carry HCPCS J3590 and NDC 73554311101/);
    assert.match(instructions.detail ?? '', /Put the PA number and the NDC on the claim and attach the manufacturer's invoice/);
    assert.match(instructions.detail ?? '', /Zynteglo labelled dose: Minimum 5\.0 × 10\^6 CD34\+ cells per kg/);
  });

  it('a product-specific code is what the claim and PA carry (Casgevy J3392 with NDC 51167029001)', async () => {
    const a = await cgt(cgtCase({ product: 'casgevy', diagnosis: coding(ICD10, 'D56.1') }));
    assert.deepEqual(a.billingCodes, ['J3392']);
    assert.match(a.instructionsCard()?.detail ?? '', /must carry HCPCS J3392 and NDC 51167029001/);
  });

  it('Coding Implications tables: each HCPCS and NDC identifies its product', async () => {
    const table: [CodeRef[], string][] = [
      [[coding(HCPCS, 'J3392')], 'Casgevy'],
      [[coding(HCPCS, 'J3394')], 'Lyfgenia'],
      [[coding(NDC, '73554111101')], 'Lyfgenia'],
      [[coding(NDC, '51167029001')], 'Casgevy'],
      [[coding(NDC, '51167029009')], 'Casgevy'],
      [[coding(HCPCS, 'J3590'), coding(NDC, '51167029009')], 'Casgevy'],
    ];
    for (const [codes, name] of table) {
      const a = await cgt(cgtCase({ product: 'casgevy', codes }));
      assert.match(a.detailText, new RegExp(`^\\*\\*${name}\\*\\*`), codes.map((x) => x.code).join('+'));
      assert.equal(a.paNeeded, 'auth-needed');
    }
  });
});

describe('WNC.CP.299 I.A / III.A: FDA approval', () => {
  it('J3590 with nothing that identifies the product: never covered; conditional on the NDC (info-needed detail-code)', async () => {
    const a = await cgt(cgtCase({ codes: [coding(HCPCS, 'J3590', 'Unclassified biologics')], text: 'autologous gene therapy', diagnosis: null }));
    assert.notEqual(a.covered, 'covered');
    assert.equal(a.covered, 'conditional');
    assert.equal(a.paNeeded, 'auth-needed');
    assert.ok(a.infoNeeded.includes('detail-code'));
    assert.deepEqual(a.docNeeded, [], 'a code detail is asked on the order, not through documentation');
    assert.ok(a.reasons.some((r) => /HCPCS J3590 is an unclassified code .* not known to be FDA-approved or used per its label\. Send the NDC\./.test(r)), a.reasons.join('\n'));
    assert.match(a.card.summary, /^Product billed as HCPCS J3590: prior authorization required; HCPCS J3590 is an unclassified code/);
    assert.equal(a.status('I.A FDA-approved'), 'missing');
    assert.deepEqual(a.billingCodes, []);
    assert.match(a.instructionsCard()?.detail ?? '', /must carry the product-specific HCPCS code and the NDC of the product/);
  });

  it('a therapy the catalog records as not FDA-approved: not covered (III.A)', async () => {
    const registry = editedPolicies((dir) =>
      editJson(path.join(dir, 'products.json'), (data) => {
        (data.products as unknown[]).push({
          id: 'investigational-cgt',
          name: 'Examplecel',
          nonproprietaryName: 'examplecel autotemcel (investigational)',
          names: ['examplecel'],
          codes: [],
          categories: ['cell-gene-therapy'],
          fdaApproved: false,
          regulatoryNote: 'investigational (IND only)',
        });
      }),
    );
    const a = await cgt(cgtCase({ codes: [coding(HCPCS, 'J3590')], text: 'Examplecel infusion' }), { registry });
    assert.equal(a.covered, 'not-covered');
    assert.ok(a.reasons.includes('The cell or gene therapy has not received FDA approval: not covered (WNC.CP.299 III.A).'), a.reasons.join('\n'));
    assert.equal(a.status('I.C Administered at a Qualified'), 'not-met', 'a QTC for every FDA-approved therapy is not one for an unapproved therapy');
    assert.match(a.line('I.A FDA-approved'), /Examplecel is not FDA-approved: investigational \(IND only\)/);
  });
});

describe('WNC.CP.299 I.B.1 / III.B.1: indications and usage (label facts from the catalog)', () => {
  it('the order reason within the label (no Conditions needed)', async () => {
    const a = await cgt(cgtCase({ diagnosis: null, reason: coding(ICD10, 'D56.1', 'Beta thalassemia') }));
    assert.equal(a.status('I.B.1 Used per'), 'met');
    assert.match(a.line('I.B.1 Used per'), /Order reason: Beta thalassemia \(ICD-10-CM D56\.1\)/);
  });

  it("the patient's Conditions within the label when the order states no reason", async () => {
    const a = await cgt(cgtCase());
    assert.match(a.line('I.B.1 Used per'), /Beta thalassemia \(ICD-10-CM D56\.1\) \(Condition\/cond-dx\)/);
  });

  it('an order reason outside the label (Zynteglo for sickle cell disease): not covered (III.B.1)', async () => {
    const a = await cgt(cgtCase({ reason: coding(ICD10, 'D57.1', 'Sickle-cell disease without crisis') }));
    assert.equal(a.covered, 'not-covered');
    assert.ok(a.reasons.includes('The therapy is not used per its FDA-approved indications and usage (diagnosis, age or sex): not covered (WNC.CP.299 III.B.1).'));
    assert.match(a.line('I.B.1 Used per'), /Outside the FDA-labeled indication: Adult and pediatric patients with β-thalassemia/);
  });

  it('sickle cell trait (D57.3) is not sickle cell disease: Lyfgenia for it is off-label', async () => {
    const a = await cgt(cgtCase({ product: 'lyfgenia', diagnosis: null, reason: coding(ICD10, 'D57.3', 'Sickle-cell trait') }));
    assert.equal(a.covered, 'not-covered');
  });

  it('no diagnosis in the record: the diagnosis is documentation to submit (doc-needed clinical)', async () => {
    const a = await cgt(cgtCase({ diagnosis: null }));
    assert.equal(a.covered, 'covered');
    assert.deepEqual(a.docNeeded, ['clinical']);
    assert.equal(a.status('I.B.1 Used per'), 'missing');
    assert.match(a.detailText, /Document: Diagnosis within the FDA-labeled indication of Zynteglo/);
    assert.match(a.card.summary, /^Zynteglo: prior authorization required; 1 item missing/);
  });

  it('a product whose indication has no verified diagnosis code (Kebilidi): documentation, never a denial', async () => {
    const a = await cgt(cgtCase({ product: 'kebilidi', reason: 'AADC deficiency' }));
    assert.notEqual(a.covered, 'not-covered');
    assert.equal(a.status('I.B.1 Used per'), 'missing');
    assert.match(a.line('I.B.1 Used per'), /no verified diagnosis codes for Kebilidi/);
  });

  it('verified age limit: Lyfgenia at 11 is not covered, at 12 it is within the label', async () => {
    const young = await cgt(cgtCase({ product: 'lyfgenia', birthDate: birthDateYearsAgo(12, -1) }));
    assert.equal(young.covered, 'not-covered');
    assert.match(young.line('I.B.1 Used per'), /requires an age of at least 12 years/);
    const twelve = await cgt(cgtCase({ product: 'lyfgenia', birthDate: birthDateYearsAgo(12) }));
    assert.equal(twelve.status('I.B.1 Used per'), 'met');
  });

  it('an unverified age limit (Casgevy ≥ 12, label revised 07/2026) is not a denial: review (conditional, OTH)', async () => {
    const a = await cgt(cgtCase({ product: 'casgevy', diagnosis: coding(ICD10, 'D56.1'), birthDate: birthDateYearsAgo(10) }));
    assert.equal(a.covered, 'conditional');
    assert.ok(a.infoNeeded.includes('OTH'));
    assert.equal(a.status('I.B.1 Used per'), 'review');
    assert.ok(a.reasons.some((r) => /label fact that the product catalog could not verify/.test(r)));
    assert.match(a.line('I.B.1 Used per'), /age limit is not verified/);
  });

  it('sex and age limits of the label (Skysona: boys 4–17 years)', async () => {
    const boy = await cgt(cgtCase({ product: 'skysona', birthDate: birthDateYearsAgo(9) }));
    assert.equal(boy.status('I.B.1 Used per'), 'met');
    const girl = await cgt(cgtCase({ product: 'skysona', birthDate: birthDateYearsAgo(9), gender: 'female' }));
    assert.equal(girl.covered, 'not-covered');
    assert.match(girl.line('I.B.1 Used per'), /The label limits use to male patients/);
    const adult = await cgt(cgtCase({ product: 'skysona', birthDate: birthDateYearsAgo(18) }));
    assert.equal(adult.covered, 'not-covered');
    assert.match(adult.line('I.B.1 Used per'), /at most 17 years/);
  });
});

describe('WNC.CP.299 I.B.2 / III.B.2: dosage and administration', () => {
  function zolgensmaCaseAt(weightKg: number | null): ClinicalCase {
    const c = cgtCase({ codes: [coding(NDC, '71894-131-06', 'Zolgensma kit 8.1-8.5 kg')], diagnosis: coding(ICD10, 'G12.0'), birthDate: birthDateMonthsAgo(10), gender: 'female' });
    if (weightKg !== null) c.observations.push(weight('obs-weight', c.patient.id!, weightKg));
    return c;
  }

  it('a per-kg labelled dose is checked: the 8.1–8.5 kg kit for 8.4 kg is within the label', async () => {
    const a = await cgt(zolgensmaCaseAt(8.4));
    assert.equal(a.status('I.B.2 Labelled dosage'), 'met');
    assert.match(a.line('I.B.2 Labelled dosage'), /Kit NDC 71894-131-06 is for 8\.1–8\.5 kg/);
  });

  it('the kit does not match the weight: not covered (III.B.2)', async () => {
    const a = await cgt(zolgensmaCaseAt(12));
    assert.equal(a.covered, 'not-covered');
    assert.ok(a.reasons.includes('The prescribed dose is outside the FDA-approved dosage and administration: not covered (WNC.CP.299 III.B.2).'));
  });

  it('no weight: the current body weight is documentation to submit', async () => {
    const a = await cgt(zolgensmaCaseAt(null));
    assert.equal(a.status('I.B.2 Labelled dosage'), 'missing');
    assert.match(a.detailText, /Document: Current body weight/);
  });

  it('cell therapies are dosed by manufacturing: the labelled dose is stated, visibly not compared', async () => {
    const a = await cgt(cgtCase());
    assert.match(a.line('I.B.2 Labelled dosage'), /Labelled dose: Minimum 5\.0 × 10\^6 CD34\+ cells per kg, single IV infusion \(the catalog has no per-kg dose to compare the order with\)/);
  });
});

describe('WNC.CP.299 I.B.3 / III.B.3: dosage forms and strengths', () => {
  it('an NDC that is a labelled package: met', async () => {
    const a = await cgt(cgtCase());
    assert.match(a.line('I.B.3 Labelled dosage form'), /NDC 73554311101: a labelled package of Zynteglo/);
  });

  it('an NDC the catalog does not know for the product: review', async () => {
    const a = await cgt(cgtCase({ product: 'lyfgenia', codes: [coding(RXNORM, '2671958'), coding(NDC, '73554-1111-9')] }));
    assert.equal(a.status('I.B.3 Labelled dosage form'), 'review');
    assert.equal(a.covered, 'conditional');
    assert.ok(a.reasons.includes('The ordered NDC is not a labelled package of the therapy known to the catalog: the dosage form and strength need review (WNC.CP.299 I.B.3).'));
  });

  it('no NDC on the order: conditional on the code detail; the instructions name the labelled NDCs', async () => {
    const a = await cgt(cgtCase({ product: 'lyfgenia', codes: [coding(HCPCS, 'J3394')] }));
    assert.equal(a.covered, 'conditional');
    assert.ok(a.infoNeeded.includes('detail-code'));
    assert.match(a.instructionsCard()?.detail ?? '', /must carry HCPCS J3394 and the NDC \(73554-1111-1\)/);
  });
});

describe('WNC.CP.299 I.C / III.C: Qualified Treatment Center', () => {
  it("the order's performer names the QTC by NPI", async () => {
    const a = await cgt(cgtCase());
    assert.match(a.line('I.C Administered at a Qualified'), /from the order's performer: Piedmont Regional Gene Therapy Center \(NPI 1999990017\) is in the WellCare of North Carolina Qualified Treatment Center registry/);
  });

  it('a site that is not a QTC: not covered (III.C)', async () => {
    const a = await cgt(cgtCase({ performer: OTHER_SITE }));
    assert.equal(a.covered, 'not-covered');
    assert.ok(a.reasons.includes('The administering facility is not approved as a Qualified Treatment Center for this therapy: not covered (WNC.CP.299 III.C).'));
    assert.match(a.line('I.C Administered at a Qualified'), /Eastside Infusion Clinic is not approved in the WellCare of North Carolina Qualified Treatment Center registry to administer Zynteglo/);
  });

  it('a contained performer Organization with the QTC NPI', async () => {
    const c = cgtCase({ performer: { reference: '#site' } });
    c.orders[0]!.contained = [facility('site', 'Piedmont Regional Gene Therapy Center', QTC_NPI)];
    assert.equal((await cgt(c)).status('I.C Administered at a Qualified'), 'met');
  });

  it('dispenseRequest.performer names the site', async () => {
    const c = cgtCase({ performer: null });
    (c.orders[0] as { dispenseRequest?: object }).dispenseRequest = { performer: QTC };
    const a = await cgt(c);
    assert.match(a.line('I.C Administered at a Qualified'), /from the dispensing organization/);
    assert.equal(a.covered, 'covered');
  });

  it("the requester PractitionerRole's organization names the site", async () => {
    const c = cgtCase({ performer: null });
    c.role.organization = QTC;
    const a = await cgt(c);
    assert.match(a.line('I.C Administered at a Qualified'), /from the ordering clinician's organization/);
    assert.equal(a.covered, 'covered');
  });

  it("the encounter's serviceProvider names the site", async () => {
    const c = cgtCase({ performer: null });
    c.encounter.serviceProvider = QTC;
    assert.match((await cgt(c)).line('I.C Administered at a Qualified'), /from the encounter's facility/);
  });

  it("the encounter's location (a Location with the QTC NPI)", async () => {
    const c = cgtCase({ performer: null });
    c.encounter.contained = [location('loc-infusion', 'Piedmont infusion suite', ['HOSP'], QTC_NPI)];
    c.encounter.location = [{ location: { reference: '#loc-infusion' } }];
    const a = await cgt(c);
    assert.equal(a.status('I.C Administered at a Qualified'), 'met');
  });

  it('the most specific source decides: a non-QTC performer is not rescued by a QTC encounter', async () => {
    const c = cgtCase({ performer: OTHER_SITE });
    c.encounter.serviceProvider = QTC;
    assert.equal((await cgt(c)).covered, 'not-covered');
  });

  it('no site anywhere: coverage depends on the site (conditional, info-needed performer and location)', async () => {
    const a = await cgt(cgtCase({ performer: null }));
    assert.equal(a.covered, 'conditional');
    assert.deepEqual([...a.infoNeeded].sort(), ['location', 'performer']);
    assert.equal(a.paNeeded, 'auth-needed');
    assert.ok(a.reasons.some((r) => /No treatment site is named/.test(r)));
    assert.match(a.card.summary, /^Zynteglo: prior authorization required; no treatment site is named/);
  });

  it('a site named without an identifier: conditional, info-needed performer', async () => {
    const a = await cgt(cgtCase({ performer: { reference: 'Organization/org-unknown', display: 'Some infusion center' } }));
    assert.equal(a.covered, 'conditional');
    assert.deepEqual(a.infoNeeded, ['performer']);
    assert.match(a.line('I.C Administered at a Qualified'), /has no identifier \(NPI\)/);
  });

  describe('the performer read from the EHR FHIR server', () => {
    let fhir: FhirTestServer;
    before(async () => {
      fhir = await startFhirServer();
    });
    after(async () => {
      await fhir.close();
    });

    it('Organization/org-piedmont is not in prefetch: the service reads it and finds the QTC NPI', async () => {
      const c = cgtCase({ performer: { reference: 'Organization/org-piedmont' } });
      const site: Organization = facility('org-piedmont', 'Piedmont Regional Gene Therapy Center', QTC_NPI);
      await fhir.seed([...allResources(c), site]);
      const a = await cgt(c, { fhirServer: fhir.baseUrl, prefetch: fullPrefetch(c) });
      assert.ok(fhir.requests.some((r) => r.url.includes('/Organization/org-piedmont')), 'the performer was read');
      assert.equal(a.status('I.C Administered at a Qualified'), 'met');
      assert.equal(a.covered, 'covered');
    });
  });
});

describe('WNC.CP.299 Background III.A: Medicaid Drug Rebate Program', () => {
  it('verified participation (Casgevy, CMS CGT Access Model) and inferred participation (Zynteglo, marked S)', async () => {
    const casgevy = await cgt(cgtCase({ product: 'casgevy', diagnosis: coding(ICD10, 'D56.1') }));
    assert.match(casgevy.line('Manufacturer enrolled'), /Casgevy: manufacturer participates in the Medicaid Drug Rebate Program \(CMS CGT Access Model FAQ/);
    const zynteglo = await cgt(cgtCase());
    assert.match(zynteglo.line('Manufacturer enrolled'), /\(S: inferred\./);
  });

  it('participation not verified in the catalog (Hemgenix): administrative documentation, not a guess', async () => {
    const a = await cgt(cgtCase({ product: 'hemgenix' }));
    assert.equal(a.covered, 'covered');
    assert.deepEqual(a.docNeeded, ['admin']);
    assert.equal(a.status('Manufacturer enrolled'), 'missing');
    assert.match(a.detailText, /Document: Confirmation that the manufacturer of Hemgenix is enrolled in the Medicaid Drug Rebate Program/);
  });

  it('a manufacturer the catalog records as not enrolled: not covered', async () => {
    const registry = editedPolicies((dir) =>
      editJson(path.join(dir, 'products.json'), (data) => {
        const zynteglo = (data.products as { id: string; label: { medicaidDrugRebate: unknown } }[]).find((p) => p.id === 'zynteglo')!;
        zynteglo.label.medicaidDrugRebate = false;
      }),
    );
    const a = await cgt(cgtCase(), { registry });
    assert.equal(a.covered, 'not-covered');
    assert.deepEqual(a.reasons, ['The manufacturer is not enrolled in the Medicaid Drug Rebate Program (WNC.CP.299 Background III.A).']);
  });
});

describe('WNC.CP.299 Background V: CGT Access Model (Casgevy, Lyfgenia for sickle cell disease)', () => {
  for (const product of ['casgevy', 'lyfgenia'] as const) {
    it(`${product} for sickle cell disease: registry enrollment and beneficiary consent are administrative documentation`, async () => {
      const a = await cgt(cgtCase({ product }));
      assert.equal(a.covered, 'covered');
      assert.equal(a.paNeeded, 'auth-needed');
      assert.deepEqual(a.docNeeded, ['admin']);
      assert.deepEqual(a.codes('doc-purpose'), ['withpa']);
      assert.equal(a.status('CGT Access Model'), 'missing');
      assert.match(a.detailText, /Provider registration with the CMS-designated patient registry for the CGT Access Model/);
      assert.match(a.detailText, /Beneficiary consent sought for participation in the CMS-specified study/);
      assert.match(a.detailText, /_CGT Access Model drug: the provider must be registered with the CMS-designated patient registry/);
      assert.match(a.card.summary, /prior authorization required; 2 items missing/);
    });
  }

  it('Casgevy for transfusion-dependent β-thalassemia: the model does not apply', async () => {
    const a = await cgt(cgtCase({ product: 'casgevy', diagnosis: null, reason: coding(ICD10, 'D56.1', 'Beta thalassemia') }));
    assert.equal(a.status('CGT Access Model'), 'met');
    assert.match(a.line('CGT Access Model'), /Not ordered for sickle cell disease/);
    assert.deepEqual(a.docNeeded, []);
  });

  it('order-select: the same checklist, but no documentation is requested in the system action', async () => {
    const a = await cgt(cgtCase({ product: 'casgevy' }), { hook: 'order-select', selections: [ORDER] });
    assert.equal(a.covered, 'covered');
    assert.deepEqual(a.docNeeded, []);
    assert.equal(a.status('CGT Access Model'), 'missing');
  });
});

describe('WNC.CP.299 III.D: no repeat treatment with the same or another cell or gene therapy', () => {
  it('another CGT administered before (MedicationAdministration of Zolgensma): not covered', async () => {
    const c = cgtCase();
    c.medicationAdministrations.push(pastAdministration('ma-1', c.patient.id!, [coding(HCPCS, 'J3399')], 'Zolgensma'));
    const a = await cgt(c);
    assert.equal(a.covered, 'not-covered');
    assert.match(a.reasons[0]!, /^Repeat treatment: the member has received the same or another cell or gene therapy before/);
    assert.match(a.reasons[0]!, /continued therapy is never authorized/);
    assert.match(a.line('III.D No prior'), /Zolgensma administered on/);
  });

  it('the same CGT recorded as a MedicationStatement (by name): not covered', async () => {
    const c = cgtCase();
    c.medicationStatements.push(pastStatement('ms-1', c.patient.id!, [], 'betibeglogene autotemcel (outside hospital)'));
    const a = await cgt(c);
    assert.equal(a.covered, 'not-covered');
    assert.match(a.line('III.D No prior'), /Zynteglo received/);
  });

  for (const code of ['XW133H9', 'XW143H9', 'XW133J8', 'XW143J8']) {
    it(`an ICD-10-PCS ${code} administration Procedure: not covered`, async () => {
      const c = cgtCase();
      c.procedures.push(pastProcedure('proc-1', c.patient.id!, coding(ICD10_PCS, code)));
      const a = await cgt(c);
      assert.equal(a.covered, 'not-covered');
      assert.match(a.line('III.D No prior'), new RegExp(`${code}.*\\(Procedure/proc-1\\)`));
    });
  }

  it('a personal history of gene therapy (Z92.86): not covered', async () => {
    const c = cgtCase();
    c.conditions.push(condition('cond-hx', c.patient.id!, coding(ICD10, 'Z92.86', 'Personal history of gene therapy')));
    assert.equal((await cgt(c)).covered, 'not-covered');
  });

  it('an earlier non-CGT medication is no repeat', async () => {
    const c = cgtCase();
    c.medicationAdministrations.push(pastAdministration('ma-2', c.patient.id!, [coding(RXNORM, '8638', 'prednisolone')], 'prednisolone'));
    const a = await cgt(c);
    assert.equal(a.status('III.D No prior'), 'met');
    assert.match(a.line('III.D No prior'), /No prior treatment with a cell or gene therapy recorded/);
  });
});

describe('WNC.CP.299 III.E / III.F: psychosocial history and current noncompliance need review', () => {
  it('current member noncompliance (Z91.19, active): both need review; conditional with OTH, never a silent pass', async () => {
    const c = cgtCase();
    c.conditions.push(condition('cond-nc', c.patient.id!, coding(ICD10, 'Z91.19', "Patient's noncompliance with other medical treatment and regimen")));
    const a = await cgt(c);
    assert.equal(a.covered, 'conditional');
    assert.equal(a.paNeeded, 'auth-needed');
    assert.ok(a.infoNeeded.includes('OTH'));
    assert.equal(a.status('III.E Psychosocial'), 'review');
    assert.equal(a.status('III.F No current'), 'review');
    assert.ok(a.reasons.some((r) => /psychosocial history .* needs review \(WNC\.CP\.299 III\.E\)/.test(r)));
    assert.ok(a.reasons.some((r) => /Current member or caretaker noncompliance is recorded .* needs review \(WNC\.CP\.299 III\.F\)/.test(r)));
    assert.match(a.card.summary, /^Zynteglo: prior authorization required; the member's psychosocial history/);
  });

  it('a resolved caregiver noncompliance (Z91.A4): psychosocial history needs review, no current noncompliance', async () => {
    const c = cgtCase();
    c.conditions.push(condition('cond-cg', c.patient.id!, coding(ICD10, 'Z91.A4', "Caregiver's other noncompliance with patient's medical treatment and regimen"), { clinicalStatus: 'resolved', onset: daysAgo(900) }));
    const a = await cgt(c);
    assert.equal(a.status('III.E Psychosocial'), 'review');
    assert.equal(a.status('III.F No current'), 'met');
    assert.equal(a.covered, 'conditional');
  });

  it('conditions that could not be retrieved: indeterminate, not a pass', async () => {
    const c = cgtCase({ reason: coding(ICD10, 'D56.1') });
    const prefetch = fullPrefetch(c) as Record<string, unknown>;
    delete prefetch.conditions;
    const a = await cgt(c, { prefetch: prefetch as never });
    assert.equal(a.covered, 'indeterminate');
    assert.equal(a.status('III.F No current'), 'unavailable');
  });
});

describe('WNC.CP.299 IV.A: fertility preservation ordered alongside is not covered', () => {
  for (const code of ['89258', '89259', '89337', '0357T', '89335', '0058T']) {
    it(`CPT ${code} with a CGT in the same call: that order not covered; the CGT keeps its own answer`, async () => {
      const c = cgtCase();
      c.orders.push(serviceOrder('sr-fp', c.patient.id!, coding(CPT, code)));
      const response = await send(c);
      const fp = answer(response, 'ServiceRequest/sr-fp');
      assert.equal(fp.covered, 'not-covered');
      assert.equal(fp.paNeeded, undefined);
      assert.match(fp.reasons[0]!, /^Fertility preservation services associated with cell and gene therapy administration are not covered by WellCare of North Carolina \(WNC\.CP\.299 IV\.A\)/);
      assert.match(fp.card.summary, new RegExp(`^Fertility preservation service \\(CPT ${code}\\): not covered`));
      assert.match(fp.line('Fertility preservation ordered with'), /Zynteglo ordered in this session \(MedicationRequest\/mr-cgt\)/);
      assert.equal(answer(response, ORDER).covered, 'covered');
    });
  }

  it('identified by the order reason (Z31.84) when the service has no CPT code', async () => {
    const c = cgtCase();
    c.orders.push(serviceOrder('sr-fp', c.patient.id!, 'Oocyte cryopreservation', { reason: coding(ICD10, 'Z31.84', 'Encounter for fertility preservation procedure') }));
    const fp = answer(await send(c), 'ServiceRequest/sr-fp');
    assert.equal(fp.covered, 'not-covered');
  });

  it('with a CGT already planned (an active MedicationRequest in the record)', async () => {
    const c = cgtCase();
    const planned = c.orders.pop() as MedicationRequest;
    c.medicationRequests.push({ ...planned, status: 'active' });
    c.orders.push(serviceOrder('sr-fp', c.patient.id!, coding(CPT, '89258')));
    const fp = answer(await send(c), 'ServiceRequest/sr-fp');
    assert.equal(fp.covered, 'not-covered');
    assert.match(fp.line('Fertility preservation ordered with'), /planned \(active\)/);
  });

  it('fertility preservation without any CGT: not this policy\'s business (no assertion)', async () => {
    const c = cgtCase();
    c.orders = [serviceOrder('sr-fp', c.patient.id!, coding(CPT, '89258'))];
    assertSilent(await send(c), 'ServiceRequest/sr-fp');
  });

  it('the CGT card states that fertility preservation and NEMT to it are not covered', async () => {
    const a = await cgt(cgtCase());
    assert.match(a.detailText, /Fertility preservation services associated with cell and gene therapy administration, and non-emergency medical transportation to fertility preservation appointments, are not covered/);
  });
});

describe('WNC.CP.299 North Carolina Guidance: EPSDT', () => {
  it('a member under 21: limits may be exceeded with documentation, prior approval still required', async () => {
    const a = await cgt(cgtCase({ birthDate: birthDateYearsAgo(20) }));
    assert.match(a.detailText, /_EPSDT \(member under 21\): limits on scope, amount, duration, frequency, location of service and other criteria may be exceeded .* prior approval is still required/);
    assert.equal(a.paNeeded, 'auth-needed');
  });

  it('21 or older: no EPSDT note', async () => {
    const a = await cgt(cgtCase({ birthDate: birthDateYearsAgo(21) }));
    assert.doesNotMatch(a.detailText, /EPSDT \(member under 21\)/);
  });
});

describe('WNC.CP.299 scope: product line and effective date', () => {
  it('NC Medicaid (SOPT 2x) is judged; a commercial line (SOPT 5) gets no assertion', async () => {
    assert.equal((await cgt(cgtCase({ sopt: '2' }))).covered, 'covered');
    assertSilent(await send(cgtCase({ sopt: '5' })), ORDER);
  });

  it('before the 01/2025 version (text of 11/24 not in the source): no assertion; from 2025-01-01 judged', async () => {
    assertSilent(await send(cgtCase(), { on: '2024-12-31' }), ORDER);
    assert.equal((await cgt(cgtCase(), { on: '2025-01-01' })).policyVersion, 'WNC.CP.299 version 2025-01');
  });

  it('the card links to the policy page, which cites every section', async () => {
    const a = await cgt(cgtCase());
    assert.equal(a.card.links?.[0]?.url, 'http://crd.test/policies/wellcare-nc-wnc-cp-299-2025-01');
  });

  it('a LOINC-coded order is not a product: no assertion', async () => {
    const c = cgtCase();
    c.orders = [serviceOrder('sr-lab', c.patient.id!, coding(LOINC, '718-7', 'Hemoglobin'))];
    assertSilent(await send(c), 'ServiceRequest/sr-lab');
  });
});
