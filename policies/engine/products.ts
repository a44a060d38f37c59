import type { CodeableConcept, Extension, FhirResource, Medication, Reference } from 'fhir/r4.js';
import { inRange } from './dates.ts';
import type { OrderResource, ResourceIndex } from './record.ts';
import { conceptCodings, conceptTexts, normaliseCode, systemKey, systemUri, type NormalisedCoding } from './terminology.ts';
import type { MatchedProduct, ProductCode, ProductDefinition } from './types.ts';

export const BILLING_OPTIONS_URL = 'http://hl7.org/fhir/us/davinci-crd/StructureDefinition/ext-billing-options';

/** What an order says about the product: every coding (normalised) and every text. */
export interface OrderProductFacts {
  codings: NormalisedCoding[];
  texts: string[];
  /** The Medication resolved from medicationReference, when there is one. */
  medication?: Medication;
  /** A medicationReference that could not be resolved (for the "what is missing" message). */
  unresolvedMedication?: string;
}

function billingOptionConcepts(concept: CodeableConcept | undefined): CodeableConcept[] {
  const out: CodeableConcept[] = [];
  const extensions: unknown = (concept as { extension?: unknown } | undefined)?.extension;
  for (const ext of (Array.isArray(extensions) ? extensions : []) as Array<Extension | null>) {
    if (ext?.url === BILLING_OPTIONS_URL && ext.valueCodeableConcept) out.push(ext.valueCodeableConcept);
  }
  return out;
}

function addConcept(facts: OrderProductFacts, concept: CodeableConcept | undefined): void {
  if (!concept) return;
  facts.codings.push(...conceptCodings(concept));
  facts.texts.push(...conceptTexts(concept));
  // CRD ext-billing-options carries the billing codes (HCPCS/CPT) alongside the clinical code.
  for (const billing of billingOptionConcepts(concept)) {
    facts.codings.push(...conceptCodings(billing));
    facts.texts.push(...conceptTexts(billing));
  }
}

/**
 * The product named by a medication[x] pair (MedicationRequest, MedicationAdministration,
 * MedicationStatement): the concept, or the referenced Medication's code.
 */
export function medicationFacts(
  concept: CodeableConcept | undefined,
  reference: Reference | undefined,
  from: FhirResource,
  index: ResourceIndex,
): OrderProductFacts {
  const facts: OrderProductFacts = { codings: [], texts: [] };
  addConcept(facts, concept);
  if (reference) {
    const resolved = index.resolve(reference, from);
    if (resolved?.resourceType === 'Medication') {
      facts.medication = resolved;
      addConcept(facts, resolved.code);
    } else {
      const named = [reference.reference, reference.display].find((v): v is string => typeof v === 'string' && v !== '');
      facts.unresolvedMedication = named ?? 'medicationReference';
    }
    if (typeof reference.display === 'string' && reference.display) facts.texts.push(reference.display);
  }
  return facts;
}

/** Collects the codes and names of the product an order is for. */
export function orderProductFacts(order: OrderResource, index: ResourceIndex): OrderProductFacts {
  const facts: OrderProductFacts = { codings: [], texts: [] };
  switch (order.resourceType) {
    case 'MedicationRequest':
      return medicationFacts(order.medicationCodeableConcept, order.medicationReference, order, index);
    case 'ServiceRequest':
      addConcept(facts, order.code);
      break;
    case 'DeviceRequest':
      addConcept(facts, order.codeCodeableConcept);
      break;
  }
  return facts;
}

interface IndexedCode {
  product: ProductDefinition;
  code: ProductCode;
}

/** The catalog of products the policies know, with fast lookup by code and by name. */
export class ProductCatalog {
  private readonly products = new Map<string, ProductDefinition>();
  private readonly byCode = new Map<string, IndexedCode[]>();
  private readonly namePatterns: { product: ProductDefinition; pattern: RegExp; name: string }[] = [];
  private readonly unclassified = new Set<string>();

  constructor(products: ProductDefinition[], unclassifiedCodes: { system: string; code: string }[]) {
    for (const product of products) {
      this.products.set(product.id, product);
      const codes: ProductCode[] = [...product.codes];
      for (const kit of product.dosing?.kits ?? []) codes.push({ system: 'ndc', code: kit.ndc });
      for (const code of codes) {
        const key = codeKey(code.system, code.code);
        const list = this.byCode.get(key) ?? [];
        list.push({ product, code });
        this.byCode.set(key, list);
      }
      for (const name of product.names) {
        const escaped = name.toLowerCase().replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/\s+/g, '\\s+');
        this.namePatterns.push({ product, name, pattern: new RegExp(`(^|[^a-z])${escaped}([^a-z]|$)`, 'i') });
      }
    }
    for (const u of unclassifiedCodes) this.unclassified.add(codeKey(u.system, u.code));
  }

  get(id: string): ProductDefinition | undefined {
    return this.products.get(id);
  }

  all(): ProductDefinition[] {
    return [...this.products.values()];
  }

  isUnclassified(coding: NormalisedCoding): boolean {
    return this.unclassified.has(`${coding.system}|${coding.code}`);
  }

  /**
   * Identifies the ordered product. NDC and RxNorm identify a product precisely; a product-specific
   * HCPCS code next; names last. Unclassified codes (J3590, J3490, C9399) identify nothing by
   * themselves: the NDC, RxNorm code or name must say which product it is.
   */
  identify(facts: OrderProductFacts): MatchedProduct | undefined {
    for (const system of ['ndc', 'rxnorm', 'hcpcs'] as const) {
      for (const coding of facts.codings) {
        if (coding.system !== system || this.isUnclassified(coding)) continue;
        const hit = this.byCode.get(`${coding.system}|${coding.code}`)?.[0];
        if (hit) return { product: hit.product, matchedBy: system, matchedValue: `${system.toUpperCase()} ${coding.code}` };
      }
    }
    for (const text of facts.texts) {
      for (const { product, pattern, name } of this.namePatterns) {
        if (pattern.test(text)) return { product, matchedBy: 'name', matchedValue: name };
      }
    }
    const unclassified = facts.codings.find((c) => this.isUnclassified(c));
    if (unclassified) return { product: null, matchedBy: 'unclassified-code', matchedValue: `${unclassified.system.toUpperCase()} ${unclassified.code}` };
    return undefined;
  }

  /** Product-specific HCPCS codes in effect on a day (what the claim must carry). */
  billingCodes(product: ProductDefinition, day: string): ProductCode[] {
    return product.codes.filter((c) => systemKey(c.system) === 'hcpcs' && inRange(day, c.effective));
  }

  /** Whether a product has a code of this system (e.g. any NDC) to ask for. */
  codesOf(product: ProductDefinition, system: string): ProductCode[] {
    const key = systemKey(system);
    return product.codes.filter((c) => systemKey(c.system) === key);
  }
}

function codeKey(system: string, code: string): string {
  const key = systemKey(system);
  return `${key}|${normaliseCode(key, code)}`;
}

export function codingForEmission(code: ProductCode, display?: string): { system: string; code: string; display?: string } {
  return { system: systemUri(systemKey(code.system)), code: code.code, ...(display ? { display } : {}) };
}
