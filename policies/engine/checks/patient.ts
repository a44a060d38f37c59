import { addDays, addYears, ageInYears, describeAge, toDay } from '../dates.ts';
import { outcome, unavailable, valueSet, type EvaluationContext } from '../context.ts';
import { referenceOf } from '../record.ts';
import { convertUnit, quantityUnit } from '../ucum.ts';
import type { AgeCheck, CheckOutcome, CorrectedGestationalAgeCheck, SexCheck } from '../types.ts';
import { isAsserted } from './conditions.ts';
import { findObservations } from './observations.ts';
import { conceptCodings, conceptText } from '../terminology.ts';

function birthDateOrGap(ctx: EvaluationContext, missingText: string): { birthDate: string } | { result: CheckOutcome } {
  const birthDate = toDay(ctx.record.patient?.birthDate);
  if (birthDate) return { birthDate };
  return {
    result: unavailable(ctx, ['patient']) ?? outcome('missing', { missing: [{ text: missingText, category: 'clinical' }] }),
  };
}

export function ageCheck(check: AgeCheck, ctx: EvaluationContext): CheckOutcome {
  const known = birthDateOrGap(ctx, check.missing ?? 'Date of birth');
  if ('result' in known) return known.result;
  const { birthDate } = known;
  const age = ageInYears(birthDate, ctx.serviceDate);
  const ageText = `Age ${describeAge(birthDate, ctx.serviceDate)} on ${ctx.serviceDate}`;
  const patientRef = ctx.record.patient ? referenceOf(ctx.record.patient) : undefined;
  const evidence = [{ ...(patientRef ? { reference: patientRef } : {}), text: ageText }];

  const tooYoung = check.minYears !== undefined && age < check.minYears;
  const tooOld =
    (check.maxYearsExclusive !== undefined && age >= check.maxYearsExclusive) ||
    (check.maxYearsInclusive !== undefined && age > check.maxYearsInclusive);
  if (tooYoung || tooOld) {
    const bound = tooYoung
      ? `at least ${check.minYears} years`
      : check.maxYearsExclusive !== undefined
        ? `under ${check.maxYearsExclusive} years`
        : `at most ${check.maxYearsInclusive} years`;
    return outcome(check.whenOutside ?? 'not-met', { evidence, notes: [`The criterion requires an age of ${bound}`] });
  }
  const notes: string[] = [];
  if (check.maxYearsExclusive !== undefined) {
    // A clinician planning an infusion needs the last day it is still within the age limit.
    notes.push(`Must be given before ${addYears(birthDate, check.maxYearsExclusive)}`);
  }
  return outcome('met', { evidence, notes });
}

export function sexCheck(check: SexCheck, ctx: EvaluationContext): CheckOutcome {
  const gender = ctx.record.patient?.gender;
  if (gender === 'male' || gender === 'female') {
    const evidence = [{ reference: referenceOf(ctx.record.patient!), text: `Sex: ${gender}` }];
    return check.allowed.includes(gender)
      ? outcome('met', { evidence })
      : outcome('not-met', { evidence, notes: [`The label limits use to ${check.allowed.join(' or ')} patients`] });
  }
  return unavailable(ctx, ['patient']) ?? outcome('missing', { missing: [{ text: check.missing ?? 'Administrative sex', category: 'clinical' }] });
}

/**
 * Preterm infants get the infusion only once they reach full-term corrected age:
 * corrected age = age − (term − gestational age at birth). The earliest date is
 * birth date + (term − GA) weeks.
 */
export function correctedGestationalAge(check: CorrectedGestationalAgeCheck, ctx: EvaluationContext): CheckOutcome {
  const known = birthDateOrGap(ctx, 'Date of birth');
  if ('result' in known) return known.result;
  const { birthDate } = known;

  let weeks: number | undefined;
  let evidence: { reference?: string; text: string } | undefined;
  const gaObservation = findObservations(ctx, valueSet(ctx, check.gestationalAgeValueSet))[0];
  const quantity = gaObservation?.valueQuantity;
  if (gaObservation && quantity && typeof quantity.value === 'number') {
    const unit = quantityUnit(quantity) ?? 'wk';
    weeks = convertUnit(quantity.value, unit, 'wk');
    if (weeks !== undefined && !(weeks > 0 && weeks <= 60)) {
      // Not a gestational age (and date arithmetic on it would overflow): ask for a readable one.
      return outcome('missing', {
        evidence: [{ reference: referenceOf(gaObservation), text: 'Gestational age at birth recorded with an implausible value' }],
        missing: [{ text: check.missing ?? 'Gestational age at birth (weeks)', category: 'clinical' }],
      });
    }
    if (weeks !== undefined) {
      evidence = { reference: referenceOf(gaObservation), text: `Gestational age at birth ${formatWeeks(weeks)}` };
    }
  }
  if (weeks === undefined) {
    const preterm = valueSet(ctx, check.pretermValueSet);
    const condition = ctx.record.conditions.find((c) => isAsserted(c) && preterm.matches(c.code));
    if (condition) {
      const coding = conceptCodings(condition.code).find((c) => preterm.matchesCoding(c));
      const implied = coding ? check.pretermCodeWeeks[coding.code] : undefined;
      if (implied === undefined) {
        return outcome('missing', {
          evidence: [{ reference: referenceOf(condition), text: `Preterm birth recorded (${coding?.code ?? conceptText(condition.code) ?? 'code'}) without gestational age` }],
          missing: [{ text: check.missing ?? 'Gestational age at birth (weeks)', category: 'clinical' }],
        });
      }
      weeks = implied;
      evidence = { reference: referenceOf(condition), text: `Preterm birth at ${implied} weeks (coded ${coding?.code})` };
    }
  }
  if (weeks === undefined) {
    const gap = unavailable(ctx, ['observations', 'conditions']);
    if (gap) return gap;
    return outcome('met', { evidence: [{ text: 'No record of preterm birth' }] });
  }
  if (weeks >= check.pretermBeforeWeeks) {
    return outcome('met', { evidence: [{ ...evidence!, text: `${evidence!.text} (not preterm)` }] });
  }
  const termDate = addDays(birthDate, Math.ceil((check.termWeeks - weeks) * 7));
  if (ctx.serviceDate >= termDate) {
    return outcome('met', { evidence: [evidence!, { text: `Full-term corrected age reached on ${termDate}` }] });
  }
  return outcome('deferred', {
    evidence: [evidence!],
    earliestDate: termDate,
    notes: [`Preterm infant: the infusion waits until full-term corrected age on ${termDate}`],
    infoNeeded: ['timeframe'],
  });
}

function formatWeeks(weeks: number): string {
  const whole = Math.floor(weeks + 1e-9);
  const days = Math.round((weeks - whole) * 7);
  return days > 0 ? `${whole} weeks ${days} days` : `${whole} weeks`;
}

