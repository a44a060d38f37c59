import type { Coverage, Identifier, Organization } from 'fhir/r4.js';
import { referenceKey, type ClinicalRecord, type ResourceIndex } from '../policies/engine/record.ts';
import type { PayerDefinition, PolicyRegistry } from '../policies/registry.ts';
import { HttpError } from './http/operation-outcome.ts';

export interface ResolvedCoverage {
  coverage: Coverage;
  /** Relative reference used in coverage-information ("Coverage/123"). */
  reference: string;
  payer: PayerDefinition;
  memberGroups: string[];
}

/**
 * The payer's identifiers for a Coverage: on the payor reference itself, in a contained
 * Organization, in an Organization included with the coverage, or read from the EHR.
 * Never the name (payers-and-codes.md).
 */
function payorIdentifiers(coverage: Coverage, index: ResourceIndex): { identifiers: Identifier[]; unresolved: boolean } {
  const identifiers: unknown[] = [];
  let unresolved = false;
  for (const payor of Array.isArray(coverage.payor) ? coverage.payor : []) {
    if (payor?.identifier) identifiers.push(payor.identifier);
    if (!payor?.reference) continue;
    const org = index.resolve(payor, coverage);
    const orgIdentifiers: unknown = org?.resourceType === 'Organization' ? (org as Organization).identifier : undefined;
    if (org?.resourceType === 'Organization') identifiers.push(...(Array.isArray(orgIdentifiers) ? orgIdentifiers : []));
    else if (!payor.identifier) unresolved = true;
  }
  // Only identifiers a payer can be matched on: request and EHR data are unvalidated JSON.
  return { identifiers: identifiers.filter(isMatchableIdentifier), unresolved };
}

function isMatchableIdentifier(i: unknown): i is Identifier {
  return typeof i === 'object' && i !== null && typeof (i as Identifier).system === 'string' && typeof (i as Identifier).value === 'string';
}

function isForPatient(coverage: Coverage, patientId: string): boolean {
  const key = referenceKey(coverage.beneficiary?.reference);
  return key === undefined || key === `Patient/${patientId}`;
}

/**
 * Picks the primary Coverage and its payer (CRD §hook-13). No Coverage, several, or a payer this
 * service does not handle → 400; coverage data that could not be retrieved → 412.
 */
export function resolveCoverage(record: ClinicalRecord, index: ResourceIndex, registry: PolicyRegistry, patientId: string): ResolvedCoverage {
  if (record.unavailable.coverage !== undefined) {
    throw new HttpError(412, {
      code: 'not-found',
      diagnostics: `The patient's Coverage was not prefetched and could not be retrieved from the FHIR server (${record.unavailable.coverage})`,
      expression: ['prefetch.coverage'],
    });
  }
  const active = record.coverages.filter((c) => (c.status === undefined || c.status === 'active') && isForPatient(c, patientId));
  if (active.length === 0) {
    throw new HttpError(400, {
      code: 'not-found',
      diagnostics: 'No active Coverage for this patient: a coverage requirements answer needs the primary Coverage (CRD §hook-13)',
      expression: ['prefetch.coverage'],
    });
  }
  const handled: { coverage: Coverage; payer: PayerDefinition }[] = [];
  let unresolved = false;
  for (const coverage of active) {
    const found = payorIdentifiers(coverage, index);
    const payer = registry.payerFor(found.identifiers);
    if (payer) handled.push({ coverage, payer });
    else if (found.unresolved) unresolved = true;
  }
  if (handled.length === 0) {
    if (unresolved) {
      throw new HttpError(412, {
        code: 'not-found',
        diagnostics: "The Coverage's payer Organization was neither included nor retrievable, so the payer cannot be identified",
        expression: ['prefetch.coverage'],
      });
    }
    throw new HttpError(400, {
      code: 'not-supported',
      diagnostics: 'The Coverage has no payer identifier that this CRD server handles (Coverage.payor → Organization.identifier)',
      expression: ['Coverage.payor'],
    });
  }
  if (handled.length > 1) {
    throw new HttpError(400, {
      code: 'multiple-matches',
      diagnostics: 'More than one active Coverage names a payer this server handles; send only the primary Coverage (CRD §dev-29)',
      expression: ['prefetch.coverage'],
    });
  }
  const { coverage, payer } = handled[0]!;
  // coverage-information must reference the client's Coverage (1..1): without a FHIR id there is nothing to point at.
  if (typeof coverage.id !== 'string' || !/^[A-Za-z0-9\-.]{1,64}$/.test(coverage.id)) {
    throw new HttpError(400, {
      code: 'invalid',
      diagnostics: 'The Coverage has no valid id, so a coverage assertion could not reference it',
      expression: ['Coverage.id'],
    });
  }
  return { coverage, reference: `Coverage/${coverage.id}`, payer, memberGroups: registry.memberGroups(payer, coverage) };
}
