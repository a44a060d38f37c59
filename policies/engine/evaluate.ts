import type { CodeableConcept, Coverage } from 'fhir/r4.js';
import { runCheck } from './checks/index.ts';
import type { CompiledPolicy, EvaluationContext } from './context.ts';
import { addMonths, ageInYears, toDay } from './dates.ts';
import { describeConcept } from './checks/conditions.ts';
import { codingForEmission, orderProductFacts, type OrderProductFacts, type ProductCatalog } from './products.ts';
import type { ClinicalRecord, OrderResource, ResourceIndex } from './record.ts';
import { objectsOf } from './fhir-arrays.ts';
import { referenceOf } from './record.ts';
import { conceptCodings, describeCoding } from './terminology.ts';
import type {
  CoverageRule,
  CriterionDefinition,
  CriterionResult,
  Determination,
  InfoNeeded,
  MatchedProduct,
  PaNeededCode,
  PolicyDecision,
  ProductDefinition,
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
  // An unreadable birthDate ("unknown", a number) is no age, not a failed evaluation.
  const birthDay = toDay(record.patient?.birthDate);
  const age = birthDay ? ageInYears(birthDay, serviceDate) : undefined;
  const notes = (doc.notes ?? [])
    .filter((n) => !n.productLineFamilies || (family !== undefined && n.productLineFamilies.includes(family)))
    .filter((n) => n.maxAgeYearsExclusive === undefined || (age !== undefined && age < n.maxAgeYearsExclusive))
    .filter((n) => !n.products || (product.product !== null && n.products.includes(product.product.id)))
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
    instructions: [...(doc.instructions ?? []).map((i) => i.text), ...derivedInstructions(input, determination)],
  };
}

/** Instructions that depend on the order: the billing codes and NDC the PA and claim must carry, and label facts. */
function derivedInstructions(input: PolicyEvaluationInput, determination: Determination): string[] {
  const doc = input.policy.doc;
  const product = input.product.product;
  const out: string[] = [];
  if (doc.billing?.ndcRequired) {
    const ordered = [...new Set(input.facts.codings.filter((c) => c.system === 'ndc').map((c) => c.code))];
    const known = product ? input.catalog.codesOf(product, 'ndc').map((c) => c.code) : [];
    const ndc = ordered.length > 0 ? `NDC ${ordered.join(', ')}` : known.length > 0 ? `the NDC (${known.join(' or ')})` : 'the NDC of the product';
    const hcpcs = determination.billingCodes.map((c) => c.code);
    const codes = hcpcs.length > 0 ? `HCPCS ${hcpcs.join(', ')}` : 'the product-specific HCPCS code';
    out.push(`The prior authorization request and the claim must carry ${codes} and ${ndc} (${doc.policyNumber} ${doc.billing.section}).`);
  }
  const label = product?.label;
  for (const fact of doc.labelInstructions?.facts ?? []) {
    if (fact === 'warnings' && label?.warnings) out.push(`${product!.name} label warnings and precautions: ${label.warnings}`);
    if (fact === 'doseBasis' && label?.doseBasis) out.push(`${product!.name} labelled dose: ${label.doseBasis}`);
  }
  return out;
}

function unique(texts: string[]): string[] {
  return [...new Set(texts)];
}

/**
 * The HCPCS code(s) the claim must carry on the service date: the product-specific code in
 * effect, or the policy's unclassified code (J3590) for an FDA-approved product that has none yet.
 */
function billingCodesOf(input: PolicyEvaluationInput, product: ProductDefinition, serviceDate: string): Determination['billingCodes'] {
  const specific = input.catalog.billingCodes(product, serviceDate).map((c) => codingForEmission(c, c.note));
  const unclassified = input.policy.doc.billing?.unclassifiedCode;
  if (specific.length > 0 || !unclassified || !product.fdaApproved) return specific;
  return [codingForEmission({ system: unclassified.system, code: unclassified.code }, unclassified.display)];
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
  const billingCodes = product ? billingCodesOf(input, product, serviceDate) : [];
  const limit = product ? doc.quantityLimits?.find((q) => q.product === product.id) : undefined;
  // The limit travels with every answer, not-covered included: it says what would be authorized.
  const base: Determination = {
    covered: 'covered',
    docNeeded: [],
    infoNeeded: [],
    reasons: [],
    billingCodes,
    routes: [],
    ...(limit ? { allowedQuantity: { ...limit.quantity, per: limit.per } } : {}),
  };
  const policyPa: PaNeededCode = doc.priorAuth === 'always' ? 'auth-needed' : 'no-auth';

  const exclusion = rules.find((r) => r.effect === 'not-covered');
  if (exclusion) {
    return { ...base, covered: 'not-covered', reasons: [{ text: exclusion.reason }], routes: exclusion.route ? [exclusion.route] : [] };
  }
  const notMet = results.filter((r) => r.status === 'not-met');
  const notMetReasons = unique(notMet.map((r) => definitionOf(input, r.id)?.notMet?.reason ?? `${r.label}: ${r.notes[0] ?? 'not met'}`));

  // The member's own plan terms govern: the policy's verdict is information, not the answer.
  const advisory = rules.find((r) => r.effect === 'conditional' && r.criteriaAdvisory);
  if (advisory) {
    return {
      ...base,
      covered: 'conditional',
      paNeeded: advisory.paNeeded ?? policyPa,
      infoNeeded: ['OTH'],
      reasons: [{ text: advisory.reason }, ...notMetReasons.map((text) => ({ text: `Under ${doc.policyNumber} itself: ${text}` }))],
      routes: advisory.route ? [advisory.route] : [],
    };
  }
  if (notMet.length > 0) {
    const routes = [...new Set(notMet.map((r) => definitionOf(input, r.id)?.notMet?.route).filter((x): x is string => !!x))];
    return { ...base, covered: 'not-covered', reasons: notMetReasons.map((text) => ({ text })), routes };
  }

  const determination: Determination = { ...base, paNeeded: rules.find((r) => r.effect === 'conditional' && r.paNeeded)?.paNeeded ?? policyPa };
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
  for (const r of results) {
    if (!r.infoNeeded || r.infoNeeded.length === 0) continue;
    for (const code of r.infoNeeded) info.add(code);
    // Say why the order lacks detail (a product code, a treatment site), once per distinct reason.
    const why = r.notes[0] ?? `${r.label}: more detail needed on the order`;
    if (!determination.reasons.some((x) => x.text === why)) determination.reasons.push({ text: why });
  }

  const items = missing.flatMap((r) => r.missing);
  if (items.length > 0) {
    determination.docNeeded = [...new Set(items.map((i) => i.category))];
    determination.reasons.push({ text: `Documentation needed: ${items.map((i) => i.text).join('; ')}`, documentation: true });
  }
  if (unavailable.length > 0) {
    determination.covered = 'indeterminate';
    determination.reasons.push({ code: 'technical', text: [...new Set(unavailable.flatMap((r) => r.notes))].join('; ') || 'Required data could not be retrieved' });
  } else if (info.size > 0) {
    determination.covered = 'conditional';
  }
  determination.infoNeeded = [...info];

  if (doc.authorizationMonths && determination.covered !== 'indeterminate') {
    determination.expiryDate = addMonths(input.today, doc.authorizationMonths);
  }
  return determination;
}

// ---------------------------------------------------------------------------------------------
// Companion services: orders that name no product but are judged with one (fertility preservation)
// ---------------------------------------------------------------------------------------------

export interface CompanionEvaluationInput {
  /** The payer's policies in effect that judge companion services (PolicyRegistry.companionPoliciesFor). */
  policies: CompiledPolicy[];
  catalog: ProductCatalog;
  record: ClinicalRecord;
  index: ResourceIndex;
  order: OrderResource;
  coverage: Coverage;
  today: string;
}

function orderConcept(order: OrderResource): CodeableConcept | undefined {
  if (order.resourceType === 'ServiceRequest') return order.code;
  if (order.resourceType === 'DeviceRequest') return order.codeCodeableConcept;
  return order.medicationCodeableConcept;
}

function orderReasonConcepts(order: OrderResource, index: ResourceIndex): CodeableConcept[] {
  const out: CodeableConcept[] = [...objectsOf(order.reasonCode)];
  for (const ref of objectsOf(order.reasonReference)) {
    const resolved = index.resolve(ref, order);
    if (resolved?.resourceType === 'Condition' && resolved.code) out.push(resolved.code);
  }
  return out;
}

function inPolicyScope(policy: CompiledPolicy, product: ProductDefinition | null | undefined): product is ProductDefinition {
  if (!product) return false;
  const scope = policy.doc.products;
  return (scope.ids ?? []).includes(product.id) || (scope.category !== undefined && product.categories.includes(scope.category));
}

/** The policy's products the patient is being given alongside: other draft orders of this call, or planned orders. */
function accompanyingProducts(input: CompanionEvaluationInput, policy: CompiledPolicy): { reference: string; product: ProductDefinition; origin: string }[] {
  const found: { reference: string; product: ProductDefinition; origin: string }[] = [];
  const consider = (order: OrderResource, origin: string) => {
    const product = input.catalog.identify(orderProductFacts(order, input.index))?.product;
    if (inPolicyScope(policy, product)) found.push({ reference: referenceOf(order), product, origin });
  };
  for (const draft of input.record.draftOrders) if (draft !== input.order) consider(draft, 'ordered in this session');
  const drafts = new Set(input.record.draftOrders.map((o) => referenceOf(o)));
  for (const planned of input.record.medicationRequests) {
    if (['active', 'draft', 'on-hold'].includes(planned.status) && !drafts.has(referenceOf(planned))) consider(planned, `planned (${planned.status})`);
  }
  return found;
}

function capitalise(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/**
 * Judges an order that names no product of its own under the policies that cover services given
 * with their products (WNC.CP.299 IV.A: fertility preservation with a cell or gene therapy). The
 * service is judged only when such a product is ordered or planned for the patient.
 */
export function evaluateCompanionOrder(input: CompanionEvaluationInput): PolicyDecision[] {
  const { order } = input;
  const serviceDate = serviceDateOf(order, input.today);
  const family = productLineFamily(input.coverage);
  const concept = orderConcept(order);
  const reasons = orderReasonConcepts(order, input.index);
  const decisions: PolicyDecision[] = [];
  for (const policy of input.policies) {
    const doc = policy.doc;
    const line = family ? doc.productLines.find((l) => l.family === family) : undefined;
    if (family && !line) continue;
    for (const companion of doc.companionServices ?? []) {
      const codes = policy.valueSets.get(companion.orderCodes);
      const reasonSet = companion.orderReasons ? policy.valueSets.get(companion.orderReasons) : undefined;
      const byCode = codes?.match(concept);
      const byReason = reasonSet ? reasons.find((r) => reasonSet.matches(r)) : undefined;
      if (!byCode && !byReason) continue;
      const accompanying = accompanyingProducts(input, policy);
      if (accompanying.length === 0) continue;
      const matched = byCode?.coding
        ? describeCoding({ system: byCode.coding.system, code: byCode.coding.code })
        : byCode?.text ?? (byReason && reasonSet ? describeConcept(reasonSet, byReason) : 'service');
      const display = `${capitalise(codes?.title ?? companion.label)} (${matched})`;
      const product: MatchedProduct = { product: null, matchedBy: 'companion-service', matchedValue: matched, display };
      const evidence = [
        { reference: referenceOf(order), text: `${display}${byReason && !byCode ? ' (by the order reason)' : ''}` },
        ...accompanying.map((a) => ({ reference: a.reference, text: `${a.product.name} ${a.origin}` })),
      ];
      decisions.push({
        policy: { id: doc.id, title: doc.title, policyNumber: doc.policyNumber, version: doc.version, payer: doc.payer },
        product,
        orderReference: referenceOf(order),
        serviceDate,
        ...(family ? { productLine: { family, name: line?.name ?? PRODUCT_LINE_NAMES[family] ?? `SOPT ${family}` } } : {}),
        coverageRules: [],
        results: [{ id: companion.id, kind: 'rule', label: companion.label, section: companion.section, status: 'not-met', evidence, missing: [], notes: [companion.reason] }],
        determination: { covered: 'not-covered', docNeeded: [], infoNeeded: [], reasons: [{ text: companion.reason }], billingCodes: [], routes: [] },
        notes: [],
        instructions: [],
      });
    }
  }
  return decisions;
}
