import type { Coverage } from 'fhir/r4.js';
import { runCheck } from './checks/index.ts';
import type { CompiledPolicy, EvaluationContext } from './context.ts';
import { addMonths, ageInYears, toDay } from './dates.ts';
import { codingForEmission, type OrderProductFacts, type ProductCatalog } from './products.ts';
import type { ClinicalRecord, OrderResource, ResourceIndex } from './record.ts';
import { referenceOf } from './record.ts';
import { conceptCodings } from './terminology.ts';
import type {
  CoverageRule,
  CriterionDefinition,
  CriterionResult,
  Determination,
  InfoNeeded,
  MatchedProduct,
  PolicyDecision,
} from './types.ts';

export interface PolicyEvaluationInput {
  policy: CompiledPolicy;
  catalog: ProductCatalog;
  record: ClinicalRecord;
  index: ResourceIndex;
  order: OrderResource;
  facts: OrderProductFacts;
  product: MatchedProduct;
  coverage: Coverage;
  /** Payer-configured member groups this coverage belongs to (e.g. the State Health Plan). */
  memberGroups: string[];
  /** The evaluation day, YYYY-MM-DD. */
  today: string;
}

const PRODUCT_LINE_NAMES: Record<string, string> = {
  '1': 'Medicare',
  '2': 'Medicaid',
  '3': 'Other government',
  '4': 'Department of Corrections',
  '5': 'Private health insurance',
  '6': 'Blue Cross/Blue Shield',
  '7': 'Managed care (unspecified)',
  '8': 'No payment',
  '9': 'Miscellaneous',
};

/** The Source of Payment Typology family (first digit) of Coverage.type, when coded. */
export function productLineFamily(coverage: Coverage): string | undefined {
  const sopt = conceptCodings(coverage.type).find((c) => c.system === 'sopt');
  const family = sopt?.code.charAt(0);
  return family && /^[1-9]$/.test(family) ? family : undefined;
}

/** The day the service is planned for: the order's occurrence or validity start, never in the past. */
export function serviceDateOf(order: OrderResource, today: string): string {
  let planned: string | undefined;
  if (order.resourceType === 'MedicationRequest') planned = order.dispenseRequest?.validityPeriod?.start;
  else if (order.resourceType === 'ServiceRequest') planned = order.occurrenceDateTime ?? order.occurrencePeriod?.start;
  else if (order.resourceType === 'DeviceRequest') planned = order.occurrenceDateTime ?? order.occurrencePeriod?.start;
  const day = toDay(planned);
  return day && day > today ? day : today;
}

function ruleApplies(rule: CoverageRule, family: string | undefined, groups: string[]): boolean {
  const { productLineFamilies, productLineUnknown, memberGroup } = rule.when;
  if (productLineFamilies && !(family !== undefined && productLineFamilies.includes(family))) return false;
  if (productLineUnknown !== undefined && productLineUnknown !== (family === undefined)) return false;
  if (memberGroup && !groups.includes(memberGroup)) return false;
  return true;
}

function criterionApplies(def: CriterionDefinition, product: MatchedProduct): boolean {
  if (!def.products) return true;
  return product.product !== null && def.products.includes(product.product.id);
}

/**
 * Judges one order under one policy: a pure function of its inputs. Returns undefined when the
 * policy does not apply to this member's product line (the service then asserts nothing).
 */
export function evaluatePolicy(input: PolicyEvaluationInput): PolicyDecision | undefined {
  const { policy, record, order, product, today } = input;
  const doc = policy.doc;
  const serviceDate = serviceDateOf(order, today);
  const family = productLineFamily(input.coverage);
  const line = family ? doc.productLines.find((l) => l.family === family) : undefined;

  const rules = doc.coverageRules.filter((r) => ruleApplies(r, family, input.memberGroups));
  if (rules.some((r) => r.effect === 'out-of-scope')) return undefined;
  // A known product line that the policy neither covers nor names in a rule is not ours to judge.
  if (family && !line && rules.length === 0) return undefined;

  const ctx: EvaluationContext = {
    policy,
    record,
    index: input.index,
    order,
    orderReference: referenceOf(order),
    facts: input.facts,
    product,
    catalog: input.catalog,
    serviceDate,
    today,
  };

  const excluded = rules.some((r) => r.effect === 'not-covered');
  // A benefit exclusion decides on its own; judging clinical criteria for it would only add noise.
  const results: CriterionResult[] = excluded
    ? []
    : doc.criteria
        .filter((def) => criterionApplies(def, product))
        .map((def) => ({
          id: def.id,
          kind: def.kind,
          ...(def.number !== undefined ? { number: def.number } : {}),
          label: def.label,
          section: def.section,
          ...runCheck(def.check, ctx),
        }));

  const determination = determine(input, results, rules, serviceDate);
  const age = record.patient?.birthDate ? ageInYears(toDay(record.patient.birthDate)!, serviceDate) : undefined;
  const notes = (doc.notes ?? [])
    .filter((n) => !n.productLineFamilies || (family !== undefined && n.productLineFamilies.includes(family)))
    .filter((n) => n.maxAgeYearsExclusive === undefined || (age !== undefined && age < n.maxAgeYearsExclusive))
    .map((n) => n.text);
  for (const rule of rules) if (rule.effect === 'note') notes.push(rule.reason);

  return {
    policy: { id: doc.id, title: doc.title, policyNumber: doc.policyNumber, version: doc.version, payer: doc.payer },
    product,
    orderReference: ctx.orderReference,
    serviceDate,
    ...(family ? { productLine: { family, name: line?.name ?? PRODUCT_LINE_NAMES[family] ?? `SOPT ${family}` } } : {}),
    coverageRules: rules.map((r) => ({ id: r.id, effect: r.effect, reason: r.reason, ...(r.route ? { route: r.route } : {}) })),
    results,
    determination,
    notes,
    instructions: (doc.instructions ?? []).map((i) => i.text),
  };
}

function definitionOf(input: PolicyEvaluationInput, id: string): CriterionDefinition | undefined {
  return input.policy.doc.criteria.find((c) => c.id === id);
}

/**
 * Turns criterion results into the CRD coverage answer:
 * exclusion or a criterion not met → not-covered; data that could not be retrieved →
 * indeterminate (technical); review or timing → conditional with info-needed; missing
 * documentation → doc-needed; otherwise covered. Prior authorization as the policy says.
 */
function determine(input: PolicyEvaluationInput, results: CriterionResult[], rules: CoverageRule[], serviceDate: string): Determination {
  const doc = input.policy.doc;
  const product = input.product.product;
  const billingCodes = product
    ? input.catalog.billingCodes(product, serviceDate).map((c) => codingForEmission(c, c.note))
    : [];
  const base: Determination = { covered: 'covered', docNeeded: [], infoNeeded: [], reasons: [], billingCodes, routes: [] };

  const exclusion = rules.find((r) => r.effect === 'not-covered');
  if (exclusion) {
    return { ...base, covered: 'not-covered', reasons: [{ text: exclusion.reason }], routes: exclusion.route ? [exclusion.route] : [] };
  }
  const notMet = results.filter((r) => r.status === 'not-met');
  if (notMet.length > 0) {
    const reasons = notMet.map((r) => ({ text: definitionOf(input, r.id)?.notMet?.reason ?? `${r.label}: ${r.notes[0] ?? 'not met'}` }));
    const routes = [...new Set(notMet.map((r) => definitionOf(input, r.id)?.notMet?.route).filter((x): x is string => !!x))];
    return { ...base, covered: 'not-covered', reasons, routes };
  }

  const determination: Determination = { ...base, paNeeded: doc.priorAuth === 'always' ? 'auth-needed' : 'no-auth' };
  const info = new Set<InfoNeeded>();
  const unavailable = results.filter((r) => r.status === 'unavailable');
  const review = results.filter((r) => r.status === 'review');
  const deferred = results.filter((r) => r.status === 'deferred');
  const missing = results.filter((r) => r.status === 'missing');
  const conditionalRules = rules.filter((r) => r.effect === 'conditional');

  for (const r of review) {
    info.add('OTH');
    determination.reasons.push({ text: definitionOf(input, r.id)?.review?.reason ?? `${r.label}: individual review` });
  }
  for (const r of deferred) {
    info.add('timeframe');
    const why = definitionOf(input, r.id)?.deferred?.reason ?? r.label;
    determination.reasons.push({ text: r.earliestDate ? `${why} (earliest ${r.earliestDate})` : why });
  }
  const earliest = deferred.map((r) => r.earliestDate).filter((d): d is string => !!d).sort().at(-1);
  if (earliest) determination.earliestDate = earliest;
  for (const rule of conditionalRules) {
    info.add('OTH');
    determination.reasons.push({ text: rule.reason });
    if (rule.route) determination.routes.push(rule.route);
  }
  for (const r of results) for (const code of r.infoNeeded ?? []) info.add(code);

  const items = missing.flatMap((r) => r.missing);
  if (items.length > 0) {
    determination.docNeeded = [...new Set(items.map((i) => i.category))];
    determination.reasons.push({ text: `Documentation needed: ${items.map((i) => i.text).join('; ')}`, documentation: true });
  }
  if (unavailable.length > 0) {
    determination.covered = 'indeterminate';
    determination.reasons.push({ code: 'technical', text: unavailable.flatMap((r) => r.notes).join('; ') || 'Required data could not be retrieved' });
  } else if (info.size > 0) {
    determination.covered = 'conditional';
  }
  determination.infoNeeded = [...info];

  if (doc.authorizationMonths && determination.covered !== 'indeterminate') {
    determination.expiryDate = addMonths(input.today, doc.authorizationMonths);
  }
  const limit = product ? doc.quantityLimits?.find((q) => q.product === product.id) : undefined;
  if (limit) determination.allowedQuantity = { ...limit.quantity, per: limit.per };
  return determination;
}
