import { outcome, type EvaluationContext } from '../context.ts';
import type { AnyOfCheck, Check, CheckOutcome, CriterionStatus } from '../types.ts';
import { conditionAbsent, conditionPresent } from './conditions.ts';
import { observationCheck } from './observations.ts';
import { dosePerKg, medicationPlanned, orderPlanned, prescriberSpecialty, productHistoryAbsent } from './orders.ts';
import { ageCheck, correctedGestationalAge, sexCheck } from './patient.ts';

/** Which status decides when sub-checks disagree: a definite "no" outweighs everything. */
const SEVERITY: Record<CriterionStatus, number> = {
  met: 0,
  missing: 1,
  unavailable: 2,
  deferred: 3,
  review: 4,
  'not-met': 5,
};

export function worstStatus(statuses: CriterionStatus[]): CriterionStatus {
  return statuses.reduce<CriterionStatus>((worst, s) => (SEVERITY[s] > SEVERITY[worst] ? s : worst), 'met');
}

function merge(status: CriterionStatus, parts: CheckOutcome[]): CheckOutcome {
  const earliest = parts.map((p) => p.earliestDate).filter((d): d is string => d !== undefined).sort().at(-1);
  return outcome(status, {
    evidence: parts.flatMap((p) => p.evidence),
    missing: parts.flatMap((p) => p.missing),
    notes: parts.flatMap((p) => p.notes),
    ...(earliest ? { earliestDate: earliest } : {}),
    infoNeeded: [...new Set(parts.flatMap((p) => p.infoNeeded ?? []))],
  });
}

function anyOf(check: AnyOfCheck, ctx: EvaluationContext): CheckOutcome {
  const results = check.checks.map((c) => runCheck(c, ctx));
  const met = results.find((r) => r.status === 'met');
  if (met) return met;
  const open = results.filter((r) => r.status !== 'not-met');
  if (open.length === 0) {
    return merge(check.otherwise ?? 'not-met', results);
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
    case 'allOf': {
      const results = check.checks.map((c) => runCheck(c, ctx));
      return merge(worstStatus(results.map((r) => r.status)), results);
    }
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
  }
}
