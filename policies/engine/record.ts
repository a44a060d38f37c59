import type {
  Condition,
  Coverage,
  DeviceRequest,
  Encounter,
  FhirResource,
  Location,
  Medication,
  MedicationAdministration,
  MedicationRequest,
  MedicationStatement,
  Observation,
  Organization,
  Patient,
  Practitioner,
  PractitionerRole,
  Procedure,
  Reference,
  ServiceRequest,
} from 'fhir/r4.js';
import { conceptCodings } from './terminology.ts';

/**
 * The patient data one hook call has gathered (from prefetch or the EHR's FHIR server). The
 * engine reads only this; it never fetches. `unavailable` names the categories that could not be
 * retrieved, so that absence checks ("no infection") never pass on data that was never seen.
 */
export type DataCategory =
  | 'patient'
  | 'coverage'
  | 'conditions'
  | 'observations'
  | 'medicationRequests'
  | 'medicationAdministrations'
  | 'medicationStatements'
  | 'procedures'
  | 'serviceRequests'
  | 'practitionerRoles'
  | 'encounter';

export interface ClinicalRecord {
  patient?: Patient;
  coverages: Coverage[];
  conditions: Condition[];
  observations: Observation[];
  medicationRequests: MedicationRequest[];
  medicationAdministrations: MedicationAdministration[];
  medicationStatements: MedicationStatement[];
  procedures: Procedure[];
  serviceRequests: ServiceRequest[];
  practitionerRoles: PractitionerRole[];
  practitioners: Practitioner[];
  organizations: Organization[];
  locations: Location[];
  medications: Medication[];
  encounter?: Encounter;
  /** The hook's draft orders (context.draftOrders entries). */
  draftOrders: OrderResource[];
  /** Categories that could not be retrieved, with the reason (for the clinician and the log). */
  unavailable: Partial<Record<DataCategory, string>>;
}

export type OrderResource = MedicationRequest | ServiceRequest | DeviceRequest;

export function isOrderResource(resource: FhirResource): resource is OrderResource {
  return (
    resource.resourceType === 'MedicationRequest' ||
    resource.resourceType === 'ServiceRequest' ||
    resource.resourceType === 'DeviceRequest'
  );
}

export function emptyRecord(): ClinicalRecord {
  return {
    coverages: [],
    conditions: [],
    observations: [],
    medicationRequests: [],
    medicationAdministrations: [],
    medicationStatements: [],
    procedures: [],
    serviceRequests: [],
    practitionerRoles: [],
    practitioners: [],
    organizations: [],
    locations: [],
    medications: [],
    draftOrders: [],
    unavailable: {},
  };
}

/** "Type/id" for any resource with an id. */
export function referenceOf(resource: { resourceType: string; id?: string }): string {
  return `${resource.resourceType}/${resource.id ?? ''}`;
}

/**
 * The "Type/id" tail of a reference, whatever form it arrives in: relative, absolute
 * (http://ehr/fhir/Patient/1), or versioned (.../_history/2).
 */
export function referenceKey(reference: string | undefined): string | undefined {
  if (typeof reference !== 'string' || !reference) return undefined;
  const withoutHistory = reference.replace(/\/_history\/[^/]+$/, '');
  const m = /([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})$/.exec(withoutHistory);
  return m ? `${m[1]}/${m[2]}` : undefined;
}

/** Index of every resource in a record by "Type/id", for resolving references. */
export class ResourceIndex {
  private readonly byKey = new Map<string, FhirResource>();
  private readonly byFullUrl = new Map<string, FhirResource>();
  private readonly record: ClinicalRecord;
  private observationsByCode: Map<string, Observation[]> | undefined;

  constructor(record: ClinicalRecord) {
    this.record = record;
    const lists: FhirResource[][] = [
      record.coverages,
      record.conditions,
      record.observations,
      record.medicationRequests,
      record.medicationAdministrations,
      record.medicationStatements,
      record.procedures,
      record.serviceRequests,
      record.practitionerRoles,
      record.practitioners,
      record.organizations,
      record.locations,
      record.medications,
      record.draftOrders,
    ];
    for (const list of lists) for (const r of list) this.add(r);
    if (record.patient) this.add(record.patient);
    if (record.encounter) this.add(record.encounter);
  }

  /**
   * Observations carrying any of these "system|code" keys (normalised codings), in record order.
   * Built on first use, once per request: a dozen checks each looking for a few codes among a
   * long history would otherwise scan and normalise every Observation again.
   */
  observationsWithCodes(keys: readonly string[]): Observation[] {
    if (!this.observationsByCode) {
      const byCode = new Map<string, Observation[]>();
      for (const observation of this.record.observations) {
        const seen = new Set<string>();
        for (const coding of conceptCodings(observation.code)) {
          const key = `${coding.system}|${coding.code}`;
          if (seen.has(key)) continue;
          seen.add(key);
          const list = byCode.get(key);
          if (list) list.push(observation);
          else byCode.set(key, [observation]);
        }
      }
      this.observationsByCode = byCode;
    }
    if (keys.length === 1) return this.observationsByCode.get(keys[0]!) ?? [];
    const hits = new Set<Observation>();
    for (const key of keys) for (const o of this.observationsByCode.get(key) ?? []) hits.add(o);
    return this.record.observations.filter((o) => hits.has(o));
  }

  add(resource: FhirResource): void {
    if (typeof resource.id === 'string' && resource.id && typeof resource.resourceType === 'string') this.byKey.set(referenceOf(resource), resource);
  }

  /** Resolves a reference, including `#id` references to resources contained in `from`. */
  resolve(reference: Reference | undefined, from?: FhirResource): FhirResource | undefined {
    const ref: unknown = typeof reference === 'object' && reference !== null ? reference.reference : undefined;
    if (typeof ref !== 'string' || !ref) return undefined;
    if (ref.startsWith('#')) {
      const contained: unknown = (from as { contained?: unknown } | undefined)?.contained;
      if (!Array.isArray(contained)) return undefined;
      return (contained as Array<FhirResource | null>).find((c) => typeof c === 'object' && c !== null && c.id === ref.slice(1)) ?? undefined;
    }
    // A Bundle's own fullUrl (e.g. "urn:uuid:…" in draftOrders) is the reference its entries use.
    const aliased = this.byFullUrl.get(ref);
    if (aliased) return aliased;
    const key = referenceKey(ref);
    return key ? this.byKey.get(key) : undefined;
  }

  /** Makes a Bundle entry's fullUrl resolve to its resource. */
  addFullUrl(fullUrl: string, resource: FhirResource): void {
    this.byFullUrl.set(fullUrl, resource);
  }
}
