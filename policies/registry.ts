import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import type { Ajv, ErrorObject, ValidateFunction } from 'ajv';
import type { Coverage, Identifier } from 'fhir/r4.js';
import type { CompiledPolicy } from './engine/context.ts';
import { inRange } from './engine/dates.ts';
import { compileExpression, type CompiledExpression } from './engine/fhirpath.ts';
import { ProductCatalog } from './engine/products.ts';
import { CompiledValueSet, normaliseCode, systemKey } from './engine/terminology.ts';
import { createAjv } from './schema/ajv.ts';
import type {
  Check,
  MatchedProduct,
  PolicyDocument,
  ProductDefinition,
  TreatmentSiteRegistry,
  ValueSetDefinition,
  ValueSetInclude,
} from './engine/types.ts';

/**
 * Loads the policy data (payer registry, product catalog, shared value sets, local codes and one
 * file per policy), validates every file against its JSON Schema and cross-references, compiles
 * value sets and FHIRPath once, and answers "which payer, which policy" questions. A bad file
 * stops startup with a message naming the file and the field.
 */

export interface MemberGroup {
  id: string;
  name: string;
  classType: string;
  values: string[];
}

export interface PayerDefinition {
  id: string;
  name: string;
  identifiers: { system: string; value: string }[];
  memberGroups?: MemberGroup[];
}

interface PayersFile {
  payers: PayerDefinition[];
}
interface ProductsFile {
  unclassifiedCodes: { system: string; code: string; display?: string }[];
  products: ProductDefinition[];
}
interface TreatmentCentersFile {
  registries: TreatmentSiteRegistry[];
}
interface TerminologyFile {
  valueSets?: Record<string, ValueSetDefinition>;
  extend?: Record<string, { include?: ValueSetInclude[]; textMatch?: string[][] }>;
}

export class PolicyDataError extends Error {
  constructor(file: string, message: string) {
    super(`${file}: ${message}`);
    this.name = 'PolicyDataError';
  }
}

function schemaValidator(dir: string): Ajv {
  const ajv = createAjv({ allErrors: false, strict: true, strictRequired: false, discriminator: true, allowUnionTypes: true });
  for (const name of ['valueset', 'policy', 'products', 'payers', 'terminology', 'treatment-centers']) {
    const file = path.join(dir, 'schema', `${name}.schema.json`);
    ajv.addSchema(JSON.parse(readFileSync(file, 'utf8')) as object, name);
  }
  return ajv;
}

function describeError(error: ErrorObject): string {
  const where = error.instancePath || '(root)';
  const extra =
    error.keyword === 'additionalProperties'
      ? ` "${String((error.params as { additionalProperty?: string }).additionalProperty)}"`
      : error.keyword === 'enum'
        ? ` (${((error.params as { allowedValues?: unknown[] }).allowedValues ?? []).join(', ')})`
        : '';
  return `field ${where} ${error.message ?? 'is invalid'}${extra}`;
}

function readJson<T>(ajv: Ajv, schema: string, file: string, root: string): T {
  const shown = path.relative(root, file) || file;
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new PolicyDataError(shown, `not readable JSON (${(error as Error).message})`);
  }
  const validate = ajv.getSchema(schema) as ValidateFunction | undefined;
  if (!validate) throw new Error(`schema ${schema} not registered`);
  if (!validate(data)) throw new PolicyDataError(shown, describeError(validate.errors![0]!));
  return data as T;
}

interface CheckRefs {
  valueSets: [string, string][];
  expressions: [string, string][];
  registries: [string, string][];
}

/** Every value set id, FHIRPath expression and site registry a check refers to, with its JSON location. */
function checkReferences(check: Check, at: string, out: CheckRefs): void {
  const vs = (id: string | undefined, field: string) => {
    if (id) out.valueSets.push([id, `${at}/${field}`]);
  };
  switch (check.type) {
    case 'allOf':
    case 'anyOf':
      check.checks.forEach((c, i) => checkReferences(c, `${at}/checks/${i}`, out));
      break;
    case 'prescriberSpecialty':
    case 'conditionPresent':
    case 'conditionAbsent':
    case 'medicationPlanned':
    case 'orderPlanned':
      vs(check.valueSet, 'valueSet');
      break;
    case 'observation':
      vs(check.valueSet, 'valueSet');
      vs(check.narrativeValueSet, 'narrativeValueSet');
      vs(check.method?.valueSet, 'method/valueSet');
      vs(check.method?.impliedByCodes, 'method/impliedByCodes');
      check.bands?.forEach((b, i) => vs(b.valueSet, `bands/${i}/valueSet`));
      if (check.where) out.expressions.push([check.where, `${at}/where`]);
      if (check.valuePath) out.expressions.push([check.valuePath, `${at}/valuePath`]);
      break;
    case 'correctedGestationalAge':
      vs(check.gestationalAgeValueSet, 'gestationalAgeValueSet');
      vs(check.pretermValueSet, 'pretermValueSet');
      break;
    case 'productHistoryAbsent':
      vs(check.historyConditionValueSet, 'historyConditionValueSet');
      vs(check.procedureValueSet, 'procedureValueSet');
      break;
    case 'dosePerKg':
    case 'onLabel':
      vs(check.weightValueSet, 'weightValueSet');
      break;
    case 'careSetting':
      vs(check.locationTypes, 'locationTypes');
      break;
    case 'treatmentSite':
      out.registries.push([check.registry, `${at}/registry`]);
      break;
    case 'when':
      checkReferences(check.if, `${at}/if`, out);
      checkReferences(check.then, `${at}/then`, out);
      break;
    case 'age':
    case 'sex':
    case 'attestation':
    case 'never':
    case 'productStatus':
    case 'orderQuantity':
      break;
  }
}

function checkUsesDose(check: Check): boolean {
  if (check.type === 'allOf' || check.type === 'anyOf') return check.checks.some(checkUsesDose);
  if (check.type === 'when') return checkUsesDose(check.then);
  return check.type === 'dosePerKg';
}

function overlaps(a: { start?: string; end?: string }, b: { start?: string; end?: string }): boolean {
  return (a.start ?? '0000-00-00') <= (b.end ?? '9999-99-99') && (b.start ?? '0000-00-00') <= (a.end ?? '9999-99-99');
}

export class PolicyRegistry {
  readonly payers: PayerDefinition[];
  readonly catalog: ProductCatalog;
  readonly policies: CompiledPolicy[];
  /** Every value set shared by the policies (policy-local ones live in each CompiledPolicy). */
  readonly sharedValueSets: ReadonlyMap<string, CompiledValueSet>;
  private readonly payerByIdentifier = new Map<string, PayerDefinition>();

  constructor(payers: PayerDefinition[], catalog: ProductCatalog, policies: CompiledPolicy[], shared: ReadonlyMap<string, CompiledValueSet>) {
    this.payers = payers;
    this.catalog = catalog;
    this.policies = policies;
    this.sharedValueSets = shared;
    for (const payer of payers) {
      for (const id of payer.identifiers) this.payerByIdentifier.set(`${id.system.trim()}|${id.value.trim()}`, payer);
    }
  }

  /** The payer an Organization's identifiers name (never its name). */
  payerFor(identifiers: Identifier[]): PayerDefinition | undefined {
    for (const id of identifiers) {
      if (!id.system || !id.value) continue;
      const payer = this.payerByIdentifier.get(`${id.system.trim()}|${id.value.trim()}`);
      if (payer) return payer;
    }
    return undefined;
  }

  payer(id: string): PayerDefinition | undefined {
    return this.payers.find((p) => p.id === id);
  }

  /** Configured member groups (e.g. BCBSMS State Health Plan) this coverage's classes fall in. */
  memberGroups(payer: PayerDefinition, coverage: Coverage): string[] {
    const groups: string[] = [];
    for (const group of payer.memberGroups ?? []) {
      const hit = (coverage.class ?? []).some(
        (c) => c.type?.coding?.some((t) => t.code === group.classType) && group.values.includes(c.value),
      );
      if (hit) groups.push(group.id);
    }
    return groups;
  }

  /** Policies of a payer in effect on a day that cover the ordered product. */
  policiesFor(payerId: string, product: MatchedProduct, day: string): CompiledPolicy[] {
    return this.policies.filter((p) => {
      const doc = p.doc;
      if (doc.payer !== payerId || !inRange(day, doc.effective)) return false;
      if (product.product) {
        if (doc.products.ids?.includes(product.product.id)) return true;
        return doc.products.category !== undefined && product.product.categories.includes(doc.products.category);
      }
      // An unclassified code alone: in scope only where the policy says such orders are its business.
      const [system, code] = product.matchedValue.split(' ') as [string, string];
      return (doc.unidentifiedProductCodes ?? []).some(
        (u) => systemKey(u.system).toUpperCase() === system && normaliseCode(systemKey(u.system), u.code) === code,
      );
    });
  }

  /** Policies of a payer in effect on a day that judge services ordered alongside their products. */
  companionPoliciesFor(payerId: string, day: string): CompiledPolicy[] {
    return this.policies.filter((p) => p.doc.payer === payerId && inRange(day, p.doc.effective) && (p.doc.companionServices ?? []).length > 0);
  }

  policy(id: string): CompiledPolicy | undefined {
    return this.policies.find((p) => p.doc.id === id);
  }
}

function mergeExtension(base: ValueSetDefinition, ext: { include?: ValueSetInclude[]; textMatch?: string[][] }): ValueSetDefinition {
  return {
    ...base,
    include: [...base.include, ...(ext.include ?? [])],
    textMatch: [...(base.textMatch ?? []), ...(ext.textMatch ?? [])],
  };
}

/** Loads and validates everything under the policy directory. Throws PolicyDataError on bad data. */
export function loadPolicyRegistry(policyDir: string): PolicyRegistry {
  const ajv = schemaValidator(policyDir);
  const root = path.dirname(policyDir);
  const payersFile = readJson<PayersFile>(ajv, 'payers', path.join(policyDir, 'payers.json'), root);
  const productsFile = readJson<ProductsFile>(ajv, 'products', path.join(policyDir, 'products.json'), root);
  const terminologyDir = path.join(policyDir, 'terminology');
  const shared = readJson<TerminologyFile>(ajv, 'terminology', path.join(terminologyDir, 'valuesets.json'), root);
  const localFile = path.join(terminologyDir, 'local-codes.json');
  const local = readJson<TerminologyFile>(ajv, 'terminology', localFile, root);

  const definitions = new Map<string, ValueSetDefinition>(Object.entries(shared.valueSets ?? {}));
  for (const [id, ext] of Object.entries(local.extend ?? {})) {
    const base = definitions.get(id);
    if (!base) throw new PolicyDataError(path.relative(root, localFile), `field /extend/${id} extends an unknown value set "${id}"`);
    definitions.set(id, mergeExtension(base, ext));
  }
  for (const [id, def] of Object.entries(local.valueSets ?? {})) definitions.set(id, def);
  const compileSet = (id: string, def: ValueSetDefinition, file: string) => {
    try {
      return new CompiledValueSet(id, def);
    } catch (error) {
      throw new PolicyDataError(file, `field /valueSets/${id} has an invalid pattern (${(error as Error).message})`);
    }
  };
  const sharedSets = new Map<string, CompiledValueSet>();
  for (const [id, def] of definitions) sharedSets.set(id, compileSet(id, def, 'policies/terminology'));

  const productIds = new Set<string>();
  for (const product of productsFile.products) {
    if (productIds.has(product.id)) throw new PolicyDataError('policies/products.json', `duplicate product id "${product.id}"`);
    productIds.add(product.id);
    if (product.label?.indicationValueSet && !sharedSets.has(product.label.indicationValueSet)) {
      throw new PolicyDataError('policies/products.json', `product ${product.id}: field label/indicationValueSet names unknown value set "${product.label.indicationValueSet}"`);
    }
  }
  const catalog = new ProductCatalog(productsFile.products, productsFile.unclassifiedCodes);
  const payerIds = new Set(payersFile.payers.map((p) => p.id));

  const centersFile = path.join(policyDir, 'treatment-centers.json');
  const centers = readJson<TreatmentCentersFile>(ajv, 'treatment-centers', centersFile, root);
  const siteRegistries = new Map<string, TreatmentSiteRegistry>();
  for (const [i, registry] of centers.registries.entries()) {
    const shownCenters = path.relative(root, centersFile);
    if (siteRegistries.has(registry.id)) throw new PolicyDataError(shownCenters, `field /registries/${i}/id "${registry.id}" is not unique`);
    if (!payerIds.has(registry.payer)) throw new PolicyDataError(shownCenters, `field /registries/${i}/payer names unknown payer "${registry.payer}"`);
    for (const [j, site] of registry.sites.entries()) {
      for (const id of site.qualifiedFor.products ?? []) {
        if (!productIds.has(id)) throw new PolicyDataError(shownCenters, `field /registries/${i}/sites/${j}/qualifiedFor/products names unknown product "${id}"`);
      }
    }
    siteRegistries.set(registry.id, registry);
  }

  const dataDir = path.join(policyDir, 'data');
  const files = readdirSync(dataDir).filter((f) => f.endsWith('.json')).sort();
  const expressions = new Map<string, CompiledExpression>();
  const policies: CompiledPolicy[] = [];
  const seenIds = new Set<string>();
  for (const name of files) {
    const file = path.join(dataDir, name);
    const shown = path.relative(root, file);
    const doc = readJson<PolicyDocument>(ajv, 'policy', file, root);
    if (seenIds.has(doc.id)) throw new PolicyDataError(shown, `field /id "${doc.id}" is used by another policy file`);
    seenIds.add(doc.id);
    if (!payerIds.has(doc.payer)) throw new PolicyDataError(shown, `field /payer names unknown payer "${doc.payer}"`);
    for (const id of doc.products.ids ?? []) {
      if (!productIds.has(id)) throw new PolicyDataError(shown, `field /products/ids names unknown product "${id}"`);
    }
    const valueSets = new Map(sharedSets);
    for (const [id, def] of Object.entries(doc.valueSets ?? {})) valueSets.set(id, compileSet(id, def, shown));

    const usedRegistries = new Map<string, TreatmentSiteRegistry>();
    const requireValueSet = (id: string | undefined, at: string) => {
      if (id && !valueSets.has(id)) throw new PolicyDataError(shown, `field ${at} names unknown value set "${id}"`);
    };
    const requireProduct = (id: string, at: string) => {
      if (!productIds.has(id)) throw new PolicyDataError(shown, `field ${at} names unknown product "${id}"`);
    };
    (doc.companionServices ?? []).forEach((companion, i) => {
      requireValueSet(companion.orderCodes, `/companionServices/${i}/orderCodes`);
      requireValueSet(companion.orderReasons, `/companionServices/${i}/orderReasons`);
    });
    (doc.notes ?? []).forEach((note, i) => (note.products ?? []).forEach((id) => requireProduct(id, `/notes/${i}/products`)));
    doc.coverageRules.forEach((rule, i) => {
      if (rule.criteriaAdvisory && rule.effect !== 'conditional') {
        throw new PolicyDataError(shown, `field /coverageRules/${i}/criteriaAdvisory is only meaningful for a conditional rule`);
      }
    });

    const criterionIds = new Set<string>();
    doc.criteria.forEach((criterion, i) => {
      if (criterionIds.has(criterion.id)) throw new PolicyDataError(shown, `field /criteria/${i}/id "${criterion.id}" is not unique`);
      criterionIds.add(criterion.id);
      for (const id of criterion.products ?? []) {
        if (!productIds.has(id)) throw new PolicyDataError(shown, `field /criteria/${i}/products names unknown product "${id}"`);
      }
      const refs: CheckRefs = { valueSets: [], expressions: [], registries: [] };
      checkReferences(criterion.check, `/criteria/${i}/check`, refs);
      for (const [id, at] of refs.valueSets) requireValueSet(id, at);
      for (const [id, at] of refs.registries) {
        const registry = siteRegistries.get(id);
        if (!registry) throw new PolicyDataError(shown, `field ${at} names unknown treatment-site registry "${id}"`);
        if (registry.payer !== doc.payer) throw new PolicyDataError(shown, `field ${at} names registry "${id}" of another payer (${registry.payer})`);
        usedRegistries.set(id, registry);
      }
      for (const [source, at] of refs.expressions) {
        if (expressions.has(source)) continue;
        try {
          expressions.set(source, compileExpression(source));
        } catch (error) {
          throw new PolicyDataError(shown, `field ${at} is not valid FHIRPath (${(error as Error).message.split('\n')[0]})`);
        }
      }
      if (checkUsesDose(criterion.check)) {
        const targets = criterion.products ?? doc.products.ids ?? [];
        for (const id of targets) {
          if (!catalog.get(id)?.dosing?.perKg) throw new PolicyDataError(shown, `field /criteria/${i} checks the dose of "${id}", which has no dosing/perKg in products.json`);
        }
      }
    });
    for (const [i, limit] of (doc.quantityLimits ?? []).entries()) {
      if (!productIds.has(limit.product)) throw new PolicyDataError(shown, `field /quantityLimits/${i}/product names unknown product "${limit.product}"`);
    }
    // Versions of one policy hand over from one to the next: two in effect on one day would be ambiguous.
    const clash = policies.find((p) => p.doc.payer === doc.payer && p.doc.policyNumber === doc.policyNumber && overlaps(p.doc.effective, doc.effective));
    if (clash) {
      throw new PolicyDataError(shown, `field /effective overlaps version ${clash.doc.version} of ${doc.policyNumber} (${clash.doc.id})`);
    }
    policies.push({ doc, valueSets, expressions, siteRegistries: usedRegistries });
  }
  return new PolicyRegistry(payersFile.payers, catalog, policies, sharedSets);
}
