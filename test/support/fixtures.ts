import { randomUUID } from 'node:crypto';
import type {
  Bundle,
  Condition,
  Coverage,
  Encounter,
  FhirResource,
  Location,
  Medication,
  MedicationAdministration,
  MedicationRequest,
  MedicationStatement,
  Observation,
  Organization,
  Patient,
  Practitioner,
  PractitionerRole,
  Procedure,
  Quantity,
  Reference,
  ServiceRequest,
} from 'fhir/r4.js';

/**
 * FHIR data builders for tests and the benchmark. A ClinicalCase holds one patient's record and
 * draft orders; tests change a part of it and send it through the HTTP API as an EHR would
 * (prefetch in several shapes, or from a real FHIR server). Dates are relative to today because
 * the service judges ages and look-back windows against the real clock.
 */

export const LOINC = 'http://loinc.org';
export const ICD10 = 'http://hl7.org/fhir/sid/icd-10-cm';
export const SNOMED = 'http://snomed.info/sct';
export const RXNORM = 'http://www.nlm.nih.gov/research/umls/rxnorm';
export const NDC = 'http://hl7.org/fhir/sid/ndc';
export const HCPCS = 'https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets';
export const NUCC = 'http://nucc.org/provider-taxonomy';
export const SOPT = 'https://nahdo.org/sopt';
export const UCUM = 'http://unitsofmeasure.org';
export const PAYER_ID_SYSTEM = 'https://payers.example.org/id';
export const NAIC = 'urn:oid:2.16.840.1.113883.6.300';
export const LAB_CODES = 'http://lab.example.org/test-codes';
export const COVERAGE_INFORMATION_URL = 'http://hl7.org/fhir/us/davinci-crd/StructureDefinition/ext-coverage-information';

export function today(): string {
  return new Date().toISOString().slice(0, 10);
}

export function daysAgo(days: number): string {
  return new Date(Date.now() - days * 86_400_000).toISOString().slice(0, 10);
}

export function daysAhead(days: number): string {
  return daysAgo(-days);
}

/** A birth date `months` months before today (same day of month, clamped). */
export function birthDateMonthsAgo(months: number, extraDays = 0): string {
  const d = new Date();
  d.setUTCDate(1);
  d.setUTCMonth(d.getUTCMonth() - months);
  const wanted = new Date().getUTCDate();
  const last = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 0)).getUTCDate();
  d.setUTCDate(Math.min(wanted, last));
  return new Date(d.getTime() - extraDays * 86_400_000).toISOString().slice(0, 10);
}

export interface ClinicalCase {
  patient: Patient;
  coverage: Coverage;
  payer: Organization;
  practitioner: Practitioner;
  role: PractitionerRole;
  encounter: Encounter;
  conditions: Condition[];
  observations: Observation[];
  medicationRequests: MedicationRequest[];
  medicationAdministrations: MedicationAdministration[];
  medicationStatements: MedicationStatement[];
  procedures: Procedure[];
  serviceRequests: ServiceRequest[];
  medications: Medication[];
  /** The draft orders of the hook call. */
  orders: (MedicationRequest | ServiceRequest)[];
}

export function coding(system: string, code: string, display?: string) {
  return { system, code, ...(display ? { display } : {}) };
}

export function condition(id: string, patientId: string, code: { system: string; code: string; display?: string }, options: { onset?: string; clinicalStatus?: string; text?: string } = {}): Condition {
  return {
    resourceType: 'Condition',
    id,
    clinicalStatus: { coding: [coding('http://terminology.hl7.org/CodeSystem/condition-clinical', options.clinicalStatus ?? 'active')] },
    verificationStatus: { coding: [coding('http://terminology.hl7.org/CodeSystem/condition-ver-status', 'confirmed')] },
    category: [{ coding: [coding('http://terminology.hl7.org/CodeSystem/condition-category', 'problem-list-item')] }],
    code: { coding: [code], ...(options.text ? { text: options.text } : {}) },
    subject: { reference: `Patient/${patientId}` },
    ...(options.onset ? { onsetDateTime: options.onset } : {}),
  };
}

export function observation(
  id: string,
  patientId: string,
  code: { system: string; code: string; display?: string },
  value: Partial<Pick<Observation, 'valueQuantity' | 'valueString' | 'valueRatio' | 'valueCodeableConcept'>>,
  options: { date?: string; method?: string; category?: string; text?: string; component?: Observation['component'] } = {},
): Observation {
  return {
    resourceType: 'Observation',
    id,
    status: 'final',
    category: [{ coding: [coding('http://terminology.hl7.org/CodeSystem/observation-category', options.category ?? 'laboratory')] }],
    code: { coding: [code], ...(options.text ? { text: options.text } : {}) },
    subject: { reference: `Patient/${patientId}` },
    effectiveDateTime: options.date ?? daysAgo(5),
    ...value,
    ...(options.method ? { method: { text: options.method } } : {}),
    ...(options.component ? { component: options.component } : {}),
  };
}

export function quantity(value: number, unit: string, code = unit): Quantity {
  return { value, unit, system: UCUM, code };
}

/** SMN1 copy number in the Genomics Reporting pattern (69548-6 with gene and copy-number components). */
export function smn1Result(id: string, patientId: string, copies: number, date = daysAgo(200)): Observation {
  return observation(id, patientId, coding(LOINC, '69548-6', 'Genetic variant assessment'), { valueCodeableConcept: { coding: [coding(LOINC, 'LA9633-4', 'Present')] } }, {
    date,
    component: [
      { code: { coding: [coding(LOINC, '48018-6', 'Gene studied [ID]')] }, valueCodeableConcept: { coding: [coding('http://www.genenames.org/geneId', 'HGNC:11117', 'SMN1')] } },
      { code: { coding: [coding(LOINC, '82155-3', 'Genomic structural variant copy number')] }, valueQuantity: { value: copies, unit: 'copies', system: UCUM, code: '1' } },
    ],
  });
}

export function aav9Titer(id: string, patientId: string, value: Partial<Pick<Observation, 'valueQuantity' | 'valueString' | 'valueRatio'>>, options: { method?: string; date?: string; code?: { system: string; code: string; display?: string }; text?: string } = {}): Observation {
  return observation(id, patientId, options.code ?? coding(LAB_CODES, 'AAV9-AB', 'AAV9 total antibody titer'), value, {
    date: options.date ?? daysAgo(10),
    ...(options.method !== '' ? { method: options.method ?? 'ELISA' } : {}),
    ...(options.text ? { text: options.text } : {}),
  });
}

export function weight(id: string, patientId: string, value: number, unit: 'kg' | 'g' | '[lb_av]' = 'kg', date = daysAgo(3)): Observation {
  return observation(id, patientId, coding(LOINC, '29463-7', 'Body weight'), { valueQuantity: quantity(value, unit === '[lb_av]' ? 'lb' : unit, unit) }, { date, category: 'vital-signs' });
}

export function jeffersonPayer(): Organization {
  return {
    resourceType: 'Organization',
    id: 'org-jefferson',
    identifier: [{ system: PAYER_ID_SYSTEM, value: 'jefferson-health-plans' }],
    name: 'Jefferson Health Plans',
  };
}

export function coverageFor(patientId: string, payer: Organization, sopt: string | undefined, id = 'cov-1'): Coverage {
  return {
    resourceType: 'Coverage',
    id,
    status: 'active',
    ...(sopt ? { type: { coding: [coding(SOPT, sopt)] } } : {}),
    subscriberId: 'M0001',
    beneficiary: { reference: `Patient/${patientId}` },
    payor: [{ reference: `Organization/${payer.id}`, display: payer.name }],
    class: [{ type: { coding: [coding('http://terminology.hl7.org/CodeSystem/coverage-class', 'plan')] }, value: 'HC-1', name: 'HealthChoices' }],
  };
}

export function zolgensmaOrder(id: string, patientId: string, options: { kitNdc?: string; dose?: Quantity; requester?: string; codes?: 'all' | 'hcpcs' | 'ndc' | 'rxnorm' | 'name' } = {}): MedicationRequest {
  const codes = options.codes ?? 'all';
  const codings = [
    ...(codes === 'all' || codes === 'ndc' ? [coding(NDC, options.kitNdc ?? '71894-131-06', 'Zolgensma kit 8.1-8.5 kg')] : []),
    ...(codes === 'all' || codes === 'rxnorm' ? [coding(RXNORM, '2170226', 'onasemnogene abeparvovec')] : []),
    ...(codes === 'all' || codes === 'hcpcs' ? [coding(HCPCS, 'J3399', 'Injection, onasemnogene abeparvovec-xioi, per treatment')] : []),
  ];
  return {
    resourceType: 'MedicationRequest',
    id,
    status: 'draft',
    intent: 'order',
    medicationCodeableConcept: { coding: codings, text: codes === 'name' ? 'ZOLGENSMA suspension for IV infusion' : 'Zolgensma' },
    subject: { reference: `Patient/${patientId}` },
    authoredOn: today(),
    requester: { reference: options.requester ?? 'PractitionerRole/role-neuro' },
    ...(options.dose ? { dosageInstruction: [{ text: 'single IV infusion', doseAndRate: [{ doseQuantity: options.dose }] }] } : {}),
  };
}

/**
 * A 10-month-old with SMA type I, Jefferson Health Plans Medicaid, whose record meets all 11
 * DR.005.D criteria: ordered by a child neurologist, SMN1 0 copies, term birth, AAV9 1:25 by
 * ELISA, prednisolone ordered alongside, baseline labs, monitoring orders, no infection, 8.4 kg
 * with the 8.1–8.5 kg kit.
 */
export function zolgensmaCase(options: { patientId?: string; sopt?: string } = {}): ClinicalCase {
  const p = options.patientId ?? 'pat-sma-1';
  const payer = jeffersonPayer();
  const patient: Patient = {
    resourceType: 'Patient',
    id: p,
    identifier: [{ system: 'http://hospital.example.org/mrn', value: 'MRN-77341' }],
    name: [{ family: 'Testbaby', given: ['Avery'] }],
    gender: 'female',
    birthDate: birthDateMonthsAgo(10),
  };
  const practitioner: Practitioner = { resourceType: 'Practitioner', id: 'prac-neuro', name: [{ family: 'Okafor', given: ['Ngozi'] }] };
  const role: PractitionerRole = {
    resourceType: 'PractitionerRole',
    id: 'role-neuro',
    practitioner: { reference: 'Practitioner/prac-neuro' },
    specialty: [{ coding: [coding(NUCC, '2084N0402X', 'Neurology with Special Qualifications in Child Neurology')] }],
  };
  const encounter: Encounter = {
    resourceType: 'Encounter',
    id: 'enc-1',
    status: 'in-progress',
    class: coding('http://terminology.hl7.org/CodeSystem/v3-ActCode', 'AMB', 'ambulatory'),
    subject: { reference: `Patient/${p}` },
  };
  const labs = (id: string, code: string, display: string, value: number, unit: string) =>
    observation(id, p, coding(LOINC, code, display), { valueQuantity: quantity(value, unit) }, { date: daysAgo(6) });
  const order = zolgensmaOrder('mr-zolgensma', p);
  const steroid: MedicationRequest = {
    resourceType: 'MedicationRequest',
    id: 'mr-prednisolone',
    status: 'draft',
    intent: 'order',
    medicationCodeableConcept: { coding: [coding(RXNORM, '8638', 'prednisolone')], text: 'prednisolone 1 mg/kg/day' },
    subject: { reference: `Patient/${p}` },
    authoredOn: today(),
    requester: { reference: 'PractitionerRole/role-neuro' },
  };
  const monitoring = (id: string, code: string, display: string): ServiceRequest => ({
    resourceType: 'ServiceRequest',
    id,
    status: 'active',
    intent: 'order',
    code: { coding: [coding(LOINC, code, display)] },
    subject: { reference: `Patient/${p}` },
    occurrenceTiming: { repeat: { frequency: 1, period: 1, periodUnit: 'wk', boundsDuration: { value: 3, unit: 'mo', system: UCUM, code: 'mo' } } },
  });
  return {
    patient,
    coverage: coverageFor(p, payer, options.sopt ?? '21'),
    payer,
    practitioner,
    role,
    encounter,
    conditions: [
      condition('cond-sma', p, coding(ICD10, 'G12.0', 'Infantile spinal muscular atrophy, type I [Werdnig-Hoffman]'), { onset: daysAgo(150) }),
    ],
    observations: [
      observation('obs-ga', p, coding(LOINC, '76516-4', 'Gestational age at birth'), { valueQuantity: quantity(39, 'wk') }, { date: patient.birthDate!, category: 'exam' }),
      smn1Result('obs-smn1', p, 0),
      aav9Titer('obs-aav9', p, { valueString: '1:25' }),
      labs('obs-ast', '1920-8', 'AST', 42, 'U/L'),
      labs('obs-alt', '1742-6', 'ALT', 30, 'U/L'),
      labs('obs-tbili', '1975-2', 'Bilirubin total', 0.4, 'mg/dL'),
      labs('obs-pt', '5902-2', 'Prothrombin time', 12.1, 's'),
      labs('obs-plt', '777-3', 'Platelets', 320, '10*3/uL'),
      labs('obs-trop', '10839-9', 'Troponin I', 0.01, 'ng/mL'),
      weight('obs-weight', p, 8.4),
    ],
    medicationRequests: [],
    medicationAdministrations: [],
    medicationStatements: [],
    procedures: [],
    serviceRequests: [monitoring('sr-lft', '1742-6', 'ALT weekly'), monitoring('sr-plt', '777-3', 'Platelets weekly'), monitoring('sr-trop', '10839-9', 'Troponin I weekly')],
    medications: [],
    orders: [order, steroid],
  };
}

export function searchset(resources: FhirResource[], base = 'http://ehr.example.org/fhir'): Bundle {
  return {
    resourceType: 'Bundle',
    type: 'searchset',
    total: resources.length,
    entry: resources.map((r) => ({ fullUrl: `${base}/${r.resourceType}/${r.id}`, resource: r, search: { mode: 'match' as const } })),
  };
}

export type PrefetchKey =
  | 'patient'
  | 'coverage'
  | 'encounter'
  | 'userPractitionerRole'
  | 'userPractitionerRoles'
  | 'conditions'
  | 'observations'
  | 'labObservations'
  | 'medicationRequests'
  | 'medicationAdministrations'
  | 'medicationStatements'
  | 'procedures'
  | 'serviceRequests';

/** Every prefetch key of our discovery document, filled from the case as an EHR would. */
export function fullPrefetch(c: ClinicalCase): Record<PrefetchKey, FhirResource | null> {
  const coverageBundle = searchset([c.coverage]);
  coverageBundle.entry!.push({ fullUrl: `http://ehr.example.org/fhir/Organization/${c.payer.id}`, resource: c.payer, search: { mode: 'include' } });
  return {
    patient: c.patient,
    coverage: coverageBundle,
    encounter: c.encounter,
    userPractitionerRole: c.role,
    userPractitionerRoles: searchset([c.role]),
    conditions: searchset(c.conditions),
    observations: searchset(c.observations),
    labObservations: searchset(c.observations.filter((o) => o.category?.[0]?.coding?.[0]?.code === 'laboratory')),
    medicationRequests: searchset(c.medicationRequests),
    medicationAdministrations: searchset(c.medicationAdministrations),
    medicationStatements: searchset(c.medicationStatements),
    procedures: searchset(c.procedures),
    serviceRequests: searchset(c.serviceRequests),
  };
}

export interface RequestOptions {
  hook?: 'order-sign' | 'order-select';
  prefetch?: Partial<Record<string, FhirResource | null>> | 'full' | 'none';
  fhirServer?: string;
  accessToken?: string;
  selections?: string[];
  extension?: Record<string, unknown>;
  userId?: string;
}

export function hookRequest(c: ClinicalCase, options: RequestOptions = {}): Record<string, unknown> {
  const hook = options.hook ?? 'order-sign';
  const prefetch = options.prefetch === undefined || options.prefetch === 'full' ? fullPrefetch(c) : options.prefetch === 'none' ? undefined : options.prefetch;
  return {
    hook,
    hookInstance: randomUUID(),
    ...(options.fhirServer
      ? {
          fhirServer: options.fhirServer,
          fhirAuthorization: {
            access_token: options.accessToken ?? 'test-access-token-7f3a',
            token_type: 'Bearer',
            expires_in: 30,
            scope: 'patient/*.read',
            subject: 'gene-therapy-crd',
            patient: c.patient.id,
          },
        }
      : {}),
    context: {
      userId: options.userId ?? 'PractitionerRole/role-neuro',
      patientId: c.patient.id,
      encounterId: c.encounter.id,
      ...(hook === 'order-select' ? { selections: options.selections ?? [`MedicationRequest/${c.orders[0]!.id}`] } : {}),
      draftOrders: { resourceType: 'Bundle', type: 'collection', entry: c.orders.map((o) => ({ fullUrl: `urn:uuid:${o.id}`, resource: o })) },
    },
    ...(prefetch ? { prefetch } : {}),
    ...(options.extension ? { extension: options.extension } : {}),
  };
}

/** Every resource of the case, for seeding a FHIR server. */
export function allResources(c: ClinicalCase): FhirResource[] {
  return [
    c.patient,
    c.coverage,
    c.payer,
    c.practitioner,
    c.role,
    c.encounter,
    ...c.conditions,
    ...c.observations,
    ...c.medicationRequests,
    ...c.medicationAdministrations,
    ...c.medicationStatements,
    ...c.procedures,
    ...c.serviceRequests,
    ...c.medications,
  ];
}

// ---------------------------------------------------------------------------------------------
// Builders for the other seed policies (BCBSMS, WellCare NC, Cigna): payers, a patient with an
// empty record, product orders by any code, sites, and locations. Codes are those of
// ../shared/reference/payers-and-codes.md.
// ---------------------------------------------------------------------------------------------

export const CPT = 'http://www.ama-assn.org/go/cpt';
export const ICD10_PCS = 'http://www.cms.gov/Medicare/Coding/ICD10';
export const NPI = 'http://hl7.org/fhir/sid/us-npi';
export const V3_ACT_CODE = 'http://terminology.hl7.org/CodeSystem/v3-ActCode';
export const V3_ROLE_CODE = 'http://terminology.hl7.org/CodeSystem/v3-RoleCode';
export const COVERAGE_CLASS = 'http://terminology.hl7.org/CodeSystem/coverage-class';
/** The example Qualified Treatment Center of the WellCare NC registry (payers-and-codes.md). */
export const QTC_NPI = '1999990017';

/** A birth date `years` years before a day (default today), minus `extraDays`. */
export function birthDateYearsAgo(years: number, extraDays = 0, asOf = today()): string {
  const [y, m, d] = asOf.split('-').map(Number) as [number, number, number];
  const last = new Date(Date.UTC(y - years, m, 0)).getUTCDate();
  const birth = new Date(Date.UTC(y - years, m - 1, Math.min(d, last)));
  return new Date(birth.getTime() - extraDays * 86_400_000).toISOString().slice(0, 10);
}

export function bcbsmsPayer(): Organization {
  return { resourceType: 'Organization', id: 'org-bcbsms', identifier: [{ system: NAIC, value: '60111' }], name: 'Blue Cross & Blue Shield of Mississippi' };
}

export function wellcarePayer(): Organization {
  return { resourceType: 'Organization', id: 'org-wellcare-nc', identifier: [{ system: PAYER_ID_SYSTEM, value: 'wellcare-nc' }], name: 'WellCare of North Carolina' };
}

export function cignaPayer(): Organization {
  return { resourceType: 'Organization', id: 'org-cigna', identifier: [{ system: PAYER_ID_SYSTEM, value: 'cigna' }], name: 'Cigna' };
}

/** A facility (Organization) with an NPI, or none. */
export function facility(id: string, name: string, npi?: string): Organization {
  return { resourceType: 'Organization', id, name, ...(npi ? { identifier: [{ system: NPI, value: npi }] } : {}) };
}

/** A Location of the given v3 RoleCode types (e.g. ICU), optionally with an NPI. */
export function location(id: string, name: string, types: string[], npi?: string): Location {
  return {
    resourceType: 'Location',
    id,
    name,
    status: 'active',
    type: types.map((t) => ({ coding: [coding(V3_ROLE_CODE, t)] })),
    ...(npi ? { identifier: [{ system: NPI, value: npi }] } : {}),
  };
}

export interface PatientCaseOptions {
  payer: Organization;
  patientId?: string;
  birthDate?: string;
  gender?: 'male' | 'female';
  /** Coverage.type SOPT code (omit for none). */
  sopt?: string;
  /** Coverage.class entries, e.g. the BCBSMS State Health Plan group. */
  classes?: NonNullable<Coverage['class']>;
  /** The ordering clinician's specialty (NUCC) and organization. */
  specialty?: { code: string; display: string };
  roleOrganization?: Reference;
  /** Encounter class (v3 ActCode) and locations. */
  encounterClass?: string;
  encounterLocations?: Location[];
  serviceProvider?: Reference;
}

/** A patient with an empty record and no orders: tests add conditions, history and orders. */
export function patientCase(options: PatientCaseOptions): ClinicalCase {
  const p = options.patientId ?? 'pat-1';
  const patient: Patient = {
    resourceType: 'Patient',
    id: p,
    name: [{ family: 'Testpatient', given: ['Jordan'] }],
    gender: options.gender ?? 'male',
    birthDate: options.birthDate ?? birthDateYearsAgo(30),
  };
  const practitioner: Practitioner = { resourceType: 'Practitioner', id: 'prac-1', name: [{ family: 'Adeyemi', given: ['Sam'] }] };
  const specialty = options.specialty ?? { code: '207RH0000X', display: 'Hematology' };
  const role: PractitionerRole = {
    resourceType: 'PractitionerRole',
    id: 'role-clinician',
    practitioner: { reference: 'Practitioner/prac-1' },
    specialty: [{ coding: [coding(NUCC, specialty.code, specialty.display)] }],
    ...(options.roleOrganization ? { organization: options.roleOrganization } : {}),
  };
  const locations = options.encounterLocations ?? [];
  const encounter: Encounter = {
    resourceType: 'Encounter',
    id: 'enc-1',
    status: 'in-progress',
    class: coding(V3_ACT_CODE, options.encounterClass ?? 'AMB'),
    subject: { reference: `Patient/${p}` },
    ...(locations.length > 0 ? { contained: locations, location: locations.map((l) => ({ location: { reference: `#${l.id}` } })) } : {}),
    ...(options.serviceProvider ? { serviceProvider: options.serviceProvider } : {}),
  };
  const coverage = coverageFor(p, options.payer, options.sopt);
  coverage.class = options.classes ?? [{ type: { coding: [coding(COVERAGE_CLASS, 'plan')] }, value: 'PLAN-1' }];
  return {
    patient,
    coverage,
    payer: options.payer,
    practitioner,
    role,
    encounter,
    conditions: [],
    observations: [],
    medicationRequests: [],
    medicationAdministrations: [],
    medicationStatements: [],
    procedures: [],
    serviceRequests: [],
    medications: [],
    orders: [],
  };
}

export type CodeRef = { system: string; code: string; display?: string };

export interface ProductOrderOptions {
  /** Codings of the product (HCPCS, NDC, RxNorm; any mix) and the concept's text. */
  codes?: CodeRef[];
  text?: string;
  /** Order reason: a coding, or free text only. */
  reason?: CodeRef | string;
  performer?: Reference;
  dispensePerformer?: Reference;
  requester?: string;
  /** Planned start of the therapy (MedicationRequest.dispenseRequest.validityPeriod.start). */
  validFrom?: string;
  quantity?: Quantity;
  supplyDuration?: { value: number; unit: string };
  dosage?: MedicationRequest['dosageInstruction'];
  contained?: FhirResource[];
  status?: MedicationRequest['status'];
}

/** A MedicationRequest for a product identified by whatever codes and text the test gives. */
export function medicationOrder(id: string, patientId: string, options: ProductOrderOptions = {}): MedicationRequest {
  const reason = options.reason;
  const dispense = {
    ...(options.validFrom ? { validityPeriod: { start: options.validFrom } } : {}),
    ...(options.dispensePerformer ? { performer: options.dispensePerformer } : {}),
    ...(options.quantity ? { quantity: options.quantity } : {}),
    ...(options.supplyDuration ? { expectedSupplyDuration: { value: options.supplyDuration.value, unit: options.supplyDuration.unit, system: UCUM, code: options.supplyDuration.unit } } : {}),
  };
  return {
    resourceType: 'MedicationRequest',
    id,
    status: options.status ?? 'draft',
    intent: 'order',
    ...(options.contained ? { contained: options.contained as MedicationRequest['contained'] } : {}),
    medicationCodeableConcept: { coding: options.codes ?? [], ...(options.text ? { text: options.text } : {}) },
    subject: { reference: `Patient/${patientId}` },
    authoredOn: today(),
    requester: { reference: options.requester ?? 'PractitionerRole/role-clinician' },
    ...(options.performer ? { performer: options.performer } : {}),
    ...(reason ? { reasonCode: [typeof reason === 'string' ? { text: reason } : { coding: [reason] }] } : {}),
    ...(options.dosage ? { dosageInstruction: options.dosage } : {}),
    ...(Object.keys(dispense).length > 0 ? { dispenseRequest: dispense } : {}),
  };
}

/** A ServiceRequest (procedure, lab or service) with a code and optional reason, performer and location. */
export function serviceOrder(
  id: string,
  patientId: string,
  code: CodeRef | string,
  options: { reason?: CodeRef | string; performer?: Reference; locationReference?: Reference; status?: ServiceRequest['status'] } = {},
): ServiceRequest {
  const reason = options.reason;
  return {
    resourceType: 'ServiceRequest',
    id,
    status: options.status ?? 'draft',
    intent: 'order',
    code: typeof code === 'string' ? { text: code } : { coding: [code] },
    subject: { reference: `Patient/${patientId}` },
    authoredOn: today(),
    requester: { reference: 'PractitionerRole/role-clinician' },
    ...(options.performer ? { performer: [options.performer] } : {}),
    ...(options.locationReference ? { locationReference: [options.locationReference] } : {}),
    ...(reason ? { reasonCode: [typeof reason === 'string' ? { text: reason } : { coding: [reason] }] } : {}),
  };
}

/** A completed administration of a product (for "no repeat treatment" checks). */
export function pastAdministration(id: string, patientId: string, codes: CodeRef[], text: string, date = daysAgo(400)): MedicationAdministration {
  return {
    resourceType: 'MedicationAdministration',
    id,
    status: 'completed',
    medicationCodeableConcept: { coding: codes, text },
    subject: { reference: `Patient/${patientId}` },
    effectiveDateTime: date,
  };
}

export function pastStatement(id: string, patientId: string, codes: CodeRef[], text: string, date = daysAgo(700)): MedicationStatement {
  return {
    resourceType: 'MedicationStatement',
    id,
    status: 'completed',
    medicationCodeableConcept: { coding: codes, text },
    subject: { reference: `Patient/${patientId}` },
    effectiveDateTime: date,
  };
}

export function pastProcedure(id: string, patientId: string, code: CodeRef, date = daysAgo(500)): Procedure {
  return {
    resourceType: 'Procedure',
    id,
    status: 'completed',
    code: { coding: [code] },
    subject: { reference: `Patient/${patientId}` },
    performedDateTime: date,
  };
}
