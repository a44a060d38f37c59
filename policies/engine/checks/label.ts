import { outcome, type EvaluationContext } from '../context.ts';
import { normaliseNdc } from '../terminology.ts';
import type {
  CheckOutcome,
  CriterionStatus,
  LabelFactName,
  LabelFacts,
  OnLabelCheck,
  ProductDefinition,
  ProductStatusCheck,
} from '../types.ts';
import { allOf } from './combine.ts';
import { conditionPresent } from './conditions.ts';
import { dosePerKg } from './orders.ts';
import { ageCheck, sexCheck } from './patient.ts';

/**
 * Checks on the ordered product itself, from the catalog (policies/products.json): whether it is
 * known at all, FDA-approved, in the Medicaid Drug Rebate Program, and used per its label.
 * A product the order does not identify (an unclassified code such as J3590 without an NDC) is
 * never assumed to be anything: the answer asks for the code that identifies it.
 */

/** One wording for every check, so that the answer states the gap once. */
function unidentified(ctx: EvaluationContext): CheckOutcome {
  return outcome('missing', {
    evidence: [{ reference: ctx.orderReference, text: `Ordered as ${ctx.product.matchedValue} only` }],
    notes: [
      `${ctx.product.matchedValue} is an unclassified code and the order names no NDC, RxNorm code or product name the catalog knows: the product is not identified, so it is not known to be FDA-approved or used per its label. Send the NDC.`,
    ],
    infoNeeded: ['detail-code'],
  });
}

function identifiedBy(ctx: EvaluationContext, product: ProductDefinition): string {
  const how = ctx.product.matchedBy === 'name' ? `name "${ctx.product.matchedValue}"` : ctx.product.matchedValue;
  return `${product.name} (${product.nonproprietaryName}) identified by ${how}`;
}

export function productStatus(check: ProductStatusCheck, ctx: EvaluationContext): CheckOutcome {
  const product = ctx.product.product;
  if (!product) return unidentified(ctx);
  const identified = { text: identifiedBy(ctx, product) };
  switch (check.fact) {
    case 'identified':
      return outcome('met', { evidence: [identified] });
    case 'fdaApproved':
      if (product.fdaApproved) {
        return outcome('met', { evidence: [identified, { text: `${product.name} is FDA-approved (product catalog)` }] });
      }
      return outcome('not-met', {
        evidence: [identified],
        notes: [`${product.name} is not FDA-approved${product.regulatoryNote ? `: ${product.regulatoryNote}` : ''}`],
      });
    case 'medicaidDrugRebate': {
      const fact = product.label?.medicaidDrugRebate;
      const source = product.label?.medicaidDrugRebateSource;
      if (fact === true) return outcome('met', { evidence: [{ text: `${product.name}: manufacturer participates in the Medicaid Drug Rebate Program${source ? ` (${source})` : ''}` }] });
      if (fact === false) return outcome('not-met', { notes: [`${product.name}'s manufacturer is not enrolled in the Medicaid Drug Rebate Program`] });
      const status = check.whenUnverified ?? 'missing';
      return outcome(status, {
        notes: [`${product.name}: Medicaid Drug Rebate Program participation is not verified in the product catalog`],
        ...(status === 'missing'
          ? { missing: [{ text: check.missing ?? `Confirmation that the manufacturer of ${product.name} is enrolled in the Medicaid Drug Rebate Program`, category: check.docCategory ?? 'admin' }] }
          : {}),
      });
    }
  }
}

function isUnverified(label: LabelFacts, fact: LabelFactName): boolean {
  return label.status === 'UNVERIFIED' || (label.unverifiedFacts ?? []).includes(fact);
}

/** A "no" that rests on an unverified label fact becomes the configured status (default review). */
function softenUnverified(result: CheckOutcome, label: LabelFacts, fact: LabelFactName, whenUnverified: CriterionStatus, productName: string): CheckOutcome {
  if (result.status !== 'not-met' || !isUnverified(label, fact)) return result;
  return {
    ...result,
    status: whenUnverified,
    notes: [...result.notes, `${productName}: the label's ${fact === 'age' ? 'age limit' : fact} is not verified in the product catalog (${label.source}); the request needs individual review`],
  };
}

function indication(check: OnLabelCheck, ctx: EvaluationContext, product: ProductDefinition, label: LabelFacts): CheckOutcome {
  const missingText = `Diagnosis within the FDA-labeled indication of ${product.name}: ${label.indication}`;
  if (!label.indicationValueSet) {
    return outcome('missing', {
      notes: [`The catalog has no verified diagnosis codes for ${product.name}'s indication`],
      missing: [{ text: missingText, category: 'clinical' }],
    });
  }
  const result = conditionPresent(
    { type: 'conditionPresent', valueSet: label.indicationValueSet, whenOrderReasonOther: 'not-met', orderReasonDecides: true, missing: missingText },
    ctx,
  );
  const softened = softenUnverified(result, label, 'indication', check.whenUnverified ?? 'review', product.name);
  return softened.status === 'not-met' ? { ...softened, notes: [...softened.notes, `Outside the FDA-labeled indication: ${label.indication}`] } : softened;
}

function population(check: OnLabelCheck, ctx: EvaluationContext, product: ProductDefinition, label: LabelFacts, aspect: 'age' | 'sex'): CheckOutcome | undefined {
  const whenUnverified = check.whenUnverified ?? 'review';
  if (aspect === 'age') {
    const bounds = {
      ...(label.minAgeYears !== undefined ? { minYears: label.minAgeYears } : {}),
      ...(label.maxAgeYearsExclusive !== undefined ? { maxYearsExclusive: label.maxAgeYearsExclusive } : {}),
      ...(label.maxAgeYearsInclusive !== undefined ? { maxYearsInclusive: label.maxAgeYearsInclusive } : {}),
    };
    if (Object.keys(bounds).length === 0) return undefined;
    const result = ageCheck({ type: 'age', ...bounds, missing: 'Date of birth' }, ctx);
    return softenUnverified(result, label, 'age', whenUnverified, product.name);
  }
  if (!label.sex) return undefined;
  return softenUnverified(sexCheck({ type: 'sex', allowed: [label.sex] }, ctx), label, 'sex', whenUnverified, product.name);
}

function dose(check: OnLabelCheck, ctx: EvaluationContext, product: ProductDefinition, label: LabelFacts): CheckOutcome {
  if (product.dosing?.perKg && check.weightValueSet) {
    return dosePerKg({ type: 'dosePerKg', weightValueSet: check.weightValueSet }, ctx);
  }
  // Cell therapies are dosed by manufacturing (CD34+ cells/kg), not by the order: say so, visibly.
  return outcome('met', {
    evidence: [{ text: `Labelled dose: ${label.doseBasis ?? 'see the label'} (the catalog has no per-kg dose to compare the order with)` }],
  });
}

/** The dosage form and strength: the ordered NDC must be a labelled package of the product. */
function form(ctx: EvaluationContext, product: ProductDefinition): CheckOutcome {
  const ordered = ctx.facts.codings.filter((c) => c.system === 'ndc');
  const known = new Set([
    ...product.codes.filter((c) => c.system === 'ndc').map((c) => normaliseNdc(c.code)),
    ...(product.dosing?.kits ?? []).map((k) => normaliseNdc(k.ndc)),
  ]);
  const labelled = ordered.find((c) => known.has(c.code));
  if (labelled) return outcome('met', { evidence: [{ reference: ctx.orderReference, text: `NDC ${labelled.code}: a labelled package of ${product.name}` }] });
  if (ordered.length > 0) {
    return outcome('review', {
      evidence: [{ reference: ctx.orderReference, text: `NDC ${ordered.map((c) => c.code).join(', ')}` }],
      notes: [`The ordered NDC is not a package of ${product.name} known to the catalog: the dosage form and strength need review`],
    });
  }
  return outcome('missing', {
    notes: ['The order names no NDC: the labelled dosage form and strength are shown by the NDC, which the prior authorization request and the claim must carry'],
    infoNeeded: ['detail-code'],
  });
}

/**
 * Use per the FDA label: the order's reason (or else the patient's diagnoses) within the label
 * indication, the patient's age and sex within the label's limits, the labelled dose, and a
 * labelled package. Facts the catalog marks unverified never deny on their own.
 */
export function onLabel(check: OnLabelCheck, ctx: EvaluationContext): CheckOutcome {
  const product = ctx.product.product;
  if (!product) return unidentified(ctx);
  const label = product.label;
  if (!label) {
    return outcome('missing', {
      notes: [`The product catalog has no FDA label facts for ${product.name}`],
      missing: [{ text: check.missing ?? `Documentation that the use of ${product.name} follows its FDA label`, category: 'clinical' }],
    });
  }
  const parts: CheckOutcome[] = [];
  for (const aspect of check.aspects) {
    if (aspect === 'indication') parts.push(indication(check, ctx, product, label));
    else if (aspect === 'age' || aspect === 'sex') {
      const part = population(check, ctx, product, label, aspect);
      if (part) parts.push(part);
    } else if (aspect === 'dose') parts.push(dose(check, ctx, product, label));
    else parts.push(form(ctx, product));
  }
  if (parts.length === 0) return outcome('met', { evidence: [{ text: `${product.name}: the label sets no limit of this kind` }] });
  return allOf(parts);
}
