import type {
  CodeableConcept,
  FhirResource,
  Medication,
  MedicationRequest,
  PractitionerRole,
  Quantity,
  Reference,
  ServiceRequest,
} from 'fhir/r4.js';
import { toDay } from '../dates.ts';
import { objectsOf } from '../fhir-arrays.ts';
import { outcome, unavailable, valueSet, type EvaluationContext } from '../context.ts';
import { medicationFacts } from '../products.ts';
import { referenceKey, referenceOf, type DataCategory } from '../record.ts';
import { describeCoding, normaliseNdc, type CompiledValueSet } from '../terminology.ts';
import { convertUnit, quantityUnit } from '../ucum.ts';
import type {
  CheckOutcome,
  DoseKit,
  DosePerKgCheck,
  Evidence,
  MedicationPlannedCheck,
  OrderPlannedCheck,
  PrescriberSpecialtyCheck,
  ProductDefinition,
  ProductHistoryAbsentCheck,
} from '../types.ts';
import { conditionOnset, describeConcept, matchingConditions } from './conditions.ts';
import { findObservations, observationDate } from './observations.ts';

// ---------------------------------------------------------------------------------------------
// Prescriber specialty
// ---------------------------------------------------------------------------------------------

/** PractitionerRoles of a referenced clinician: the role itself, or the roles of a Practitioner. */
function rolesOf(ctx: EvaluationContext, reference: Reference | undefined): PractitionerRole[] {
  const resolved = ctx.index.resolve(reference, ctx.order);
  if (resolved?.resourceType === 'PractitionerRole') return [resolved];
  const practitionerKey = resolved?.resourceType === 'Practitioner' ? referenceOf(resolved) : referenceKey(reference?.reference);
  if (!practitionerKey?.startsWith('Practitioner/')) return [];
  return ctx.record.practitionerRoles.filter((r) => referenceKey(r.practitioner?.reference) === practitionerKey);
}

function specialtyText(vs: CompiledValueSet, specialty: CodeableConcept): string {
  const hit = vs.match(specialty);
  if (hit?.coding) return describeCoding(hit.coding);
  const first = objectsOf(specialty.coding)[0];
  return [specialty.text, first?.display, first?.code].find((v): v is string => typeof v === 'string' && v !== '') ?? 'unnamed specialty';
}

export function prescriberSpecialty(check: PrescriberSpecialtyCheck, ctx: EvaluationContext): CheckOutcome {
  const vs = valueSet(ctx, check.valueSet);
  const order = ctx.order as { requester?: Reference; performer?: Reference | Reference[] };
  const performers = Array.isArray(order.performer) ? order.performer : order.performer ? [order.performer] : [];
  const candidates: { role: PractitionerRole; relation: string }[] = [
    ...rolesOf(ctx, order.requester).map((role) => ({ role, relation: 'Ordering clinician' })),
    ...performers.flatMap((p) => rolesOf(ctx, p).map((role) => ({ role, relation: 'Consulting/performing clinician' }))),
  ];
  for (const { role, relation } of candidates) {
    const specialty = objectsOf(role.specialty).find((s) => vs.matches(s));
    if (specialty) {
      return outcome('met', { evidence: [{ reference: referenceOf(role), text: `${relation}: ${specialtyText(vs, specialty)}` }] });
    }
  }
  const missing = [{ text: check.missing ?? `Document that a ${vs.title} prescribed or was consulted`, category: check.docCategory ?? ('clinical' as const) }];
  if (candidates.length === 0) {
    const gap = order.requester ? unavailable(ctx, ['practitionerRoles']) : undefined;
    if (gap) return gap;
    return outcome('missing', { notes: ["The ordering clinician's specialty is not in the record"], missing });
  }
  const stated = candidates
    .flatMap(({ role }) => objectsOf(role.specialty))
    .map((s) => specialtyText(vs, s))
    .join(', ');
  return outcome('missing', {
    evidence: candidates.slice(0, 2).map(({ role, relation }) => ({ reference: referenceOf(role), text: `${relation}: ${stated || 'no specialty recorded'}` })),
    notes: [`No ${vs.title} among the ordering clinicians; a documented consultation also satisfies the criterion`],
    missing,
  });
}

// ---------------------------------------------------------------------------------------------
// Plans: medications and orders that must accompany the therapy
// ---------------------------------------------------------------------------------------------

function medicationConcept(ctx: EvaluationContext, request: MedicationRequest): CodeableConcept | undefined {
  if (request.medicationCodeableConcept) return request.medicationCodeableConcept;
  const resolved = ctx.index.resolve(request.medicationReference, request as FhirResource);
  return resolved?.resourceType === 'Medication' ? (resolved as Medication).code : undefined;
}

function otherDraftOrders<T extends 'MedicationRequest' | 'ServiceRequest'>(
  ctx: EvaluationContext,
  type: T,
): Extract<FhirResource, { resourceType: T }>[] {
  return ctx.record.draftOrders.filter(
    (o): o is Extract<FhirResource, { resourceType: T }> & typeof o => o.resourceType === type && o !== ctx.order,
  ) as Extract<FhirResource, { resourceType: T }>[];
}

export function medicationPlanned(check: MedicationPlannedCheck, ctx: EvaluationContext): CheckOutcome {
  const vs = valueSet(ctx, check.valueSet);
  const statuses = new Set(check.statuses);
  const drafts = otherDraftOrders(ctx, 'MedicationRequest');
  const recorded = ctx.record.medicationRequests.filter((r) => statuses.has(r.status) && referenceOf(r) !== ctx.orderReference);
  for (const [request, origin] of [...drafts.map((r) => [r, 'draft order in this session'] as const), ...recorded.map((r) => [r, r.status] as const)]) {
    const concept = medicationConcept(ctx, request);
    if (concept && vs.matches(concept)) {
      return outcome('met', { evidence: [{ reference: referenceOf(request), text: `${describeConcept(vs, concept)} (${origin})` }] });
    }
  }
  const gap = unavailable(ctx, ['medicationRequests']);
  if (gap) return gap;
  return outcome('missing', {
    notes: [`No ${vs.title} order found`],
    missing: [{ text: check.missing ?? `Order ${vs.title}`, category: check.docCategory ?? 'clinical' }],
  });
}

export function orderPlanned(check: OrderPlannedCheck, ctx: EvaluationContext): CheckOutcome {
  const vs = valueSet(ctx, check.valueSet);
  const statuses = new Set(check.statuses);
  const candidates: [ServiceRequest, string][] = [
    ...otherDraftOrders(ctx, 'ServiceRequest').map((r) => [r, 'draft order in this session'] as [ServiceRequest, string]),
    ...ctx.record.serviceRequests.filter((r) => statuses.has(r.status)).map((r) => [r, r.status] as [ServiceRequest, string]),
  ];
  const found = candidates.filter(([r]) => vs.matches(r.code));
  if (found.length > 0) {
    return outcome('met', {
      evidence: found.slice(0, 4).map(([r, origin]) => ({ reference: referenceOf(r), text: `${describeConcept(vs, r.code)} (${origin})` })),
    });
  }
  const gap = unavailable(ctx, ['serviceRequests']);
  if (gap) return gap;
  return outcome('missing', {
    notes: [`No ${vs.title} order found`],
    missing: [{ text: check.missing ?? `Order ${vs.title}`, category: check.docCategory ?? 'clinical' }],
  });
}

// ---------------------------------------------------------------------------------------------
// History of the product (one-time therapies)
// ---------------------------------------------------------------------------------------------

function productMatches(ctx: EvaluationContext, scope: ProductHistoryAbsentCheck['products'], product: ProductDefinition | null): boolean {
  if (!product) return false;
  if (scope === 'same') return product.id === ctx.product.product?.id;
  return product.categories.includes(scope.category);
}

function describeScope(ctx: EvaluationContext, check: ProductHistoryAbsentCheck): string {
  const scope = check.products;
  if (scope === 'same') return ctx.product.product?.name ?? 'this product';
  return check.label ? `a ${check.label}` : `a product of category ${scope.category}`;
}

export function productHistoryAbsent(check: ProductHistoryAbsentCheck, ctx: EvaluationContext): CheckOutcome {
  const evidence: Evidence[] = [];
  const identify = (concept: CodeableConcept | undefined, reference: Reference | undefined, from: FhirResource) =>
    ctx.catalog.identify(medicationFacts(concept, reference, from, ctx.index))?.product ?? null;

  for (const admin of ctx.record.medicationAdministrations) {
    if (admin.status === 'entered-in-error' || admin.status === 'not-done') continue;
    const product = identify(admin.medicationCodeableConcept, admin.medicationReference, admin);
    if (productMatches(ctx, check.products, product)) {
      const day = toDay(admin.effectiveDateTime ?? admin.effectivePeriod?.start);
      evidence.push({ reference: referenceOf(admin), text: `${product!.name} administered${day ? ` on ${day}` : ''}` });
    }
  }
  for (const statement of ctx.record.medicationStatements) {
    if (!['active', 'completed'].includes(statement.status)) continue;
    const product = identify(statement.medicationCodeableConcept, statement.medicationReference, statement);
    if (productMatches(ctx, check.products, product)) {
      const day = toDay(statement.effectiveDateTime ?? statement.effectivePeriod?.start ?? statement.dateAsserted);
      evidence.push({ reference: referenceOf(statement), text: `${product!.name} received${day ? ` (${day})` : ''}` });
    }
  }
  for (const request of ctx.record.medicationRequests) {
    if (request.status !== 'completed' || referenceOf(request) === ctx.orderReference) continue;
    const product = identify(request.medicationCodeableConcept, request.medicationReference, request);
    if (productMatches(ctx, check.products, product)) {
      evidence.push({ reference: referenceOf(request), text: `${product!.name} order completed${request.authoredOn ? ` (${toDay(request.authoredOn)})` : ''}` });
    }
  }
  const procedureSet = check.procedureValueSet ? valueSet(ctx, check.procedureValueSet) : undefined;
  for (const procedure of ctx.record.procedures) {
    if (procedure.status !== 'completed') continue;
    const day = toDay(procedure.performedDateTime ?? procedure.performedPeriod?.start);
    if (procedureSet?.matches(procedure.code)) {
      evidence.push({ reference: referenceOf(procedure), text: `${describeConcept(procedureSet, procedure.code)}${day ? ` on ${day}` : ''}` });
      continue;
    }
    // A procedure coded with the product itself (HCPCS, NDC or its name) records an administration too.
    const product = identify(procedure.code, undefined, procedure);
    if (productMatches(ctx, check.products, product)) {
      evidence.push({ reference: referenceOf(procedure), text: `${product!.name} administration procedure${day ? ` on ${day}` : ''}` });
    }
  }
  if (check.historyConditionValueSet) {
    const vs = valueSet(ctx, check.historyConditionValueSet);
    for (const condition of matchingConditions(ctx, vs)) {
      const onset = conditionOnset(condition);
      evidence.push({ reference: referenceOf(condition), text: `${describeConcept(vs, condition.code)}${onset ? ` (${onset})` : ''}` });
    }
  }

  if (evidence.length > 0) {
    return outcome(check.whenPresent, { evidence, notes: [`Prior treatment with ${describeScope(ctx, check)} is recorded`] });
  }
  // A Procedure coded with the product records an administration too, so procedures always count.
  const sources: DataCategory[] = ['medicationAdministrations', 'medicationStatements', 'medicationRequests', 'procedures'];
  if (check.historyConditionValueSet) sources.push('conditions');
  const gap = unavailable(ctx, sources);
  if (gap) return gap;
  return outcome('met', { evidence: [{ text: `No prior treatment with ${describeScope(ctx, check)} recorded` }] });
}

// ---------------------------------------------------------------------------------------------
// Dose per kilogram of body weight
// ---------------------------------------------------------------------------------------------

function latestWeightKg(check: DosePerKgCheck, ctx: EvaluationContext): { kg: number; evidence: Evidence } | undefined {
  const weights = findObservations(ctx, valueSet(ctx, check.weightValueSet), {
    ...(check.weightWithinDays !== undefined ? { withinDays: check.weightWithinDays } : {}),
  });
  for (const observation of weights) {
    const q = observation.valueQuantity;
    if (!q || typeof q.value !== 'number') continue;
    const unit = quantityUnit(q);
    const kg = unit ? convertUnit(q.value, unit, 'kg') : undefined;
    if (kg === undefined || !(kg > 0)) continue;
    const day = observationDate(observation);
    const shown = unit === 'kg' ? `${q.value} kg` : `${q.value} ${q.unit ?? unit} (${round(kg, 2)} kg)`;
    return { kg, evidence: { reference: referenceOf(observation), text: `Weight ${shown}${day ? ` on ${day}` : ''}` } };
  }
  return undefined;
}

function orderDoseQuantity(ctx: EvaluationContext): Quantity | undefined {
  const order = ctx.order;
  if (order.resourceType === 'MedicationRequest') {
    for (const dosage of objectsOf(order.dosageInstruction)) {
      for (const dr of objectsOf(dosage.doseAndRate)) {
        if (dr.doseQuantity) return dr.doseQuantity;
        if (dr.doseRange?.high) return dr.doseRange.high;
      }
    }
  }
  if (order.resourceType === 'ServiceRequest' && order.quantityQuantity) return order.quantityQuantity;
  return undefined;
}

function round(n: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

function sci(n: number): string {
  return n.toExponential(2).replace(/e\+?(-?\d+)/, '×10^$1');
}

const TOLERANCE = 1.001;

export function dosePerKg(check: DosePerKgCheck, ctx: EvaluationContext): CheckOutcome {
  const dosing = ctx.product.product?.dosing;
  const perKg = dosing?.perKg;
  if (!dosing || !perKg) {
    return outcome('missing', { notes: ['The product has no labelled dose on file'], missing: [{ text: 'Prescribed dose per kg', category: 'clinical' }] });
  }
  const weight = latestWeightKg(check, ctx);
  if (!weight) {
    return (
      unavailable(ctx, ['observations']) ??
      outcome('missing', { notes: ['No body weight in the record'], missing: [{ text: check.missing ?? 'Current body weight', category: 'clinical' }] })
    );
  }
  // Labels dose by the weight band's upper bound (Zolgensma kits in 0.5 kg bands).
  const weightKg = round(weight.kg, 1);
  const dosingWeight = dosing.weightBandKg ? Math.ceil(weightKg / dosing.weightBandKg - 1e-9) * dosing.weightBandKg : weightKg;
  const maxTotal = perKg.value * dosingWeight * TOLERANCE;
  const totalUnit = perKg.unit.replace(/\/kg$/, '');

  const results: CheckOutcome[] = [];
  const dose = orderDoseQuantity(ctx);
  if (dose && typeof dose.value === 'number') {
    const unit = quantityUnit(dose);
    let total: number | undefined;
    let perKgValue: number | undefined;
    if (unit) {
      perKgValue = convertUnit(dose.value, unit, perKg.unit);
      if (perKgValue !== undefined) total = perKgValue * weightKg;
      else {
        total = convertUnit(dose.value, unit, totalUnit);
        const ml = total === undefined ? convertUnit(dose.value, unit, 'mL') : undefined;
        if (ml !== undefined && dosing.concentration) total = ml * dosing.concentration.value;
      }
    }
    if (total === undefined) {
      results.push(outcome('missing', { notes: [`The dose ${dose.value} ${dose.unit ?? dose.code ?? ''} has a unit the label cannot be compared with`], missing: [{ text: 'Dose in vector genomes or mL', category: 'clinical' }] }));
    } else {
      const effectivePerKg = perKgValue ?? total / weightKg;
      const text = `Ordered dose ${sci(total)} ${totalUnit.replace(/[{}]/g, '')} for ${weightKg} kg = ${sci(effectivePerKg)} ${perKg.unit.replace(/[{}]/g, '')}`;
      const withinLabel = perKgValue !== undefined ? perKgValue <= perKg.value * TOLERANCE : total <= maxTotal;
      results.push(
        withinLabel
          ? outcome('met', { evidence: [weight.evidence, { reference: ctx.orderReference, text }] })
          : outcome('not-met', {
              evidence: [weight.evidence, { reference: ctx.orderReference, text }],
              notes: [`Exceeds the labelled ${sci(perKg.value)} ${perKg.unit.replace(/[{}]/g, '')} (at most ${sci(perKg.value * dosingWeight)} for ${weightKg} kg)`],
            }),
      );
    }
  }
  const kit = kitOf(ctx, dosing.kits ?? []);
  if (kit) {
    const text = `Kit NDC ${kit.ndc} is for ${kit.minKg}–${kit.maxKg} kg (${kit.vials} vials)`;
    if (weightKg >= kit.minKg - 1e-9 && weightKg <= kit.maxKg + 1e-9) {
      results.push(outcome('met', { evidence: [weight.evidence, { reference: ctx.orderReference, text }] }));
    } else {
      const direction = weightKg < kit.minKg ? 'exceeds' : 'is below';
      results.push(
        outcome('not-met', {
          evidence: [weight.evidence, { reference: ctx.orderReference, text }],
          notes: [`The kit ${direction} the labelled dose for ${weightKg} kg`],
        }),
      );
    }
  }
  if (results.length === 0) {
    return outcome('missing', {
      evidence: [weight.evidence],
      notes: ['The order states neither a dose nor a weight-based kit'],
      missing: [{ text: check.missing ?? 'Prescribed dose (vector genomes per kg) or kit NDC', category: 'clinical' }],
    });
  }
  const notMet = results.find((r) => r.status === 'not-met');
  return notMet ?? results.find((r) => r.status === 'missing') ?? results[0]!;
}

function kitOf(ctx: EvaluationContext, kits: DoseKit[]): DoseKit | undefined {
  const ndcs = new Set(ctx.facts.codings.filter((c) => c.system === 'ndc').map((c) => c.code));
  return kits.find((k) => ndcs.has(normaliseNdc(k.ndc)));
}
