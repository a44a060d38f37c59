import { outcome, type EvaluationContext } from '../context.ts';
import type { AnyOfCheck, Check, CheckOutcome, WhenCheck } from '../types.ts';
import { allOf, mergeOutcomes as merge, SEVERITY } from './combine.ts';
import { conditionAbsent, conditionPresent } from './conditions.ts';
import { observationCheck } from './observations.ts';
import { dosePerKg, medicationPlanned, orderPlanned, prescriberSpecialty, productHistoryAbsent } from './orders.ts';
import { ageCheck, correctedGestationalAge, sexCheck } from './patient.ts';
import { onLabel, productStatus } from './label.ts';
import { careSetting, treatmentSite } from './site.ts';
import { orderQuantity } from './quantity.ts';

export { worstStatus } from './combine.ts';

function anyOf(check: AnyOfCheck, ctx: EvaluationContext): CheckOutcome {
  const results = check.checks.map((c) => runCheck(c, ctx));
  const met = results.find((r) => r.status === 'met');
  if (met) return met;
  const open = results.filter((r) => r.status !== 'not-met');
  if (open.length === 0) {
    const merged = merge(check.otherwise ?? 'not-met', results);
    // Eleven "not this use" notes say less than one that names how many alternatives were tried.
    if (results.length > 2) merged.notes = [`None of the ${results.length} alternatives applies`];
    return merged;
  }
  // None met yet but some could be: ask once for the documentation, not once per branch.
  const combined = merge(open.map((r) => r.status).reduce((a, b) => (SEVERITY[a] <= SEVERITY[b] ? a : b)), open);
  if (check.missing && combined.status === 'missing') {
    combined.missing = [{ text: check.missing, category: check.docCategory ?? 'clinical' }];
  }
  return combined;
}

export function runCheck(check: Check, ctx: EvaluationContext): CheckOutcome {
  switch (check.type) {
    case 'allOf':
      return allOf(check.checks.map((c) => runCheck(c, ctx)));
    case 'anyOf':
      return anyOf(check, ctx);
    case 'prescriberSpecialty':
      return prescriberSpecialty(check, ctx);
    case 'conditionPresent':
      return conditionPresent(check, ctx);
    case 'conditionAbsent':
      return conditionAbsent(check, ctx);
    case 'age':
      return ageCheck(check, ctx);
    case 'sex':
      return sexCheck(check, ctx);
    case 'observation':
      return observationCheck(check, ctx);
    case 'correctedGestationalAge':
      return correctedGestationalAge(check, ctx);
    case 'medicationPlanned':
      return medicationPlanned(check, ctx);
    case 'orderPlanned':
      return orderPlanned(check, ctx);
    case 'productHistoryAbsent':
      return productHistoryAbsent(check, ctx);
    case 'dosePerKg':
      return dosePerKg(check, ctx);
    case 'attestation':
      return outcome('missing', { missing: [{ text: check.item, category: check.docCategory ?? 'clinical' }] });
    case 'never':
      return outcome('not-met', { notes: [check.reason] });
    case 'productStatus':
      return productStatus(check, ctx);
    case 'onLabel':
      return onLabel(check, ctx);
    case 'treatmentSite':
      return treatmentSite(check, ctx);
    case 'careSetting':
      return careSetting(check, ctx);
    case 'orderQuantity':
      return orderQuantity(check, ctx);
    case 'when':
      return when(check, ctx);
  }
}

/**
 * A criterion for some cases only (e.g. CGT Access Model paperwork when the therapy is for sickle
 * cell disease). Unless the case is definitely not one of them, `then` decides: an unknown
 * diagnosis must not waive a requirement.
 */
function when(check: WhenCheck, ctx: EvaluationContext): CheckOutcome {
  const gate = runCheck(check.if, ctx);
  if (gate.status === 'not-met') {
    return outcome('met', { evidence: [{ text: check.notApplicable }] });
  }
  const result = runCheck(check.then, ctx);
  return gate.status === 'met' ? { ...result, evidence: [...gate.evidence, ...result.evidence] } : result;
}
