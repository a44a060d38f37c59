import type { CompiledExpression } from './fhirpath.ts';
import type { ProductCatalog, OrderProductFacts } from './products.ts';
import type { ClinicalRecord, DataCategory, OrderResource, ResourceIndex } from './record.ts';
import type { CompiledValueSet } from './terminology.ts';
import type { CheckOutcome, CriterionStatus, MatchedProduct, PolicyDocument, TreatmentSiteRegistry } from './types.ts';

/** A policy file after validation: value sets and FHIRPath expressions compiled. */
export interface CompiledPolicy {
  doc: PolicyDocument;
  valueSets: ReadonlyMap<string, CompiledValueSet>;
  expressions: ReadonlyMap<string, CompiledExpression>;
  /** The treatment-site registries its checks name (resolved and validated at load). */
  siteRegistries: ReadonlyMap<string, TreatmentSiteRegistry>;
}

/** Everything a check may read while judging one order under one policy. */
export interface EvaluationContext {
  policy: CompiledPolicy;
  record: ClinicalRecord;
  index: ResourceIndex;
  order: OrderResource;
  orderReference: string;
  facts: OrderProductFacts;
  product: MatchedProduct;
  catalog: ProductCatalog;
  /** The day the service is planned for (ages and timing are judged on it). */
  serviceDate: string;
  /** The day of the evaluation (look-back windows end here). */
  today: string;
}

export function valueSet(ctx: EvaluationContext, id: string): CompiledValueSet {
  const vs = ctx.policy.valueSets.get(id);
  // The loader verifies every referenced value set exists, so this is a programming error.
  if (!vs) throw new Error(`value set "${id}" is not defined for policy ${ctx.policy.doc.id}`);
  return vs;
}

export function siteRegistry(ctx: EvaluationContext, id: string): TreatmentSiteRegistry {
  const registry = ctx.policy.siteRegistries.get(id);
  // The loader verifies every named registry exists, so this is a programming error.
  if (!registry) throw new Error(`treatment-site registry "${id}" is not loaded for policy ${ctx.policy.doc.id}`);
  return registry;
}

export function expression(ctx: EvaluationContext, source: string): CompiledExpression {
  const compiled = ctx.policy.expressions.get(source);
  if (!compiled) throw new Error(`FHIRPath expression was not compiled at load: ${source}`);
  return compiled;
}

export function outcome(status: CriterionStatus, parts: Partial<Omit<CheckOutcome, 'status'>> = {}): CheckOutcome {
  return {
    status,
    evidence: parts.evidence ?? [],
    missing: parts.missing ?? [],
    notes: parts.notes ?? [],
    ...(parts.earliestDate ? { earliestDate: parts.earliestDate } : {}),
    ...(parts.infoNeeded && parts.infoNeeded.length > 0 ? { infoNeeded: parts.infoNeeded } : {}),
  };
}

/** The outcome when data a check needs could not be retrieved. */
export function unavailable(ctx: EvaluationContext, categories: DataCategory[]): CheckOutcome | undefined {
  const reasons = categories.filter((c) => ctx.record.unavailable[c] !== undefined);
  if (reasons.length === 0) return undefined;
  return outcome('unavailable', {
    notes: reasons.map((c) => `${CATEGORY_LABELS[c]} could not be retrieved from the EHR (${ctx.record.unavailable[c]})`),
  });
}

export const CATEGORY_LABELS: Record<DataCategory, string> = {
  patient: 'Patient demographics',
  coverage: 'Coverage',
  conditions: 'Conditions',
  observations: 'Observations',
  medicationRequests: 'Medication orders',
  medicationAdministrations: 'Medication administrations',
  medicationStatements: 'Medication statements',
  procedures: 'Procedures',
  serviceRequests: 'Service orders',
  practitionerRoles: 'Practitioner roles',
  encounter: 'Encounter',
};
