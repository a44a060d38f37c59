import type { CodeableConcept, Observation, Quantity } from 'fhir/r4.js';
import { daysBetween, toDay } from '../dates.ts';
import { expression, outcome, unavailable, valueSet, type EvaluationContext } from '../context.ts';
import { referenceOf } from '../record.ts';
import { conceptName, type CompiledValueSet } from '../terminology.ts';
import type { CheckOutcome, CriterionStatus, Evidence, ObservationCheck, ValueBand } from '../types.ts';
import { applyNumericTest, describeTest, fromQuantity, parseTiter, pointValue, type NumericValue } from '../values.ts';

const UNUSABLE_STATUS = new Set(['entered-in-error', 'cancelled', 'registered']);

export function observationDate(observation: Observation): string | undefined {
  return toDay(
    observation.effectiveDateTime ??
      observation.effectivePeriod?.end ??
      observation.effectivePeriod?.start ??
      observation.effectiveInstant ??
      observation.issued,
  );
}

/**
 * Observations whose code matches a value set, newest first. Results in error or not yet
 * resulted never count; `withinDays` keeps only results taken within the look-back window.
 */
export function findObservations(
  ctx: EvaluationContext,
  vs: CompiledValueSet,
  options: { withinDays?: number; where?: string } = {},
): Observation[] {
  const filter = options.where ? expression(ctx, options.where) : undefined;
  const found: { observation: Observation; day: string }[] = [];
  // Exact-code sets look their candidates up; only sets with prefixes or text matching scan.
  const pool = vs.exactKeys ? ctx.index.observationsWithCodes(vs.exactKeys) : ctx.record.observations;
  for (const observation of pool) {
    if (observation.status && UNUSABLE_STATUS.has(observation.status)) continue;
    if (!vs.matches(observation.code)) continue;
    const day = observationDate(observation) ?? '';
    if (options.withinDays !== undefined && (!day || daysBetween(day, ctx.today) > options.withinDays)) continue;
    if (filter && filter(observation).some((v) => v === true) !== true) continue;
    found.push({ observation, day });
  }
  found.sort((a, b) => (a.day < b.day ? 1 : a.day > b.day ? -1 : 0));
  return found.map((f) => f.observation);
}

/** Observation.value[x] without FHIRPath: the common case stays cheap. */
function directValue(observation: Observation): unknown {
  return (
    observation.valueQuantity ??
    observation.valueString ??
    observation.valueRatio ??
    observation.valueCodeableConcept ??
    observation.valueInteger ??
    observation.valueBoolean
  );
}

function readNumeric(kind: 'quantity' | 'titer', raw: unknown): NumericValue | undefined {
  if (kind === 'titer') return parseTiter(raw);
  if (typeof raw === 'number') return pointValue(raw, String(raw), '1');
  if (typeof raw === 'object' && raw !== null && 'value' in raw) return fromQuantity(raw as Quantity);
  return undefined;
}

function isConcept(raw: unknown): raw is CodeableConcept {
  return typeof raw === 'object' && raw !== null && ('coding' in raw || 'text' in raw);
}

interface MethodFinding {
  status?: CriterionStatus;
  phrase: string;
  note?: string;
}

function judgeMethod(check: ObservationCheck, ctx: EvaluationContext, observation: Observation): MethodFinding {
  const method = check.method;
  if (!method) return { phrase: '' };
  const methodSet = valueSet(ctx, method.valueSet);
  if (observation.method && methodSet.matches(observation.method)) return { phrase: ` by ${method.name}` };
  if (method.impliedByCodes && valueSet(ctx, method.impliedByCodes).matches(observation.code)) {
    return { phrase: ` by ${method.name}` };
  }
  if (!observation.method) {
    return method.whenAbsent === 'met'
      ? { phrase: '' }
      : { status: method.whenAbsent, phrase: ' (assay method not recorded)', note: `The result must be measured by ${method.name}; the method is not recorded` };
  }
  const stated = conceptName(observation.method) ?? 'another method';
  return { status: method.whenOther, phrase: ` by ${stated}`, note: `The result was measured by ${stated}, not ${method.name}` };
}

export function observationCheck(check: ObservationCheck, ctx: EvaluationContext): CheckOutcome {
  const vs = valueSet(ctx, check.valueSet);
  const label = check.label ?? vs.title;
  const candidates = findObservations(ctx, vs, {
    ...(check.withinDays !== undefined ? { withinDays: check.withinDays } : {}),
    ...(check.where ? { where: check.where } : {}),
  });
  const missingItem = { text: check.missing ?? `Document ${label}`, category: check.docCategory ?? ('clinical' as const) };

  const latest = candidates[0];
  if (!latest) {
    const gap = unavailable(ctx, ['observations']);
    if (gap) return gap;
    if (check.narrativeValueSet) {
      const narrative = findObservations(ctx, valueSet(ctx, check.narrativeValueSet))[0];
      if (narrative) {
        const day = observationDate(narrative);
        return outcome(check.whenUnreadable ?? 'missing', {
          evidence: [{ reference: referenceOf(narrative), text: `${label}: narrative result only${day ? ` (${day})` : ''}` }],
          notes: ['A narrative-only result cannot be read as confirmation'],
          missing: [missingItem],
        });
      }
    }
    const window = check.withinDays !== undefined ? ` in the last ${check.withinDays} days` : '';
    return outcome('missing', { notes: [`No ${label} result${window}`], missing: [missingItem] });
  }

  const day = observationDate(latest);
  const method = judgeMethod(check, ctx, latest);
  const at = day ? ` on ${day}` : '';
  const raw = check.valuePath ? expression(ctx, check.valuePath)(latest)[0] : directValue(latest);

  if (check.valueKind === 'presence') {
    const shown = describePresent(raw);
    return withMethod(outcome('met', { evidence: [{ reference: referenceOf(latest), text: `${label}${shown ? ` ${shown}` : ''}${method.phrase}${at}` }] }), method, missingItem);
  }

  let decided: { status: CriterionStatus; display: string; band?: ValueBand } | undefined;
  if (check.valueKind === 'coded') {
    const concept = isConcept(raw) ? raw : undefined;
    const display = conceptName(concept) ?? 'unreadable';
    const band = (check.bands ?? []).find((b) => !b.valueSet || (concept && valueSet(ctx, b.valueSet).matches(concept)));
    decided = concept ? { status: band?.status ?? 'not-met', display, ...(band ? { band } : {}) } : undefined;
  } else {
    const value = readNumeric(check.valueKind, raw);
    if (value) decided = decideBands(value, check.bands ?? []);
  }

  const evidence: Evidence = {
    reference: referenceOf(latest),
    text: `${label} ${decided?.display ?? describeRaw(raw)}${method.phrase}${at}`,
  };
  if (!decided) {
    return outcome(check.whenUnreadable ?? 'missing', {
      evidence: [evidence],
      notes: [`The ${label} result cannot be read as a value that the criterion can compare`],
      missing: [missingItem],
    });
  }
  const notes = decided.band?.note ? [decided.band.note] : [];
  return withMethod(
    outcome(decided.status, {
      evidence: [evidence],
      notes,
      ...(decided.status === 'missing' ? { missing: [missingItem] } : {}),
    }),
    method,
    missingItem,
  );
}

/** The first band whose test holds decides; a value no band can decide is unreadable. */
function decideBands(value: NumericValue, bands: ValueBand[]): { status: CriterionStatus; display: string; band?: ValueBand } | undefined {
  for (const band of bands) {
    if (!band.test) return { status: band.status, display: value.display, band };
    const result = applyNumericTest(value, band.test);
    if (result === undefined) {
      return { status: 'missing', display: value.display, band: { status: 'missing', note: `${value.display} cannot be compared with ${describeTest(band.test)}` } };
    }
    if (result) return { status: band.status, display: value.display, band };
  }
  return { status: 'not-met', display: value.display };
}

/** A method problem only worsens a result that would otherwise pass. */
function withMethod(result: CheckOutcome, method: MethodFinding, missingItem: { text: string; category: 'clinical' | 'admin' }): CheckOutcome {
  if (!method.status || result.status !== 'met') return result;
  return {
    ...result,
    status: method.status,
    notes: [...result.notes, ...(method.note ? [method.note] : [])],
    missing: method.status === 'missing' ? [...result.missing, missingItem] : result.missing,
  };
}

/** A result's value for evidence text, when it has a simple one. */
function describePresent(raw: unknown): string | undefined {
  if (typeof raw === 'string') return raw.length <= 40 ? raw : undefined;
  if (typeof raw === 'object' && raw !== null && 'value' in raw) return fromQuantity(raw as Quantity)?.display;
  return undefined;
}

function describeRaw(raw: unknown): string {
  if (typeof raw === 'string') return `"${raw}"`;
  if (isConcept(raw)) return conceptName(raw) ?? 'coded value';
  return raw === undefined ? '(no value)' : 'value';
}
