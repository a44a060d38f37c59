import { createRequire } from 'node:module';

/**
 * Unit conversion through @lhncbc/ucum-lhc (which ships CommonJS without types). Conversion
 * factors are cached per unit pair: ucum-lhc takes ~5 µs per call and units repeat endlessly.
 */

interface UcumConversion {
  status: 'succeeded' | 'failed' | 'error';
  toVal?: number;
}
interface UcumUtils {
  convertUnitTo(from: string, value: number, to: string): UcumConversion;
}
interface UcumModule {
  UcumLhcUtils: { getInstance(): UcumUtils };
}

const require = createRequire(import.meta.url);
const ucum = (require('@lhncbc/ucum-lhc') as UcumModule).UcumLhcUtils.getInstance();

const factorCache = new Map<string, number | null>();

/**
 * Converts a value between UCUM units. Linear units only (no temperature offsets are needed
 * by any policy). Returns undefined when the units are not commensurable or not valid UCUM.
 */
export function convertUnit(value: number, from: string, to: string): number | undefined {
  if (from === to) return value;
  if (typeof from !== 'string' || typeof to !== 'string') return undefined;
  const key = `${from}\u0000${to}`;
  let factor = factorCache.get(key);
  if (factor === undefined) {
    const result = ucum.convertUnitTo(from, 1, to);
    factor = result.status === 'succeeded' && typeof result.toVal === 'number' ? result.toVal : null;
    factorCache.set(key, factor);
  }
  return factor === null ? undefined : value * factor;
}

/** Common non-UCUM unit spellings seen in EHR payloads, mapped to UCUM. */
const UNIT_SYNONYMS: Record<string, string> = {
  lb: '[lb_av]',
  lbs: '[lb_av]',
  pound: '[lb_av]',
  pounds: '[lb_av]',
  kgs: 'kg',
  kilogram: 'kg',
  kilograms: 'kg',
  gram: 'g',
  grams: 'g',
  oz: '[oz_av]',
};

/** The UCUM unit of a Quantity: its code when the system is UCUM, else a recognised spelling. */
export function quantityUnit(quantity: { value?: number; unit?: string; code?: string; system?: string }): string | undefined {
  // Unvalidated FHIR: a unit, code or system that is not a string is absent.
  const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
  const code = str(quantity.code);
  const system = str(quantity.system);
  if (code && (!system || system === 'http://unitsofmeasure.org')) return code;
  const spelled = (str(quantity.unit) ?? code)?.trim();
  if (!spelled) return undefined;
  return UNIT_SYNONYMS[spelled.toLowerCase()] ?? spelled;
}
