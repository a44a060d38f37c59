import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Condition, FhirResource, MedicationRequest, Observation, Quantity } from 'fhir/r4.js';
import {
  coding,
  condition,
  daysAgo,
  fullPrefetch,
  hookRequest,
  ICD10,
  LOINC,
  observation,
  quantity,
  RXNORM,
  searchset,
  zolgensmaCase,
  type ClinicalCase,
  type PrefetchKey,
} from '../test/support/fixtures.ts';

const DISCOVERY = path.resolve(import.meta.dirname, '..', 'cds-services.json');

/**
 * The benchmark's request: the test fixtures' full-prefetch Zolgensma case (all 11 DR.005.D
 * criteria met) plus the history a real EHR prefetch carries — 60 routine observations (growth at
 * six well-child visits, three CBC and three metabolic panels) and 15 unrelated problems and
 * medications. None of the additions changes the decision: they are older than the baseline labs
 * and weight, outside the policy's value sets, or resolved; run.ts checks that the answer with
 * history has the same coverage information as the answer without.
 */

const ENC = (n: number) => ({ reference: `Encounter/enc-visit-${n}` });
const LAB_PERFORMER = [{ reference: 'Organization/org-lab' }];

function interpretation(code: 'L' | 'H') {
  const display = code === 'L' ? 'Low' : 'High';
  return [{ coding: [coding('http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation', code, display)] }];
}

function rich(
  id: string,
  patientId: string,
  code: { system: string; code: string; display?: string },
  value: Quantity,
  date: string,
  visit: number,
  category: 'vital-signs' | 'laboratory',
  range?: [number, number],
): Observation {
  const base = observation(id, patientId, code, { valueQuantity: value }, { date, category });
  const low = range?.[0];
  const high = range?.[1];
  return {
    ...base,
    encounter: ENC(visit),
    ...(category === 'laboratory' ? { issued: `${date}T10:15:00Z`, performer: LAB_PERFORMER } : {}),
    ...(low !== undefined && high !== undefined && value.value !== undefined
      ? {
          // Like most lab systems, only abnormal results carry an interpretation flag.
          ...(value.value < low || value.value > high ? { interpretation: interpretation(value.value < low ? 'L' : 'H') } : {}),
          referenceRange: [{ low: { value: low, unit: value.unit }, high: { value: high, unit: value.unit } }],
        }
      : {}),
  };
}

const VISITS_DAYS_AGO = [290, 240, 180, 120, 60, 30];
const PANEL_DAYS_AGO = [270, 150, 45];

type Row = [code: string, display: string, value: Quantity, range: [number, number]];

/**
 * 60 observations: weight and length at six well-child visits (12), and three CBC and three basic
 * metabolic panels (48). All are older than the fixture's baseline labs and weight.
 */
function routineObservations(patientId: string): Observation[] {
  const out: Observation[] = [];
  VISITS_DAYS_AGO.forEach((days, i) => {
    const date = daysAgo(days);
    const ageMonths = 10 - days / 30;
    const growth: Row[] = [
      ['29463-7', 'Body weight', quantity(Math.round((3.4 + ageMonths * 0.55) * 100) / 100, 'kg'), [3, 12]],
      ['8302-2', 'Body height', quantity(Math.round(50 + ageMonths * 2.4), 'cm'), [45, 80]],
    ];
    growth.forEach(([code, display, value], j) => out.push(rich(`obs-growth-${i}-${j}`, patientId, coding(LOINC, code, display), value, date, i, 'vital-signs')));
  });
  PANEL_DAYS_AGO.forEach((days, i) => {
    const date = daysAgo(days);
    const panel: Row[] = [
      ['6690-2', 'WBC count', quantity(9.8 + i * 0.3, '10*3/uL'), [6, 17.5]],
      ['789-8', 'RBC count', quantity(4.1, '10*6/uL'), [3.7, 5.3]],
      ['718-7', 'Hemoglobin', quantity(10.2 + i * 0.5, 'g/dL'), [10.5, 13.5]],
      ['4544-3', 'Hematocrit', quantity(33.5, '%'), [33, 39]],
      ['787-2', 'MCV', quantity(74 + i * 2, 'fL'), [70, 86]],
      ['788-0', 'RDW', quantity(13.4, '%'), [11.5, 14.5]],
      ['751-8', 'Neutrophils, absolute', quantity(2.9, '10*3/uL'), [1, 8.5]],
      ['777-3', 'Platelet count', quantity(300 + i * 15, '10*3/uL'), [150, 450]],
      ['2951-2', 'Sodium', quantity(138, 'mmol/L'), [134, 144]],
      ['2823-3', 'Potassium', quantity(4.6, 'mmol/L'), [3.5, 5.5]],
      ['2075-0', 'Chloride', quantity(104, 'mmol/L'), [98, 110]],
      ['2028-9', 'CO2, total', quantity(22, 'mmol/L'), [18, 27]],
      ['3094-0', 'BUN', quantity(8, 'mg/dL'), [5, 18]],
      ['2160-0', 'Creatinine', quantity(0.22, 'mg/dL'), [0.1, 0.4]],
      ['2345-7', 'Glucose', quantity(86, 'mg/dL'), [60, 100]],
      ['17861-6', 'Calcium', quantity(10.1, 'mg/dL'), [9, 11]],
    ];
    panel.forEach(([code, display, value, range], j) =>
      out.push(rich(`obs-lab-${i}-${j}`, patientId, coding(LOINC, code, display), value, date, VISITS_DAYS_AGO.length + i, 'laboratory', range)),
    );
  });
  return out;
}

/** 8 unrelated problems (one a bronchiolitis resolved months ago) and 7 outpatient medications. */
function unrelatedHistory(patientId: string): { conditions: Condition[]; medicationRequests: MedicationRequest[] } {
  const problems: [string, string, number, string][] = [
    ['K21.9', 'Gastro-esophageal reflux disease without esophagitis', 250, 'active'],
    ['L21.0', 'Seborrhea capitis', 280, 'resolved'],
    ['L22', 'Diaper dermatitis', 200, 'resolved'],
    ['P59.9', 'Neonatal jaundice, unspecified', 298, 'resolved'],
    ['E55.9', 'Vitamin D deficiency, unspecified', 160, 'active'],
    ['D50.9', 'Iron deficiency anemia, unspecified', 140, 'active'],
    ['M43.6', 'Torticollis', 220, 'active'],
    ['J21.9', 'Acute bronchiolitis, unspecified', 190, 'resolved'],
  ];
  const conditions = problems.map(([code, display, days, status], i) =>
    condition(`cond-hist-${i}`, patientId, coding(ICD10, code, display), { onset: daysAgo(days), clinicalStatus: status, text: display }),
  );
  const meds: [string, string, string, 'active' | 'completed' | 'stopped'][] = [
    ['2418', 'cholecalciferol', 'Vitamin D3 400 IU/mL oral drops, 1 mL daily', 'active'],
    ['4450', 'ferrous sulfate', 'Ferrous sulfate 15 mg/mL oral drops, 3 mg/kg/day', 'active'],
    ['161', 'acetaminophen', 'Acetaminophen 160 mg/5 mL, 15 mg/kg every 6 h as needed', 'active'],
    ['9796', 'simethicone', 'Simethicone 20 mg oral drops as needed', 'stopped'],
    ['4278', 'famotidine', 'Famotidine 40 mg/5 mL, 0.5 mg/kg twice daily', 'active'],
    ['7597', 'nystatin', 'Nystatin 100,000 units/mL oral suspension, 1 mL four times daily', 'completed'],
    ['723', 'amoxicillin', 'Amoxicillin 250 mg/5 mL, 45 mg/kg/day divided twice daily', 'completed'],
  ];
  const medicationRequests = meds.map(([code, display, text, status], i): MedicationRequest => ({
    resourceType: 'MedicationRequest',
    id: `mr-hist-${i}`,
    status,
    intent: 'order',
    medicationCodeableConcept: { coding: [coding(RXNORM, code, display)], text },
    subject: { reference: `Patient/${patientId}` },
    encounter: ENC(i % VISITS_DAYS_AGO.length),
    authoredOn: daysAgo(60 + i * 25),
    requester: { reference: 'Practitioner/prac-pcp', display: 'Dr. Lin, Pediatrics' },
    dosageInstruction: [{ text, timing: { code: { text: status === 'active' ? 'daily' : 'as directed' } } }],
    dispenseRequest: { numberOfRepeatsAllowed: 3, expectedSupplyDuration: { value: 30, unit: 'days', system: 'http://unitsofmeasure.org', code: 'd' } },
  }));
  return { conditions, medicationRequests };
}

/** The fixture case with a realistic amount of history. */
export function benchCase(): ClinicalCase {
  const c = zolgensmaCase();
  const patientId = c.patient.id!;
  const history = unrelatedHistory(patientId);
  return {
    ...c,
    observations: [...c.observations, ...routineObservations(patientId)],
    conditions: [...c.conditions, ...history.conditions],
    medicationRequests: [...c.medicationRequests, ...history.medicationRequests],
  };
}

/** `system|code` pairs of the discovery document's `observations` prefetch query. */
function observationTemplateCodes(): Set<string> {
  const discovery = JSON.parse(readFileSync(DISCOVERY, 'utf8')) as { services: { prefetch?: Record<string, string> }[] };
  const template = discovery.services.find((s) => s.prefetch?.observations)?.prefetch?.observations;
  if (!template) throw new Error(`${DISCOVERY} has no observations prefetch template`);
  const codes = new URLSearchParams(template.slice(template.indexOf('?') + 1)).get('code') ?? '';
  return new Set(codes.split(',').filter((s) => s.length > 0));
}

function hasCode(o: Observation, codes: Set<string>): boolean {
  return (o.code.coding ?? []).some((cd) => codes.has(`${cd.system}|${cd.code}`));
}

/**
 * The prefetch an EHR fills from our templates: `observations` holds only the codes its query
 * names (so weight, length and platelet history, not the rest of the CBC), `labObservations` every
 * laboratory result, newest first, at most 100. Everything else is the fixtures' full prefetch.
 */
export function benchPrefetch(c: ClinicalCase): Record<PrefetchKey, FhirResource | null> {
  const codes = observationTemplateCodes();
  const byDateDesc = (a: Observation, b: Observation) => (b.effectiveDateTime ?? '').localeCompare(a.effectiveDateTime ?? '');
  const labs = c.observations.filter((o) => o.category?.some((cat) => cat.coding?.some((cd) => cd.code === 'laboratory'))).sort(byDateDesc).slice(0, 100);
  return {
    ...fullPrefetch(c),
    observations: searchset(c.observations.filter((o) => hasCode(o, codes))),
    labObservations: searchset(labs),
  };
}

export const HOOK_INSTANCE_PLACEHOLDER = '@@HOOK_INSTANCE@@';

/**
 * The JSON body of one hook call, with a placeholder for hookInstance: run.ts puts a fresh UUID
 * there for every request, as every real invocation has its own.
 */
export function benchBody(hook: 'order-sign' | 'order-select', c: ClinicalCase = benchCase()): string {
  return JSON.stringify({ ...hookRequest(c, { hook, prefetch: benchPrefetch(c) }), hookInstance: HOOK_INSTANCE_PLACEHOLDER });
}

/** The plain fixture request, for checking that the added history leaves the decision unchanged. */
export function plainBody(hook: 'order-sign' | 'order-select'): string {
  return JSON.stringify(hookRequest(zolgensmaCase(), { hook }));
}
