import type { Quantity, Ratio } from 'fhir/r4.js';
import type { Comparator, NumericTest } from './types.ts';
import { convertUnit, quantityUnit } from './ucum.ts';

/**
 * Numeric values as intervals: a lab result "<1:25" or a Quantity with comparator ">" is not a
 * point, so a test on it can be true, false, or undecidable. Undecidable results become
 * "missing" in the criteria rather than a guess.
 */
export interface NumericValue {
  lo: number;
  loOpen: boolean;
  hi: number;
  hiOpen: boolean;
  unit?: string;
  /** How the value was written, for evidence ("1:25", "8.4 kg"). */
  display: string;
}

export function pointValue(value: number, display: string, unit?: string): NumericValue {
  return { lo: value, loOpen: false, hi: value, hiOpen: false, display, ...(unit ? { unit } : {}) };
}

export function withComparator(value: number, comparator: string | undefined, display: string, unit?: string): NumericValue {
  const base = { display, ...(unit ? { unit } : {}) };
  switch (comparator) {
    case '<':
      return { lo: -Infinity, loOpen: true, hi: value, hiOpen: true, ...base };
    case '<=':
      return { lo: -Infinity, loOpen: true, hi: value, hiOpen: false, ...base };
    case '>':
      return { lo: value, loOpen: true, hi: Infinity, hiOpen: true, ...base };
    case '>=':
      return { lo: value, loOpen: false, hi: Infinity, hiOpen: true, ...base };
    default:
      return pointValue(value, display, unit);
  }
}

/** true: every value in the interval passes; false: none does; undefined: cannot tell. */
export function testValue(value: NumericValue, comparator: Comparator, threshold: number): boolean | undefined {
  const { lo, loOpen, hi, hiOpen } = value;
  switch (comparator) {
    case '<=':
      if (hi <= threshold) return true;
      if (lo > threshold || (lo === threshold && loOpen)) return false;
      return undefined;
    case '<':
      if (hi < threshold || (hi === threshold && hiOpen)) return true;
      if (lo >= threshold) return false;
      return undefined;
    case '>=':
      if (lo >= threshold) return true;
      if (hi < threshold || (hi === threshold && hiOpen)) return false;
      return undefined;
    case '>':
      if (lo > threshold || (lo === threshold && loOpen)) return true;
      if (hi <= threshold) return false;
      return undefined;
    case '=':
      if (lo === hi && !loOpen && !hiOpen) return lo === threshold;
      if (threshold < lo || threshold > hi || (threshold === lo && loOpen) || (threshold === hi && hiOpen)) return false;
      return undefined;
  }
}

/** Applies a NumericTest, converting units with UCUM first when the test names a unit. */
export function applyNumericTest(value: NumericValue, test: NumericTest): boolean | undefined {
  let candidate = value;
  if (test.unit && value.unit && value.unit !== test.unit) {
    const lo = Number.isFinite(value.lo) ? convertUnit(value.lo, value.unit, test.unit) : value.lo;
    const hi = Number.isFinite(value.hi) ? convertUnit(value.hi, value.unit, test.unit) : value.hi;
    if (lo === undefined || hi === undefined) return undefined;
    candidate = { ...value, lo, hi, unit: test.unit };
  } else if (test.unit && !value.unit && test.unit !== '1') {
    // A bare number where the policy needs a unit cannot be compared safely.
    return undefined;
  }
  return testValue(candidate, test.comparator, test.value);
}

export function fromQuantity(quantity: Quantity): NumericValue | undefined {
  if (typeof quantity.value !== 'number' || !Number.isFinite(quantity.value)) return undefined;
  const unit = quantityUnit(quantity);
  const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
  const shownUnit = str(quantity.unit) ?? str(quantity.code) ?? '';
  const comparator = str(quantity.comparator) as Quantity['comparator'];
  const display = `${comparator ?? ''}${quantity.value}${shownUnit ? ` ${shownUnit}` : ''}`;
  return withComparator(quantity.value, comparator, display, unit);
}

/**
 * Antibody titers, normalised to the reciprocal of the end-point dilution with a comparator:
 * "1:25" → 25, "<1:25" → <25, ">1:400" → >400, Ratio 1/25 → 25, Quantity {value 25, comparator "<"} → <25.
 */
export function parseTiter(value: unknown): NumericValue | undefined {
  if (typeof value === 'string') return parseTiterString(value);
  if (isRatio(value)) {
    const n = value.numerator?.value;
    const d = value.denominator?.value;
    if (typeof n !== 'number' || typeof d !== 'number' || n <= 0 || d <= 0) return undefined;
    const reciprocal = d / n;
    return withComparator(reciprocal, value.numerator?.comparator ?? value.denominator?.comparator, `1:${formatNumber(reciprocal)}`);
  }
  if (isQuantity(value)) {
    if (typeof value.value !== 'number' || value.value <= 0) return undefined;
    // A titer quantity is the reciprocal titer ({titer}); a value below 1 is a dilution fraction.
    const reciprocal = value.value < 1 ? 1 / value.value : value.value;
    const comparator = value.value < 1 ? flip(value.comparator) : value.comparator;
    return withComparator(reciprocal, comparator, `${comparator ?? ''}1:${formatNumber(reciprocal)}`);
  }
  return undefined;
}

const TITER_STRING = /^\s*(<=|>=|<|>|≤|≥)?\s*1\s*[:/]\s*(\d+(?:\.\d+)?)\s*$/;
const RECIPROCAL_STRING = /^\s*(<=|>=|<|>|≤|≥)?\s*(\d+(?:\.\d+)?)\s*$/;

function parseTiterString(raw: string): NumericValue | undefined {
  // Labs often wrap the number in words ("Negative (<1:25)"); read the titer expression inside.
  const inner = /(<=|>=|<|>|≤|≥)?\s*1\s*[:/]\s*\d+(?:\.\d+)?/.exec(raw)?.[0] ?? raw;
  const m = TITER_STRING.exec(inner) ?? RECIPROCAL_STRING.exec(inner);
  if (!m) return undefined;
  const comparator = normaliseComparator(m[1]);
  const reciprocal = Number(m[2]);
  if (!Number.isFinite(reciprocal) || reciprocal <= 0) return undefined;
  return withComparator(reciprocal, comparator, `${comparator ?? ''}1:${formatNumber(reciprocal)}`);
}

function normaliseComparator(c: string | undefined): string | undefined {
  if (c === '≤') return '<=';
  if (c === '≥') return '>=';
  return c;
}

function flip(c: string | undefined): string | undefined {
  return ({ '<': '>', '<=': '>=', '>': '<', '>=': '<=' } as Record<string, string>)[c ?? ''] ?? c;
}

function formatNumber(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toPrecision(3);
}

function isRatio(v: unknown): v is Ratio {
  return typeof v === 'object' && v !== null && ('numerator' in v || 'denominator' in v);
}

function isQuantity(v: unknown): v is Quantity {
  return typeof v === 'object' && v !== null && 'value' in v && typeof (v as Quantity).value === 'number';
}

export function describeTest(test: NumericTest): string {
  const symbol: Record<Comparator, string> = { '<': '<', '<=': '≤', '>': '>', '>=': '≥', '=': '=' };
  return `${symbol[test.comparator]} ${test.value}${test.unit && test.unit !== '1' ? ` ${test.unit}` : ''}`;
}
