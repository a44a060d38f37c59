import type { Bundle, FhirResource, Reference } from 'fhir/r4.js';
import { emptyRecord, isOrderResource, referenceKey, ResourceIndex, type ClinicalRecord, type DataCategory } from '../../policies/engine/record.ts';
import { HttpError, isOperationOutcome } from '../http/operation-outcome.ts';
import type { HookRequest } from '../protocol/types.ts';
import type { FhirSource } from './fhir-source.ts';
import { renderTemplate } from './templates.ts';

/**
 * What each prefetch key of our discovery document means. The key names are ours (CRD
 * §found-30); the templates live in cds-services.json and the fallback queries render the same
 * templates, so prefetched and fetched data are equivalent.
 */
export interface PrefetchKeySpec {
  category: DataCategory;
  kind: 'read' | 'search';
  resourceType: string;
  /**
   * Pages read when the service queries itself, the rest deliberately left unread (the template
   * sorts newest first). Without it, every page is read, up to FHIR_MAX_PAGES.
   */
  maxPages?: number;
}

export const PREFETCH_KEYS: Record<string, PrefetchKeySpec> = {
  patient: { category: 'patient', kind: 'read', resourceType: 'Patient' },
  coverage: { category: 'coverage', kind: 'search', resourceType: 'Coverage' },
  encounter: { category: 'encounter', kind: 'read', resourceType: 'Encounter' },
  userPractitionerRole: { category: 'practitionerRoles', kind: 'read', resourceType: 'PractitionerRole' },
  userPractitionerRoles: { category: 'practitionerRoles', kind: 'search', resourceType: 'PractitionerRole' },
  conditions: { category: 'conditions', kind: 'search', resourceType: 'Condition' },
  observations: { category: 'observations', kind: 'search', resourceType: 'Observation' },
  // Results identified only by text (local lab codes); the newest page is enough.
  labObservations: { category: 'observations', kind: 'search', resourceType: 'Observation', maxPages: 1 },
  medicationRequests: { category: 'medicationRequests', kind: 'search', resourceType: 'MedicationRequest' },
  medicationAdministrations: { category: 'medicationAdministrations', kind: 'search', resourceType: 'MedicationAdministration' },
  medicationStatements: { category: 'medicationStatements', kind: 'search', resourceType: 'MedicationStatement' },
  procedures: { category: 'procedures', kind: 'search', resourceType: 'Procedure' },
  serviceRequests: { category: 'serviceRequests', kind: 'search', resourceType: 'ServiceRequest' },
};

/** Where each key's data came from; logged and kept with the decision. */
export type KeySource = 'prefetch' | 'fetched' | 'none' | 'not-applicable' | 'unavailable';

export interface GatherResult {
  record: ClinicalRecord;
  index: ResourceIndex;
  sources: Record<string, KeySource>;
  /** Short descriptions of what could not be retrieved (no identifiers, no tokens). */
  problems: string[];
}

const MAX_REFERENCE_READS = 24;

/** Adds resources to the record, each once, into the list for its type. */
class RecordSink {
  readonly record: ClinicalRecord;
  private readonly seen = new Set<string>();

  constructor(record: ClinicalRecord) {
    this.record = record;
  }

  has(key: string): boolean {
    return this.seen.has(key);
  }

  add(resources: FhirResource[]): void {
    for (const r of resources) {
      if (typeof r !== 'object' || r === null || typeof r.resourceType !== 'string') continue;
      // Not FHIR: an id that is not a string would break every "Type/id" built from it downstream.
      if (r.id !== undefined && typeof r.id !== 'string') continue;
      if (r.id) {
        const key = `${r.resourceType}/${r.id}`;
        if (this.seen.has(key)) continue;
        this.seen.add(key);
      }
      const rec = this.record;
      switch (r.resourceType) {
        case 'Patient':
          rec.patient ??= r;
          break;
        case 'Encounter':
          rec.encounter ??= r;
          break;
        case 'Coverage':
          rec.coverages.push(r);
          break;
        case 'Condition':
          rec.conditions.push(r);
          break;
        case 'Observation':
          rec.observations.push(r);
          break;
        case 'MedicationRequest':
          rec.medicationRequests.push(r);
          break;
        case 'MedicationAdministration':
          rec.medicationAdministrations.push(r);
          break;
        case 'MedicationStatement':
          rec.medicationStatements.push(r);
          break;
        case 'Procedure':
          rec.procedures.push(r);
          break;
        case 'ServiceRequest':
          rec.serviceRequests.push(r);
          break;
        case 'PractitionerRole':
          rec.practitionerRoles.push(r);
          break;
        case 'Practitioner':
          rec.practitioners.push(r);
          break;
        case 'Organization':
          rec.organizations.push(r);
          break;
        case 'Location':
          rec.locations.push(r);
          break;
        case 'Medication':
          rec.medications.push(r);
          break;
        default:
          break;
      }
    }
  }
}

function bundleEntries(bundle: Bundle): FhirResource[] {
  if (!Array.isArray(bundle.entry)) return [];
  return bundle.entry.map((e) => e?.resource).filter((r): r is FhirResource => typeof r === 'object' && r !== null);
}

/** A prefetch value that reports a failure instead of data: query instead (CDS Hooks 2.0 §prefetch). */
function prefetchFailed(value: FhirResource): boolean {
  if (isOperationOutcome(value)) return true;
  if (value.resourceType !== 'Bundle') return false;
  return bundleEntries(value).some(
    (r) => isOperationOutcome(r) && (r.issue ?? []).some((i) => i.severity === 'error' || i.severity === 'fatal'),
  );
}

function hasNextLink(bundle: Bundle): boolean {
  return Array.isArray(bundle.link) && bundle.link.some((l) => l?.relation === 'next');
}

function referencesOfOrders(orders: FhirResource[]): Reference[] {
  const refs: Reference[] = [];
  const push = (r: unknown) => {
    if (typeof r === 'object' && r !== null && typeof (r as Reference).reference === 'string') refs.push(r as Reference);
  };
  for (const order of orders) {
    const o = order as unknown as Record<string, unknown>;
    push(o.requester);
    push(o.medicationReference);
    for (const key of ['performer', 'reasonReference', 'locationReference']) {
      if (Array.isArray(o[key])) (o[key] as unknown[]).forEach(push);
      else push(o[key]);
    }
    push((o.dispenseRequest as Record<string, unknown> | undefined)?.performer);
  }
  return refs;
}

function historyMedicationReferences(record: ClinicalRecord): Reference[] {
  const refs: Reference[] = [];
  for (const r of [...record.medicationAdministrations, ...record.medicationStatements, ...record.medicationRequests]) {
    if (r.medicationReference?.reference) refs.push(r.medicationReference);
  }
  return refs;
}

function siteReferences(record: ClinicalRecord): Reference[] {
  const refs: Reference[] = [];
  for (const coverage of record.coverages) for (const p of Array.isArray(coverage.payor) ? coverage.payor : []) refs.push(p);
  for (const role of record.practitionerRoles) {
    if (role.organization) refs.push(role.organization);
    for (const l of Array.isArray(role.location) ? role.location : []) refs.push(l);
  }
  if (record.encounter?.serviceProvider) refs.push(record.encounter.serviceProvider);
  const locations: unknown = record.encounter?.location;
  for (const l of (Array.isArray(locations) ? locations : []) as Array<{ location?: Reference } | null>) if (l?.location) refs.push(l.location);
  return refs;
}

const READ_CATEGORY: Record<string, DataCategory | undefined> = {
  PractitionerRole: 'practitionerRoles',
  Practitioner: 'practitionerRoles',
  Condition: 'conditions',
  Encounter: 'encounter',
};

/**
 * Gathers the patient data for one hook call. For each of our prefetch keys: data → use it;
 * null → the EHR has none, do not query; absent or an OperationOutcome → query the FHIR server.
 * Queries run in parallel under the caller's deadline. A category that cannot be retrieved is
 * marked unavailable (the criteria that need it degrade); only missing Coverage fails the call.
 */
export async function gatherRecord(
  request: HookRequest,
  templates: Record<string, string>,
  fhir: FhirSource | undefined,
  maxPages: number,
  /** Why there is no FHIR source (e.g. the fhirServer is not allowed for this client), for the messages. */
  noFhirReason = 'no FHIR server to query',
): Promise<GatherResult> {
  const record = emptyRecord();
  const drafted = bundleEntries(request.context.draftOrders);
  record.draftOrders = drafted.filter(isOrderResource);
  const sink = new RecordSink(record);
  // A draft MedicationRequest may point (medicationReference) at a Medication sent in the same Bundle.
  sink.add(drafted.filter((r) => r.resourceType === 'Medication'));
  const sources: Record<string, KeySource> = {};
  const problems: string[] = [];
  const markUnavailable = (category: DataCategory, why: string, key?: string) => {
    record.unavailable[category] ??= why;
    if (key) sources[key] = 'unavailable';
    problems.push(`${key ?? category}: ${why}`);
  };

  const tasks: Promise<void>[] = [];
  /** "Type/id" of read keys prefetched as null. */
  const declaredAbsent = new Set<string>();
  /** "Type/id" that read keys are already fetching. */
  const beingRead = new Set<string>();
  for (const [key, template] of Object.entries(templates)) {
    const spec = PREFETCH_KEYS[key];
    if (!spec) continue;
    const value = request.prefetch?.[key];
    if (value === null) {
      sources[key] = 'none';
      // The EHR says this resource does not exist: do not read it through a reference either.
      const reference = spec.kind === 'read' ? renderTemplate(template, request.context) : undefined;
      if (reference) declaredAbsent.add(reference);
      continue;
    }
    if (value !== undefined && !prefetchFailed(value)) {
      const expected = spec.kind === 'search' ? 'Bundle' : spec.resourceType;
      if (value.resourceType !== expected && !(spec.kind === 'read' && value.resourceType === 'Bundle')) {
        throw new HttpError(400, {
          code: 'invalid',
          diagnostics: `prefetch.${key} must be a ${expected} (or null), not a ${value.resourceType}`,
          expression: [`prefetch.${key}`],
        });
      }
      sink.add(value.resourceType === 'Bundle' ? bundleEntries(value) : [value]);
      sources[key] = 'prefetch';
      if (value.resourceType === 'Bundle' && hasNextLink(value)) {
        // The client paged its prefetch; the rest is ours to fetch with its token.
        if (fhir) {
          tasks.push(
            fhir.remainingPages(value, maxPages).then(
              (more) => sink.add(more),
              (error: Error) => markUnavailable(spec.category, `further prefetch pages: ${error.message}`, key),
            ),
          );
        } else {
          markUnavailable(spec.category, 'prefetch is paged and no FHIR server was given', key);
        }
      }
      continue;
    }
    const query = renderTemplate(template, request.context);
    if (query === undefined) {
      sources[key] = 'not-applicable';
      continue;
    }
    if (!fhir) {
      markUnavailable(spec.category, `${value === undefined ? 'not prefetched' : 'prefetch failed'} and ${noFhirReason}`, key);
      continue;
    }
    if (spec.kind === 'read') beingRead.add(query);
    const fetched =
      spec.kind === 'read'
        ? fhir.read(query).then((r) => (r ? [r] : []))
        : fhir.search(query, spec.maxPages ?? maxPages, spec.maxPages !== undefined);
    tasks.push(
      fetched.then(
        (resources) => {
          sink.add(resources);
          sources[key] = 'fetched';
        },
        (error: Error) => markUnavailable(spec.category, error.message, key),
      ),
    );
  }

  const readMissing = (refs: Reference[]): Promise<void>[] => {
    if (!fhir) return [];
    const wanted = new Set<string>();
    for (const ref of refs) {
      // References come from EHR data: anything but a string reference is skipped.
      const reference: unknown = typeof ref === 'object' && ref !== null ? ref.reference : undefined;
      if (typeof reference !== 'string' || reference.startsWith('#')) continue;
      const key = referenceKey(reference);
      if (key && !sink.has(key) && !declaredAbsent.has(key) && !beingRead.has(key)) wanted.add(key);
    }
    return [...wanted].slice(0, MAX_REFERENCE_READS).map((key) =>
      fhir.read(key).then(
        (r) => {
          if (r) sink.add([r]);
        },
        (error: Error) => {
          const category = READ_CATEGORY[key.split('/')[0]!];
          if (category) markUnavailable(category, `${key.split('/')[0]} read: ${error.message}`);
          else problems.push(`${key.split('/')[0]} read: ${error.message}`);
        },
      ),
    );
  };

  // References the draft orders make (requester, medication, performer…) are known now.
  const orderRefs = referencesOfOrders(record.draftOrders);
  tasks.push(...readMissing(orderRefs));
  if (fhir) {
    for (const ref of orderRefs) {
      const key = referenceKey(ref.reference);
      if (key?.startsWith('Practitioner/')) {
        tasks.push(
          fhir.search(`PractitionerRole?practitioner=${encodeURIComponent(key)}`, 1).then(
            (roles) => sink.add(roles),
            (error: Error) => markUnavailable('practitionerRoles', `PractitionerRole search: ${error.message}`),
          ),
        );
      }
    }
  }
  await Promise.all(tasks);

  // Second round: what the first round's resources point at (payer, sites, medications of history).
  await Promise.all(readMissing([...siteReferences(record), ...historyMedicationReferences(record)]));

  const index = new ResourceIndex(record);
  // Draft orders may reference each other, or a Medication in the same Bundle, by fullUrl (urn:uuid:…).
  const draftEntries = Array.isArray(request.context.draftOrders.entry) ? request.context.draftOrders.entry : [];
  for (const entry of draftEntries) {
    const resource = entry?.resource;
    if (typeof entry?.fullUrl === 'string' && typeof resource === 'object' && resource !== null) index.addFullUrl(entry.fullUrl, resource as FhirResource);
  }
  return { record, index, sources, problems };
}
