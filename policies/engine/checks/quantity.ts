import type { Duration, Quantity, Timing } from 'fhir/r4.js';
import { outcome, type EvaluationContext } from '../context.ts';
import { objectsOf } from '../fhir-arrays.ts';
import { convertUnit } from '../ucum.ts';
import type { CheckOutcome, Evidence, OrderQuantityCheck } from '../types.ts';

/**
 * The ordered amount against a quantity limit per period (e.g. 36 tablets per 72 hours): the
 * dispense quantity spread over its expected supply duration, and the dosing rate (dose ×
 * frequency, or the maximum dose per period). An order that states neither is within the limit
 * as far as the order says; the limit itself travels as CRD allowed-quantity.
 */

const PERIOD_UNITS: Record<string, string> = { s: 's', min: 'min', h: 'h', d: 'd', wk: 'wk', mo: 'mo', a: 'a' };

function hours(value: number | undefined, unit: string | undefined): number | undefined {
  if (typeof value !== 'number' || !unit) return undefined;
  const ucum = PERIOD_UNITS[unit] ?? unit;
  return convertUnit(value, ucum, 'h');
}

function inLimitUnit(check: OrderQuantityCheck, quantity: Quantity | undefined): number | undefined {
  if (!quantity || typeof quantity.value !== 'number') return undefined;
  const spelled = [quantity.code, quantity.unit].filter((u): u is string => typeof u === 'string').map((u) => u.trim().toLowerCase());
  const accepted = new Set(check.units.map((u) => u.toLowerCase()));
  if (typeof quantity.value !== 'number') return undefined;
  return spelled.some((u) => accepted.has(u)) ? quantity.value : undefined;
}

function durationHours(duration: Duration | undefined): number | undefined {
  return hours(duration?.value, duration?.code ?? duration?.unit);
}

function rateFromTiming(dose: number, timing: Timing | undefined, perHours: number): number | undefined {
  const repeat = timing?.repeat;
  if (!repeat) return undefined;
  const period = hours(repeat.period, repeat.periodUnit);
  if (period === undefined || period <= 0) return undefined;
  const perPeriod = (repeat.frequencyMax ?? repeat.frequency ?? 1) * dose;
  return (perPeriod * perHours) / period;
}

export function orderQuantity(check: OrderQuantityCheck, ctx: EvaluationContext): CheckOutcome {
  const order = ctx.order;
  const limitText = `${check.max.value} ${check.max.unit} per ${check.perHours} hours`;
  if (order.resourceType !== 'MedicationRequest') {
    return outcome('met', { evidence: [{ text: `Limit ${limitText}; the order states no dispense quantity` }] });
  }
  const evidence: Evidence[] = [];
  const over: string[] = [];

  const dispense = inLimitUnit(check, order.dispenseRequest?.quantity);
  if (dispense !== undefined) {
    const supply = durationHours(order.dispenseRequest?.expectedSupplyDuration);
    const periods = supply !== undefined ? Math.max(1, supply / check.perHours) : 1;
    const allowed = check.max.value * periods;
    const text = `Dispense ${dispense} ${check.max.unit}${supply !== undefined ? ` over ${Math.round(supply)} hours` : ''}`;
    evidence.push({ reference: ctx.orderReference, text });
    if (dispense > allowed + 1e-9) over.push(`${text} exceeds ${limitText}`);
  }
  for (const dosage of objectsOf(order.dosageInstruction)) {
    const max = dosage.maxDosePerPeriod;
    const maxAmount = inLimitUnit(check, max?.numerator);
    const maxHours = hours(max?.denominator?.value, max?.denominator?.code ?? max?.denominator?.unit);
    if (maxAmount !== undefined && maxHours !== undefined && maxHours > 0) {
      const rate = (maxAmount * check.perHours) / maxHours;
      evidence.push({ reference: ctx.orderReference, text: `Maximum ${maxAmount} ${check.max.unit} per ${Math.round(maxHours)} hours` });
      if (rate > check.max.value + 1e-9) over.push(`A maximum of ${maxAmount} per ${Math.round(maxHours)} hours is ${Math.round(rate)} ${check.max.unit} per ${check.perHours} hours, above ${limitText}`);
    }
    for (const doseAndRate of objectsOf(dosage.doseAndRate)) {
      const dose = inLimitUnit(check, doseAndRate.doseQuantity);
      if (dose === undefined) continue;
      const rate = rateFromTiming(dose, dosage.timing, check.perHours);
      if (rate === undefined) continue;
      evidence.push({ reference: ctx.orderReference, text: `Dosing ${dose} ${check.max.unit} at most ${Math.round(rate)} ${check.max.unit} per ${check.perHours} hours` });
      if (rate > check.max.value + 1e-9) over.push(`The dosing frequency allows ${Math.round(rate)} ${check.max.unit} per ${check.perHours} hours, above ${limitText}`);
    }
  }
  if (over.length > 0) return outcome('not-met', { evidence, notes: over });
  if (evidence.length === 0) evidence.push({ text: `The order states no quantity in ${check.max.unit}; the authorization is limited to ${limitText}` });
  return outcome('met', { evidence });
}
