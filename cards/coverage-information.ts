import type { Extension, FhirResource } from 'fhir/r4.js';
import type { Determination, PolicyDecision } from '../policies/engine/types.ts';

export const COVERAGE_INFORMATION_URL = 'http://hl7.org/fhir/us/davinci-crd/StructureDefinition/ext-coverage-information';
export const CRD_TEMP_CODES = 'http://hl7.org/fhir/us/davinci-crd/CodeSystem/temp';
export const COVERAGE_DETAIL_CODES = 'http://terminology.hl7.org/CodeSystem/crd-coverage-detail';

export interface AssertionContext {
  /** Relative reference to the Coverage on the client's system. */
  coverageReference: string;
  /** One id per coverage per response (CRD §resp-32/33). */
  assertionId: string;
  /** The assertion date, YYYY-MM-DD. */
  date: string;
  /** order-select must not ask for clinical or administrative documentation (CRD §hook-19). */
  allowDocumentationRequests: boolean;
  /** Public URL of the policy's criteria page. */
  policyUrl: string;
}

function detail(category: string, code: string, value: Extension, qualification?: string): Extension {
  return {
    url: 'detail',
    extension: [
      { url: 'category', valueCode: category },
      { url: 'code', valueCodeableConcept: { coding: [{ system: COVERAGE_DETAIL_CODES, code }] } },
      { ...value, url: 'value' },
      ...(qualification ? [{ url: 'qualification', valueString: qualification }] : []),
    ],
  };
}

/**
 * The CRD coverage-information extension for one decision. The sub-extensions obey the
 * invariants crd-ci-q1…q9: no pa-needed when not covered (q2), info-needed whenever anything is
 * conditional (q3), no withpa without auth-needed (q4), a reason for OTH, doc-purpose and
 * indeterminate (q6, q8, q9), text on every reason (q7).
 */
export function coverageInformation(decision: PolicyDecision, ctx: AssertionContext): Extension {
  const d: Determination = decision.determination;
  const parts: Extension[] = [
    { url: 'coverage', valueReference: { reference: ctx.coverageReference } },
    { url: 'covered', valueCode: d.covered },
  ];
  if (d.covered !== 'not-covered' && d.paNeeded) parts.push({ url: 'pa-needed', valueCode: d.paNeeded });
  const docNeeded = ctx.allowDocumentationRequests && d.covered !== 'not-covered' ? d.docNeeded : [];
  for (const doc of docNeeded) parts.push({ url: 'doc-needed', valueCode: doc });
  if (docNeeded.length > 0 && d.paNeeded === 'auth-needed') parts.push({ url: 'doc-purpose', valueCode: 'withpa' });
  for (const info of d.infoNeeded) parts.push({ url: 'info-needed', valueCode: info });
  for (const code of d.billingCodes) parts.push({ url: 'billingCode', valueCoding: code });
  for (const reason of d.reasons) {
    if (reason.documentation && docNeeded.length === 0) continue;
    parts.push({
      url: 'reason',
      valueCodeableConcept: {
        ...(reason.code === 'technical' ? { coding: [{ system: CRD_TEMP_CODES, code: 'technical', display: 'Technical issue' }] } : {}),
        text: reason.text,
      },
    });
  }
  if (d.allowedQuantity) {
    const { value, unit, code, per } = d.allowedQuantity;
    parts.push(detail('cat-limitation', 'allowed-quantity', { url: 'value', valueQuantity: { value, unit, ...(code ? { system: 'http://unitsofmeasure.org', code } : {}) } }, `per ${per}`));
  }
  if (d.earliestDate) {
    parts.push(detail('cat-limitation', 'allowed-period', { url: 'value', valuePeriod: { start: d.earliestDate } }, 'earliest date the service may be given'));
  }
  parts.push(detail('cat-other', 'policy-link', { url: 'value', valueUrl: ctx.policyUrl }, `${decision.policy.policyNumber} version ${decision.policy.version}`));
  parts.push({ url: 'date', valueDate: ctx.date });
  parts.push({ url: 'coverage-assertion-id', valueString: ctx.assertionId });
  if (d.expiryDate && d.covered !== 'not-covered') parts.push({ url: 'expiry-date', valueDate: d.expiryDate });
  return { url: COVERAGE_INFORMATION_URL, extension: parts };
}

/**
 * The draft order unchanged except for coverage-information (CRD §resp-37): earlier assertions
 * for the same coverage are replaced, everything else is kept as sent.
 */
export function withCoverageInformation(order: FhirResource, extensions: Extension[], coverageReference: string): FhirResource {
  const copy = structuredClone(order) as FhirResource & { extension?: unknown };
  // The order is client data: an `extension` that is not an array is dropped, odd entries are kept as sent.
  const existing = (Array.isArray(copy.extension) ? copy.extension : []) as Array<Extension | null>;
  const kept = existing.filter(
    (ext) =>
      ext?.url !== COVERAGE_INFORMATION_URL ||
      !(Array.isArray(ext.extension) ? (ext.extension as Array<Extension | null>) : []).some((sub) => sub?.url === 'coverage' && sub.valueReference?.reference === coverageReference),
  );
  copy.extension = [...kept, ...extensions];
  return copy;
}
