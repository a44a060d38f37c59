import type { CodeableConcept, FhirResource, Identifier, Location, Organization, Reference } from 'fhir/r4.js';
import { outcome, siteRegistry, unavailable, valueSet, type EvaluationContext } from '../context.ts';
import { objectsOf } from '../fhir-arrays.ts';
import { referenceKey, referenceOf } from '../record.ts';
import { systemKey } from '../terminology.ts';
import type { CareSettingCheck, CheckOutcome, Evidence, InfoNeeded, ProductDefinition, TreatmentSite, TreatmentSiteCheck, TreatmentSiteRegistry } from '../types.ts';
import { describeConcept } from './conditions.ts';

/**
 * Where a therapy is given. The site is read, most specific first, from the order's performer,
 * the order's location, the dispensing organization, the ordering PractitionerRole's
 * organization, then the encounter's service provider and locations. Sites are matched on their
 * identifiers (NPI), never on names.
 */

interface SiteCandidate {
  name: string;
  reference?: string;
  identifiers: { system: string; value: string }[];
}

interface SiteSource {
  /** Where the site was named, in words for the card. */
  origin: string;
  infoNeeded: InfoNeeded;
  sites: SiteCandidate[];
}

function identifiersOf(list: Identifier[] | undefined): { system: string; value: string }[] {
  return objectsOf(list)
    .filter((i): i is Identifier & { system: string; value: string } => typeof i?.system === 'string' && typeof i.value === 'string')
    .map((i) => ({ system: i.system, value: i.value }));
}

function siteOf(resource: Organization | Location, extra: { system: string; value: string }[]): SiteCandidate {
  return { name: resource.name ?? referenceOf(resource), reference: referenceOf(resource), identifiers: [...identifiersOf(resource.identifier), ...extra] };
}

/** The sites a reference names: an Organization or Location, or a PractitionerRole's organization and locations. */
function sitesOf(ctx: EvaluationContext, ref: Reference | undefined, from: FhirResource): SiteCandidate[] {
  if (!ref) return [];
  const logical = ref.identifier ? identifiersOf([ref.identifier]) : [];
  const resolved = ctx.index.resolve(ref, from);
  if (resolved?.resourceType === 'Organization') return [siteOf(resolved, logical)];
  if (resolved?.resourceType === 'Location') {
    const managing = ctx.index.resolve(resolved.managingOrganization, resolved);
    return [siteOf(resolved, logical), ...(managing?.resourceType === 'Organization' ? [siteOf(managing, [])] : [])];
  }
  if (resolved?.resourceType === 'PractitionerRole') {
    return [...objectsOf(resolved.organization), ...objectsOf(resolved.location)].flatMap((r) => sitesOf(ctx, r, resolved));
  }
  if (resolved) return []; // a person (Practitioner, Patient, RelatedPerson) is not a site
  const type = referenceKey(ref.reference)?.split('/')[0] ?? ref.type;
  if (logical.length > 0 || type === 'Organization' || type === 'Location' || type === 'PractitionerRole') {
    return [{ name: ref.display ?? ref.reference ?? 'unnamed site', ...(ref.reference ? { reference: ref.reference } : {}), identifiers: logical }];
  }
  return [];
}

function asList(value: Reference | Reference[] | undefined): Reference[] {
  return objectsOf(value);
}

function siteSources(ctx: EvaluationContext): SiteSource[] {
  const order = ctx.order;
  const from = order as FhirResource;
  const sources: SiteSource[] = [];
  const add = (origin: string, infoNeeded: InfoNeeded, refs: Reference[], owner: FhirResource = from) => {
    const sites = refs.flatMap((r) => sitesOf(ctx, r, owner));
    if (sites.length > 0) sources.push({ origin, infoNeeded, sites });
  };
  add("the order's performer", 'performer', asList((order as { performer?: Reference | Reference[] }).performer));
  if (order.resourceType === 'ServiceRequest') add("the order's location", 'location', asList(order.locationReference));
  if (order.resourceType === 'MedicationRequest') add('the dispensing organization', 'performer', asList(order.dispenseRequest?.performer));
  const requester = ctx.index.resolve(order.requester, from);
  if (requester?.resourceType === 'PractitionerRole') add("the ordering clinician's organization", 'performer', asList(requester.organization), requester);
  const encounter = ctx.record.encounter;
  if (encounter) {
    add("the encounter's facility", 'location', [...asList(encounter.serviceProvider), ...objectsOf(encounter.location).map((l) => l.location)], encounter);
  }
  return sources;
}

function sameIdentifier(a: { system: string; value: string }, b: { system: string; value: string }): boolean {
  return systemKey(a.system) === systemKey(b.system) && a.value.trim() === b.value.trim();
}

function qualifies(site: TreatmentSite, product: ProductDefinition | null): boolean {
  const q = site.qualifiedFor;
  // For an unidentified product only a registry-wide approval can say anything; the product check asks for the NDC.
  if (q.allFdaApproved && (product === null || product.fdaApproved)) return true;
  if (!product) return false;
  return (q.products ?? []).includes(product.id) || (q.categories ?? []).some((c) => product.categories.includes(c));
}

function describeSite(site: SiteCandidate): string {
  const npi = site.identifiers.find((i) => systemKey(i.system) === 'npi');
  const id = npi ? `NPI ${npi.value}` : site.identifiers[0] ? `${site.identifiers[0].system}|${site.identifiers[0].value}` : 'no identifier';
  return `${site.name} (${id})`;
}

function registryEntry(registry: TreatmentSiteRegistry, site: SiteCandidate): TreatmentSite | undefined {
  return registry.sites.find((entry) => entry.identifiers.some((a) => site.identifiers.some((b) => sameIdentifier(a, b))));
}

export function treatmentSite(check: TreatmentSiteCheck, ctx: EvaluationContext): CheckOutcome {
  const registry = siteRegistry(ctx, check.registry);
  const product = ctx.product.product;
  const productName = product?.name ?? 'this therapy';
  const source = siteSources(ctx)[0];
  if (!source) {
    const gap = unavailable(ctx, ['encounter', 'practitionerRoles']);
    if (gap) return gap;
    return outcome('missing', {
      notes: [`No treatment site is named (order performer, dispensing organization, ordering clinician's organization or encounter facility): coverage depends on administration at a site in ${registry.title}`],
      infoNeeded: ['performer', 'location'],
    });
  }
  const evidence = (site: SiteCandidate, suffix = ''): Evidence => ({
    ...(site.reference && !site.reference.startsWith('#') ? { reference: referenceKey(site.reference) ?? site.reference } : {}),
    text: `Treatment site from ${source.origin}: ${describeSite(site)}${suffix}`,
  });
  for (const site of source.sites) {
    const entry = registryEntry(registry, site);
    if (entry && qualifies(entry, product)) {
      return outcome('met', { evidence: [evidence(site, ` is in ${registry.title} for ${entry.qualifiedFor.allFdaApproved ? 'every FDA-approved therapy' : productName}`)] });
    }
  }
  const unidentifiable = source.sites.filter((s) => s.identifiers.length === 0);
  if (unidentifiable.length > 0) {
    return outcome('missing', {
      evidence: unidentifiable.map((s) => evidence(s)),
      notes: [`The treatment site named by ${source.origin} has no identifier (NPI) to look up in ${registry.title}`],
      infoNeeded: [source.infoNeeded],
    });
  }
  return outcome('not-met', {
    evidence: source.sites.map((s) => evidence(s)),
    notes: [`${source.sites.map((s) => s.name).join(', ')} is not approved in ${registry.title} to administer ${productName}`],
  });
}

// ---------------------------------------------------------------------------------------------
// Care setting
// ---------------------------------------------------------------------------------------------

const ENCOUNTER_CLASS_NAMES: Record<string, string> = {
  AMB: 'ambulatory',
  EMER: 'emergency',
  FLD: 'field',
  HH: 'home health',
  IMP: 'inpatient',
  ACUTE: 'inpatient acute',
  NONAC: 'inpatient non-acute',
  OBSENC: 'observation',
  PRENC: 'pre-admission',
  SS: 'short stay',
  VR: 'virtual',
};

function locationTypesOf(ctx: EvaluationContext): { concept: CodeableConcept; where: string; reference?: string }[] {
  const out: { concept: CodeableConcept; where: string; reference?: string }[] = [];
  const addLocation = (ref: Reference | undefined, owner: FhirResource, where: string) => {
    const resolved = ctx.index.resolve(ref, owner);
    if (resolved?.resourceType !== 'Location') return;
    // A contained Location has no address of its own: point at the resource that contains it.
    const reference = ref?.reference?.startsWith('#') ? referenceOf(owner) : referenceOf(resolved);
    for (const concept of objectsOf(resolved.type)) out.push({ concept, where: `${where} ${resolved.name ?? referenceOf(resolved)}`, reference });
  };
  const order = ctx.order;
  if (order.resourceType === 'ServiceRequest') {
    for (const concept of objectsOf(order.locationCode)) out.push({ concept, where: 'Order location', reference: ctx.orderReference });
    for (const ref of objectsOf(order.locationReference)) addLocation(ref, order, 'Order location');
  }
  const encounter = ctx.record.encounter;
  for (const l of objectsOf(encounter?.location)) addLocation(l.location, encounter!, 'Encounter location');
  return out;
}

export function careSetting(check: CareSettingCheck, ctx: EvaluationContext): CheckOutcome {
  const typeSet = check.locationTypes ? valueSet(ctx, check.locationTypes) : undefined;
  if (typeSet) {
    const hit = locationTypesOf(ctx).find((l) => typeSet.matches(l.concept));
    if (hit) {
      return outcome('met', { evidence: [{ ...(hit.reference && !hit.reference.startsWith('#') ? { reference: hit.reference } : {}), text: `${hit.where}: ${describeConcept(typeSet, hit.concept)}` }] });
    }
  }
  const encounter = ctx.record.encounter;
  const classCode = typeof encounter?.class?.code === 'string' ? encounter.class.code : undefined;
  const classText = classCode ? `Encounter class ${classCode}${ENCOUNTER_CLASS_NAMES[classCode] ? ` (${ENCOUNTER_CLASS_NAMES[classCode]})` : ''}` : undefined;
  const classEvidence = classText && encounter ? [{ reference: referenceOf(encounter), text: classText }] : [];
  if (classCode && (check.encounterClasses ?? []).includes(classCode)) {
    return outcome('met', { evidence: classEvidence });
  }
  if (classCode && (check.excludedEncounterClasses ?? []).includes(classCode)) {
    return outcome('not-met', { evidence: classEvidence, notes: [`${classText} is not ${check.setting}`] });
  }
  if (!encounter) {
    const gap = unavailable(ctx, ['encounter']);
    if (gap) return gap;
  }
  return outcome('missing', {
    evidence: classEvidence,
    notes: [`The record does not show that the drug is given in ${check.setting}`],
    missing: [{ text: check.missing ?? `Documentation that the drug is administered in ${check.setting}`, category: check.docCategory ?? 'admin' }],
  });
}
