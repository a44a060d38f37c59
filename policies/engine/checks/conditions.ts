import type { CodeableConcept, Condition } from 'fhir/r4.js';
import { daysBetween, toDay } from '../dates.ts';
import { objectsOf } from '../fhir-arrays.ts';
import { outcome, unavailable, valueSet, type EvaluationContext } from '../context.ts';
import { referenceOf } from '../record.ts';
import { conceptName, conceptText, describeCoding, type CompiledValueSet } from '../terminology.ts';
import type { CheckOutcome, ConditionAbsentCheck, ConditionPresentCheck, Evidence } from '../types.ts';

const INACTIVE_CLINICAL = new Set(['inactive', 'remission', 'resolved']);
const NOT_TRUE_VERIFICATION = new Set(['refuted', 'entered-in-error']);

/** A condition that was recorded in error or refuted is not a condition at all. */
export function isAsserted(condition: Condition): boolean {
  const verification = condition.verificationStatus?.coding?.[0]?.code;
  return !(verification && NOT_TRUE_VERIFICATION.has(verification));
}

/** Active unless its clinical status says otherwise (US Core requires it, but not every EHR sends it). */
export function isActive(condition: Condition): boolean {
  const clinical = condition.clinicalStatus?.coding?.[0]?.code;
  return !(clinical && INACTIVE_CLINICAL.has(clinical));
}

export function conditionOnset(condition: Condition): string | undefined {
  return toDay(condition.onsetDateTime ?? condition.onsetPeriod?.start ?? condition.recordedDate);
}

export function describeConcept(vs: CompiledValueSet, concept: CodeableConcept | undefined): string {
  const hit = vs.match(concept);
  if (hit?.coding) return describeCoding(hit.coding);
  return conceptText(concept) ?? hit?.text ?? 'coded condition';
}

function conditionEvidence(vs: CompiledValueSet, condition: Condition): Evidence {
  const onset = conditionOnset(condition);
  return {
    reference: referenceOf(condition),
    text: `${describeConcept(vs, condition.code)}${onset ? `, since ${onset}` : ''}`,
  };
}

export function matchingConditions(ctx: EvaluationContext, vs: CompiledValueSet): Condition[] {
  return ctx.record.conditions.filter((c) => isAsserted(c) && vs.matches(c.code));
}

/** The order's own reasons: reasonCode concepts and referenced Conditions. */
export function orderReasons(ctx: EvaluationContext): { concept: CodeableConcept; condition?: Condition }[] {
  const out: { concept: CodeableConcept; condition?: Condition }[] = [];
  const order = ctx.order as { reasonCode?: CodeableConcept[]; reasonReference?: { reference?: string }[] };
  for (const concept of objectsOf(order.reasonCode)) out.push({ concept });
  for (const ref of objectsOf(order.reasonReference)) {
    const resolved = ctx.index.resolve(ref, ctx.order);
    if (resolved?.resourceType === 'Condition' && resolved.code) out.push({ concept: resolved.code, condition: resolved });
  }
  return out;
}

export function conditionPresent(check: ConditionPresentCheck, ctx: EvaluationContext): CheckOutcome {
  const vs = valueSet(ctx, check.valueSet);
  const reasons = check.includeOrderReason === false ? [] : orderReasons(ctx);
  const matchingReason = reasons.find((r) => vs.matches(r.concept));
  if (matchingReason) {
    return outcome('met', {
      evidence: [
        matchingReason.condition
          ? conditionEvidence(vs, matchingReason.condition)
          : { reference: ctx.orderReference, text: `Order reason: ${describeConcept(vs, matchingReason.concept)}` },
      ],
    });
  }
  const found = check.orderReasonDecides && reasons.length > 0 ? [] : matchingConditions(ctx, vs);
  if (found.length > 0) return outcome('met', { evidence: found.slice(0, 3).map((c) => conditionEvidence(vs, c)) });

  // An order that states a different reason is a use outside the criterion (e.g. off-label).
  if (check.whenOrderReasonOther && reasons.length > 0) {
    const stated = reasons.map((r) => conceptName(r.concept) ?? 'unnamed').join(', ');
    return outcome(check.whenOrderReasonOther, {
      evidence: [{ reference: ctx.orderReference, text: `Order reason: ${stated}` }],
      notes: [`The order's stated reason (${stated}) is not ${vs.title}`],
    });
  }
  const gap = unavailable(ctx, ['conditions']);
  if (gap) return gap;
  const status = check.whenAbsent ?? 'missing';
  return outcome(status, {
    notes: [`No ${vs.title} diagnosis in the record`],
    ...(status === 'missing'
      ? { missing: [{ text: check.missing ?? `Document the diagnosis (${vs.title})`, category: check.docCategory ?? 'clinical' }] }
      : {}),
  });
}

export function conditionAbsent(check: ConditionAbsentCheck, ctx: EvaluationContext): CheckOutcome {
  const vs = valueSet(ctx, check.valueSet);
  if (check.orderReasonOnly) return orderReasonAbsent(check, vs, ctx);
  const activeOnly = check.activeOnly ?? true;
  const present = matchingConditions(ctx, vs).filter((c) => {
    if (activeOnly && !isActive(c)) return false;
    if (check.onsetWithinDays !== undefined) {
      const onset = conditionOnset(c);
      // Without any date an active condition still counts: it is current by its status.
      if (onset && daysBetween(onset, ctx.today) > check.onsetWithinDays) return false;
    }
    return true;
  });
  if (present.length > 0) {
    return outcome(check.whenPresent, {
      evidence: present.slice(0, 3).map((c) => conditionEvidence(vs, c)),
      notes: check.presentNote ? [check.presentNote] : [],
      ...(check.whenPresent === 'missing'
        ? { missing: [{ text: check.missing ?? `Document the status of ${vs.title}`, category: check.docCategory ?? 'clinical' }] }
        : {}),
      ...(check.whenPresent === 'deferred' ? { infoNeeded: ['timeframe' as const] } : {}),
    });
  }
  const gap = unavailable(ctx, ['conditions']);
  if (gap) return gap;
  const window = check.onsetWithinDays !== undefined ? ` in the last ${check.onsetWithinDays} days` : '';
  return outcome('met', { evidence: [{ text: `No ${activeOnly ? 'active ' : ''}${vs.title} recorded${window}` }] });
}

/** The ordered use is not one the value set names (judged on the order's stated reasons only). */
function orderReasonAbsent(check: ConditionAbsentCheck, vs: CompiledValueSet, ctx: EvaluationContext): CheckOutcome {
  const reasons = orderReasons(ctx);
  const hit = reasons.find((r) => vs.matches(r.concept));
  if (hit) {
    return outcome(check.whenPresent, {
      evidence: [hit.condition ? conditionEvidence(vs, hit.condition) : { reference: ctx.orderReference, text: `Order reason: ${describeConcept(vs, hit.concept)}` }],
      notes: check.presentNote ? [check.presentNote] : [],
      ...(check.whenPresent === 'missing'
        ? { missing: [{ text: check.missing ?? `Document the use (${vs.title})`, category: check.docCategory ?? 'clinical' }] }
        : {}),
    });
  }
  const text = reasons.length > 0 ? `The order's reason is not ${vs.title}` : `The order states no reason; nothing shows it is for ${vs.title}`;
  return outcome('met', { evidence: [{ reference: ctx.orderReference, text }] });
}
