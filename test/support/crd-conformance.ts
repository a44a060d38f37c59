// A reusable conformance checker for CDS Hooks 2.0 / Da Vinci CRD 2.2 hook responses, written
// from the specifications (CDS Hooks 2.0.1 "CDS Service Response"; CRD 2.2.1 cards.md, the
// coverage-information extension and its invariants crd-ci-q1…q9; the Inferno CRD server checks).
// It checks what a CDS client and Inferno would check, plus the CRD invariants as code, so that any
// policy's tests can run it over their responses:
//
//   assertCrdConformant(res.body, { request: body, payerName: 'Jefferson Health Plans' });
//
// `crdViolations` returns the problems as strings instead of throwing, for tests that expect some.
import assert from 'node:assert/strict';
import { isDeepStrictEqual } from 'node:util';

export const CARD_TYPE_SYSTEM = 'http://terminology.hl7.org/CodeSystem/cdshooks-card-type';
export const COVERAGE_INFORMATION_URL = 'http://hl7.org/fhir/us/davinci-crd/StructureDefinition/ext-coverage-information';
export const CRD_TEMP_CODES = 'http://hl7.org/fhir/us/davinci-crd/CodeSystem/temp';
export const ASSOCIATED_RESOURCE = 'davinci-crd.associated-resource';

/** CRD 2.2 coverage-information value sets (CoverageInformation.fsh and its code systems). */
export const COVERED_CODES = new Set(['covered', 'not-covered', 'conditional', 'indeterminate']);
export const PA_NEEDED_CODES = new Set(['no-auth', 'auth-needed', 'satisfied', 'performpa', 'conditional', 'indeterminate']);
export const DOC_NEEDED_CODES = new Set(['clinical', 'admin', 'patient', 'conditional', 'indeterminate']);
export const DOC_PURPOSE_CODES = new Set(['withpa', 'withclaim', 'withorder', 'retain-doc', 'OTH']);
export const INFO_NEEDED_CODES = new Set(['performer', 'location', 'timeframe', 'contract-window', 'detail-code', 'OTH']);
/** coverageAssertionReasons (extensible): a reason with none of these codings needs text (crd-ci-q7). */
export const STANDARD_REASON_CODES = new Set(['gold-card', 'no-member-found', 'no-active-coverage', 'coverage-not-found', 'auth-out-network', 'technical']);
export const DETAIL_CATEGORIES = new Set(['cat-limitation', 'cat-decisional', 'cat-other']);

/** The value[x] type each sub-extension must use. */
const SUB_EXTENSION_VALUE: Record<string, string | null> = {
  coverage: 'valueReference',
  covered: 'valueCode',
  'pa-needed': 'valueCode',
  'doc-needed': 'valueCode',
  'doc-purpose': 'valueCode',
  'info-needed': 'valueCode',
  billingCode: 'valueCoding',
  reason: 'valueCodeableConcept',
  detail: null,
  dependency: 'valueReference',
  questionnaire: 'valueCanonical',
  date: 'valueDate',
  'coverage-assertion-id': 'valueString',
  'satisfied-pa-id': 'valueString',
  contact: 'valueContactDetail',
  'expiry-date': 'valueDate',
};
const SINGLE = new Set(['coverage', 'covered', 'pa-needed', 'date', 'coverage-assertion-id', 'satisfied-pa-id', 'expiry-date']);
const REQUIRED = ['coverage', 'covered', 'date', 'coverage-assertion-id'];
const DETAIL_VALUE_TYPES = ['valueBoolean', 'valueString', 'valueUrl', 'valueQuantity', 'valuePeriod'];

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function asArray(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function valueKeys(ext: Json): string[] {
  return Object.keys(ext).filter((k) => k.startsWith('value'));
}

function isHttpUrl(value: unknown): boolean {
  if (typeof value !== 'string') return false;
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:';
  } catch {
    return false;
  }
}

/** The first path at which two JSON values differ, for readable failures. */
export function firstDifference(a: unknown, b: unknown, path = ''): string | undefined {
  if (isDeepStrictEqual(a, b)) return undefined;
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length !== b.length) return `${path || '(root)'} (length ${a.length} vs ${b.length})`;
    for (let i = 0; i < a.length; i++) {
      const d = firstDifference(a[i], b[i], `${path}[${i}]`);
      if (d) return d;
    }
  }
  if (isObject(a) && isObject(b)) {
    for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) {
      const d = firstDifference(a[key], b[key], path ? `${path}.${key}` : key);
      if (d) return d;
    }
  }
  return path || '(root)';
}

/** CDS Hooks §JSON: no null, "", [] or {} unless the spec says otherwise. */
function emptyValues(value: unknown, path: string, out: string[]): void {
  if (value === null) out.push(`${path} is null`);
  else if (value === '') out.push(`${path} is an empty string`);
  else if (Array.isArray(value)) {
    if (value.length === 0) out.push(`${path} is an empty array`);
    value.forEach((v, i) => emptyValues(v, `${path}[${i}]`, out));
  } else if (isObject(value)) {
    if (Object.keys(value).length === 0) out.push(`${path} is an empty object`);
    for (const [k, v] of Object.entries(value)) emptyValues(v, `${path}.${k}`, out);
  }
}

/** Every coverage-information extension on a resource. */
export function coverageInformationOf(resource: unknown): Json[] {
  if (!isObject(resource)) return [];
  return asArray(resource.extension).filter((e): e is Json => isObject(e) && e.url === COVERAGE_INFORMATION_URL);
}

/** A coverage-information extension read into plain fields, for assertions in tests. */
export interface CoverageInformationSummary {
  coverage: string | undefined;
  covered: string | undefined;
  paNeeded: string | undefined;
  docNeeded: string[];
  docPurpose: string[];
  infoNeeded: string[];
  reasons: { codes: string[]; text: string | undefined }[];
  details: { category: string | undefined; code: string | undefined; value: unknown }[];
  date: string | undefined;
  assertionId: string | undefined;
  satisfiedPaId: string | undefined;
  questionnaires: string[];
}

export function summariseCoverageInformation(ext: Json): CoverageInformationSummary {
  const subs = asArray(ext.extension).filter(isObject);
  const codes = (url: string) => subs.filter((s) => s.url === url).map((s) => str(s.valueCode) ?? '');
  const one = (url: string, key: string) => str(subs.find((s) => s.url === url)?.[key]);
  return {
    coverage: str((subs.find((s) => s.url === 'coverage')?.valueReference as Json | undefined)?.reference),
    covered: one('covered', 'valueCode'),
    paNeeded: one('pa-needed', 'valueCode'),
    docNeeded: codes('doc-needed'),
    docPurpose: codes('doc-purpose'),
    infoNeeded: codes('info-needed'),
    reasons: subs
      .filter((s) => s.url === 'reason')
      .map((s) => {
        const concept = isObject(s.valueCodeableConcept) ? s.valueCodeableConcept : {};
        return { codes: asArray(concept.coding).filter(isObject).map((c) => str(c.code) ?? ''), text: str(concept.text) };
      }),
    details: subs
      .filter((s) => s.url === 'detail')
      .map((s) => {
        const parts = asArray(s.extension).filter(isObject);
        const code = parts.find((p) => p.url === 'code')?.valueCodeableConcept as Json | undefined;
        const value = parts.find((p) => p.url === 'value');
        return {
          category: str(parts.find((p) => p.url === 'category')?.valueCode),
          code: str((asArray(code?.coding)[0] as Json | undefined)?.code),
          value: value ? value[valueKeys(value)[0] ?? ''] : undefined,
        };
      }),
    date: one('date', 'valueDate'),
    assertionId: one('coverage-assertion-id', 'valueString'),
    satisfiedPaId: one('satisfied-pa-id', 'valueString'),
    questionnaires: subs.filter((s) => s.url === 'questionnaire').map((s) => str(s.valueCanonical) ?? ''),
  };
}

/**
 * The structure of one coverage-information extension and the invariants crd-ci-q1…q9, each as
 * code. Returns the violations, each prefixed with `where`.
 */
export function coverageInformationViolations(ext: Json, where: string, hook: 'order-sign' | 'order-select' = 'order-sign'): string[] {
  const out: string[] = [];
  const v = (message: string) => out.push(`${where}: ${message}`);
  if (ext.url !== COVERAGE_INFORMATION_URL) v(`url is ${String(ext.url)}`);
  if (valueKeys(ext).length > 0) v('a complex extension must not have a value[x]');
  const subs = asArray(ext.extension);
  if (subs.length === 0) v('has no sub-extensions');
  const counts = new Map<string, number>();
  subs.forEach((raw, i) => {
    if (!isObject(raw)) {
      v(`extension[${i}] is not an object`);
      return;
    }
    const url = str(raw.url) ?? '';
    counts.set(url, (counts.get(url) ?? 0) + 1);
    if (!(url in SUB_EXTENSION_VALUE)) {
      v(`extension[${i}] has unknown url "${url}"`);
      return;
    }
    const expected = SUB_EXTENSION_VALUE[url];
    const keys = valueKeys(raw);
    if (expected === null) {
      // detail: category 1..1, code 1..1, value 1..1, qualification 0..1
      const parts = asArray(raw.extension).filter(isObject);
      const part = (u: string) => parts.filter((p) => p.url === u);
      if (keys.length > 0) v(`detail must not have a value[x]`);
      const category = part('category');
      if (category.length !== 1 || !DETAIL_CATEGORIES.has(str(category[0]?.valueCode) ?? '')) v(`detail needs one category from ${[...DETAIL_CATEGORIES].join('|')}`);
      const code = part('code');
      const coding = asArray((code[0]?.valueCodeableConcept as Json | undefined)?.coding).filter(isObject);
      if (code.length !== 1 || coding.length === 0 || !coding.every((c) => str(c.system) && str(c.code))) v('detail needs one code CodeableConcept with system and code');
      const value = part('value');
      if (value.length !== 1 || valueKeys(value[0]!).length !== 1 || !DETAIL_VALUE_TYPES.includes(valueKeys(value[0]!)[0]!)) v(`detail needs one value of ${DETAIL_VALUE_TYPES.join('|')}`);
      if (part('qualification').length > 1) v('detail has more than one qualification');
      for (const p of parts) if (!['category', 'code', 'value', 'qualification'].includes(str(p.url) ?? '')) v(`detail has unknown part "${String(p.url)}"`);
      const period = value[0]?.valuePeriod as Json | undefined;
      if (period && !str(period.start) && !str(period.end)) v('detail period has neither start nor end');
      return;
    }
    if (keys.length !== 1 || keys[0] !== expected) v(`${url} must carry exactly one ${expected} (has ${keys.join(', ') || 'none'})`);
    const value = raw[expected ?? ''];
    switch (url) {
      case 'coverage':
        // Relative ("Coverage/1") or absolute ("http://ehr/fhir/Coverage/1"), as in the CRD examples.
        if (!/(^|\/)Coverage\/[A-Za-z0-9\-.]{1,64}$/.test(str((value as Json | undefined)?.reference) ?? '')) v('coverage must reference a Coverage');
        break;
      case 'covered':
        if (!COVERED_CODES.has(str(value) ?? '')) v(`covered "${String(value)}" is not a coverageInfo code`);
        break;
      case 'pa-needed':
        if (!PA_NEEDED_CODES.has(str(value) ?? '')) v(`pa-needed "${String(value)}" is not a coveragePaDetail code`);
        break;
      case 'doc-needed':
        if (!DOC_NEEDED_CODES.has(str(value) ?? '')) v(`doc-needed "${String(value)}" is not an AdditionalDocumentation code`);
        break;
      case 'doc-purpose':
        if (!DOC_PURPOSE_CODES.has(str(value) ?? '')) v(`doc-purpose "${String(value)}" is not a DocReason code`);
        break;
      case 'info-needed':
        if (!INFO_NEEDED_CODES.has(str(value) ?? '')) v(`info-needed "${String(value)}" is not an informationNeeded code`);
        break;
      case 'billingCode':
        if (!str((value as Json | undefined)?.system) || !str((value as Json | undefined)?.code)) v('billingCode needs system and code');
        break;
      case 'date':
      case 'expiry-date':
        if (!/^\d{4}-\d{2}-\d{2}$/.test(str(value) ?? '')) v(`${url} "${String(value)}" is not a FHIR date (YYYY-MM-DD)`);
        break;
      case 'coverage-assertion-id':
      case 'satisfied-pa-id':
        if (!str(value)?.trim()) v(`${url} is empty`);
        break;
      case 'questionnaire':
        if (!str(value)) v('questionnaire must be a canonical URL');
        break;
      case 'reason': {
        const concept = isObject(value) ? value : {};
        if (!str(concept.text) && asArray(concept.coding).length === 0) v('reason has neither coding nor text');
        break;
      }
      default:
        break;
    }
  });
  for (const url of REQUIRED) if ((counts.get(url) ?? 0) !== 1) v(`${url} must appear exactly once (found ${counts.get(url) ?? 0})`);
  for (const url of SINGLE) if ((counts.get(url) ?? 0) > 1) v(`${url} may appear at most once (found ${counts.get(url)})`);

  const s = summariseCoverageInformation(ext);
  const hasReason = s.reasons.length > 0;
  // crd-ci-q1: questionnaire ⇒ doc-needed
  if (s.questionnaires.length > 0 && s.docNeeded.length === 0) v('crd-ci-q1: questionnaire without doc-needed');
  // crd-ci-q2: not-covered ⇒ no pa-needed
  if (s.covered === 'not-covered' && s.paNeeded !== undefined) v('crd-ci-q2: pa-needed on a not-covered assertion');
  // crd-ci-q3: any conditional ⇒ info-needed
  if ((s.covered === 'conditional' || s.paNeeded === 'conditional' || s.docNeeded.includes('conditional')) && s.infoNeeded.length === 0) {
    v('crd-ci-q3: conditional without info-needed');
  }
  // crd-ci-q4: pa-needed satisfied / no-auth (or not covered) ⇒ no doc-purpose withpa
  if ((s.paNeeded === 'satisfied' || s.paNeeded === 'no-auth' || s.covered === 'not-covered') && s.docPurpose.includes('withpa')) {
    v('crd-ci-q4: doc-purpose withpa when no prior authorization is needed');
  }
  // crd-ci-q5: satisfied-pa-id ⇔ pa-needed = satisfied
  if ((s.satisfiedPaId !== undefined) !== (s.paNeeded === 'satisfied')) v('crd-ci-q5: satisfied-pa-id must be present exactly when pa-needed is satisfied');
  // crd-ci-q6: info-needed OTH ⇒ reason
  if (s.infoNeeded.includes('OTH') && !hasReason) v('crd-ci-q6: info-needed OTH without reason');
  // crd-ci-q7: a reason not coded from coverageAssertionReasons ⇒ reason.text
  for (const reason of asArray(ext.extension).filter((e): e is Json => isObject(e) && e.url === 'reason')) {
    const concept = isObject(reason.valueCodeableConcept) ? reason.valueCodeableConcept : {};
    const standard = asArray(concept.coding).some((c) => isObject(c) && c.system === CRD_TEMP_CODES && STANDARD_REASON_CODES.has(str(c.code) ?? ''));
    if (!standard && !str(concept.text)?.trim()) v('crd-ci-q7: a reason not from coverageAssertionReasons has no text');
  }
  // crd-ci-q8: doc-purpose other than "conditional" ⇒ reason
  if (s.docPurpose.some((p) => p !== 'conditional') && !hasReason) v('crd-ci-q8: doc-purpose without reason');
  // crd-ci-q9: any indeterminate ⇒ reason
  if ((s.covered === 'indeterminate' || s.paNeeded === 'indeterminate' || s.docNeeded.includes('indeterminate')) && !hasReason) {
    v('crd-ci-q9: indeterminate without reason');
  }
  // CRD §hook-19: secondary hooks never ask for clinical or administrative documentation
  if (hook === 'order-select' && (s.docNeeded.includes('clinical') || s.docNeeded.includes('admin'))) {
    v('CRD §hook-19: order-select must not request clinical/admin documentation');
  }
  const empties: string[] = [];
  emptyValues(ext, 'extension', empties);
  for (const e of empties) v(`CDS Hooks JSON rule: ${e}`);
  return out;
}

/** A hook request body as the tests send it (see fixtures.hookRequest). */
export interface CheckedRequest {
  hook?: unknown;
  context?: unknown;
  [key: string]: unknown;
}

export interface CrdCheckOptions {
  /** The request the response answers (draft orders, selections, hook). */
  request: CheckedRequest;
  /** The insurer name on the member's card: every card's source.label (CRD §resp-4). */
  payerName: string;
  /** Defaults to request.hook. */
  hook?: 'order-sign' | 'order-select';
  /**
   * coverage-assertion-ids issued by earlier responses; ids in this response must not be among
   * them (different responses ⇒ different ids). The response's ids are added to the set.
   */
  seenAssertionIds?: Set<string>;
  /** Require at least one coverage-information system action (default: false). */
  requireCoverageInformation?: boolean;
}

function draftOrdersOf(request: CheckedRequest): Map<string, Json> {
  const context = isObject(request.context) ? request.context : {};
  const bundle = isObject(context.draftOrders) ? context.draftOrders : {};
  const out = new Map<string, Json>();
  for (const entry of asArray(bundle.entry)) {
    const resource = isObject(entry) && isObject(entry.resource) ? entry.resource : undefined;
    if (resource && typeof resource.resourceType === 'string' && typeof resource.id === 'string') out.set(`${resource.resourceType}/${resource.id}`, resource);
  }
  return out;
}

/** The resource without its coverage-information extensions (and without `extension` if that leaves none). */
function withoutCoverageInformation(resource: Json): Json {
  const copy: Json = { ...resource };
  const kept = asArray(resource.extension).filter((e) => !(isObject(e) && e.url === COVERAGE_INFORMATION_URL));
  if (kept.length > 0) copy.extension = kept;
  else delete copy.extension;
  return copy;
}

/** All problems of a CDS Hooks response for a CRD server; an empty list means conformant. */
export function crdViolations(response: unknown, options: CrdCheckOptions): string[] {
  const out: string[] = [];
  const hook = options.hook ?? (options.request.hook === 'order-select' ? 'order-select' : 'order-sign');
  if (!isObject(response)) return ['response is not a JSON object'];
  if (!Array.isArray(response.cards)) out.push('cards must be an array (CDS Hooks §response)');
  // CRD §hook-16: a primary hook answer that gives coverage guidance carries the coverage-information
  // system action, unless the client turned it off. With no guidance at all, CDS Hooks 2.0 forbids an
  // empty optional array, so systemActions is then omitted rather than sent as [].
  const configuration = isObject(options.request.extension) ? options.request.extension['davinci-crd.configuration'] : undefined;
  const coverageInfoOff = isObject(configuration) && configuration['coverage-info'] === false;
  const givesGuidance = Array.isArray(response.cards) && response.cards.length > 0;
  if (hook === 'order-sign' && givesGuidance && !coverageInfoOff && !Array.isArray(response.systemActions)) {
    out.push('order-sign responses with coverage guidance must carry systemActions (CRD §hook-16)');
  }
  if (Array.isArray(response.systemActions) && response.systemActions.length === 0) out.push('systemActions must be omitted, not empty (CDS Hooks 2.0 JSON rules)');
  if (response.systemActions !== undefined && !Array.isArray(response.systemActions)) out.push('systemActions must be an array');

  const drafts = draftOrdersOf(options.request);
  const context = isObject(options.request.context) ? options.request.context : {};
  const selections = new Set(asArray(context.selections).filter((s): s is string => typeof s === 'string'));
  const inScope = (ref: string) => drafts.has(ref) && (hook !== 'order-select' || selections.has(ref));

  asArray(response.cards).forEach((raw, i) => {
    const at = `cards[${i}]`;
    if (!isObject(raw)) {
      out.push(`${at} is not an object`);
      return;
    }
    const card = raw;
    if (!str(card.uuid) || !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(str(card.uuid)!)) out.push(`${at}.uuid missing or not a UUID (CRD §resp-13)`);
    const summary = str(card.summary);
    if (!summary) out.push(`${at}.summary missing`);
    else if (summary.length >= 140) out.push(`${at}.summary has ${summary.length} characters; must be < 140`);
    if (!['info', 'warning', 'critical'].includes(str(card.indicator) ?? '')) out.push(`${at}.indicator "${String(card.indicator)}" is not info|warning|critical`);
    if (card.detail !== undefined && !str(card.detail)) out.push(`${at}.detail must be a non-empty string`);
    const source = isObject(card.source) ? card.source : undefined;
    if (!source) out.push(`${at}.source missing`);
    else {
      if (source.label !== options.payerName) out.push(`${at}.source.label "${String(source.label)}" is not the payer name "${options.payerName}" (CRD §resp-4)`);
      const topic = isObject(source.topic) ? source.topic : undefined;
      if (!topic) out.push(`${at}.source.topic missing (CRD §resp-5)`);
      else {
        if (topic.system !== CARD_TYPE_SYSTEM) out.push(`${at}.source.topic.system "${String(topic.system)}" is not ${CARD_TYPE_SYSTEM}`);
        if (!str(topic.code)) out.push(`${at}.source.topic.code missing`);
      }
      if (source.url !== undefined && !isHttpUrl(source.url)) out.push(`${at}.source.url is not an http(s) URL`);
    }
    const extension = isObject(card.extension) ? card.extension : undefined;
    const associated = asArray(extension?.[ASSOCIATED_RESOURCE]);
    if (associated.length === 0) out.push(`${at} lacks the ${ASSOCIATED_RESOURCE} extension (CRD §dev-25)`);
    for (const a of associated) {
      const ref = isObject(a) ? str(a.reference) : undefined;
      if (!ref || !inScope(ref)) out.push(`${at} ${ASSOCIATED_RESOURCE} "${String(ref)}" names no ${hook === 'order-select' ? 'selected' : 'draft'} order of the request`);
    }
    asArray(card.links).forEach((link, j) => {
      const l = isObject(link) ? link : {};
      if (!str(l.label)) out.push(`${at}.links[${j}].label missing`);
      if (l.type !== 'absolute' && l.type !== 'smart') out.push(`${at}.links[${j}].type "${String(l.type)}" is not absolute|smart`);
      if (!isHttpUrl(l.url)) out.push(`${at}.links[${j}].url "${String(l.url)}" is not an http(s) URL`);
      if (l.type === 'absolute' && l.appContext !== undefined) out.push(`${at}.links[${j}] is absolute and has appContext`);
    });
    if (card.links !== undefined && !Array.isArray(card.links)) out.push(`${at}.links must be an array`);
    const suggestions = asArray(card.suggestions);
    if (suggestions.length > 0 && !['at-most-one', 'any'].includes(str(card.selectionBehavior) ?? '')) out.push(`${at} has suggestions but no valid selectionBehavior`);
    suggestions.forEach((s, j) => {
      const sug = isObject(s) ? s : {};
      if (!str(sug.label)) out.push(`${at}.suggestions[${j}].label missing`);
      if (!str(sug.uuid)) out.push(`${at}.suggestions[${j}].uuid missing (CRD §resp-3)`);
      if (asArray(sug.actions).length === 0) out.push(`${at}.suggestions[${j}].actions empty`);
    });
    const empties: string[] = [];
    emptyValues(card, at, empties);
    out.push(...empties.map((e) => `CDS Hooks JSON rule: ${e}`));
  });

  const idsByCoverage = new Map<string, Set<string>>();
  const satisfiedByCoverage = new Map<string, Set<string>>();
  let coverageInformationCount = 0;
  asArray(response.systemActions).forEach((raw, i) => {
    const at = `systemActions[${i}]`;
    if (!isObject(raw)) {
      out.push(`${at} is not an object`);
      return;
    }
    if (raw.type !== 'update') out.push(`${at}.type "${String(raw.type)}" is not update (CRDHooksResponse-coverageInformation)`);
    if (!str(raw.description)) out.push(`${at}.description missing`);
    if (raw.resourceId !== undefined) out.push(`${at}.resourceId must be absent on a coverage-information update`);
    const resource = isObject(raw.resource) ? raw.resource : undefined;
    if (!resource) {
      out.push(`${at}.resource missing`);
      return;
    }
    const ref = `${String(resource.resourceType)}/${String(resource.id)}`;
    const draft = drafts.get(ref);
    if (!draft) out.push(`${at}.resource ${ref} is not a draft order of the request`);
    else {
      if (!inScope(ref)) out.push(`${at}.resource ${ref} is not among the selections`);
      const diff = firstDifference(withoutCoverageInformation(resource), withoutCoverageInformation(draft));
      if (diff) out.push(`${at}.resource differs from the draft order at ${diff} (CRD §resp-37: only coverage-information may change)`);
    }
    const extensions = coverageInformationOf(resource);
    if (extensions.length === 0) out.push(`${at}.resource has no coverage-information extension`);
    extensions.forEach((ext, j) => {
      coverageInformationCount++;
      out.push(...coverageInformationViolations(ext, `${at}.resource coverage-information[${j}]`, hook));
      const s = summariseCoverageInformation(ext);
      if (s.coverage && s.assertionId) {
        const ids = idsByCoverage.get(s.coverage) ?? new Set<string>();
        ids.add(s.assertionId);
        idsByCoverage.set(s.coverage, ids);
      }
      if (s.coverage && s.satisfiedPaId) {
        const ids = satisfiedByCoverage.get(s.coverage) ?? new Set<string>();
        ids.add(s.satisfiedPaId);
        satisfiedByCoverage.set(s.coverage, ids);
      }
    });
  });
  if (options.requireCoverageInformation && coverageInformationCount === 0) out.push('no coverage-information system action');

  // One coverage-assertion-id per coverage per response; different coverages ⇒ different ids (CRD §resp-32, Inferno).
  for (const [coverage, ids] of idsByCoverage) {
    if (ids.size !== 1) out.push(`coverage ${coverage} has ${ids.size} different coverage-assertion-ids in one response`);
  }
  for (const [coverage, ids] of satisfiedByCoverage) {
    if (ids.size > 1) out.push(`coverage ${coverage} has ${ids.size} different satisfied-pa-ids in one response`);
  }
  const owner = new Map<string, string>();
  for (const [coverage, ids] of idsByCoverage) {
    for (const id of ids) {
      const other = owner.get(id);
      if (other && other !== coverage) out.push(`coverage-assertion-id ${id} is used for ${other} and ${coverage}`);
      owner.set(id, coverage);
    }
  }
  if (options.seenAssertionIds) {
    for (const id of owner.keys()) {
      if (options.seenAssertionIds.has(id)) out.push(`coverage-assertion-id ${id} was already issued by an earlier response`);
      options.seenAssertionIds.add(id);
    }
  }
  return out;
}

/** Fails with every violation listed. */
export function assertCrdConformant(response: unknown, options: CrdCheckOptions): void {
  const violations = crdViolations(response, options);
  assert.deepEqual(violations, [], `CRD conformance violations:\n- ${violations.join('\n- ')}`);
}

/** The coverage-information summaries of a response, keyed by the order each is on ("Type/id"). */
export function coverageInformationByOrder(response: unknown): Map<string, CoverageInformationSummary[]> {
  const out = new Map<string, CoverageInformationSummary[]>();
  const actions = isObject(response) ? asArray(response.systemActions) : [];
  for (const action of actions) {
    const resource = isObject(action) && isObject(action.resource) ? action.resource : undefined;
    if (!resource) continue;
    out.set(`${String(resource.resourceType)}/${String(resource.id)}`, coverageInformationOf(resource).map(summariseCoverageInformation));
  }
  return out;
}

const STATUS_WORDS: Record<string, string> = {
  met: 'met',
  'not met': 'not-met',
  missing: 'missing',
  'needs review': 'review',
  'not yet': 'deferred',
  'could not be checked': 'unavailable',
};

/**
 * The criteria checklist of a clinician card, as label → status (met | not-met | missing | review |
 * deferred | unavailable), read from the markdown detail lines "- ✓ 6. **Label** — met: …".
 */
export function criterionStatuses(card: unknown): Record<string, string> {
  const detail = isObject(card) ? (str(card.detail) ?? '') : '';
  const out: Record<string, string> = {};
  for (const line of detail.split('\n')) {
    const m = /^- \S+ (?:\d+\. )?\*\*(.+?)\*\* — (met|not met|missing|needs review|not yet|could not be checked)(?::|$)/.exec(line);
    if (m) out[m[1]!] = STATUS_WORDS[m[2]!]!;
  }
  return out;
}

/** Cards of a response concerning one order (by davinci-crd.associated-resource). */
export function cardsFor(response: unknown, orderReference: string): Json[] {
  const cards = isObject(response) ? asArray(response.cards).filter(isObject) : [];
  return cards.filter((c) =>
    asArray((isObject(c.extension) ? c.extension : {})[ASSOCIATED_RESOURCE]).some((a) => isObject(a) && a.reference === orderReference),
  );
}
