/**
 * The policy engine's contract: the shape of policy data files (as authored in JSON), the
 * checks a criterion may use, and the results the engine produces. The engine is a pure
 * function of (policy, gathered data, order, date); nothing here knows about HTTP.
 */

// ---------------------------------------------------------------------------------------------
// Terminology
// ---------------------------------------------------------------------------------------------

/** One part of a value set: codes of one system, matched exactly, by prefix, or by range. */
export interface ValueSetInclude {
  /** A system alias (icd-10-cm, snomed, loinc, rxnorm, ndc, hcpcs, cpt, nucc, hgnc, sopt) or a URI. */
  system: string;
  codes?: string[];
  /** Codes starting with any of these (after normalisation, e.g. ICD-10 dots removed). */
  prefixes?: string[];
  /** Inclusive ranges compared on the category (first characters), e.g. ["A00", "B99"]. */
  ranges?: [string, string][];
}

export interface ValueSetDefinition {
  title: string;
  include: ValueSetInclude[];
  exclude?: ValueSetInclude[];
  /**
   * Text matching for results that carry no usable code (e.g. local lab codes): a concept matches
   * when every regular expression of any one group matches its text or a coding display.
   */
  textMatch?: string[][];
  /** Where the codes come from (clinical-codes.md section), and whether they are verified. */
  source?: string;
}

// ---------------------------------------------------------------------------------------------
// Products
// ---------------------------------------------------------------------------------------------

export interface DateRange {
  /** First day (inclusive), YYYY-MM-DD. */
  start?: string;
  /** Last day (inclusive), YYYY-MM-DD. */
  end?: string;
}

export interface ProductCode {
  system: string;
  code: string;
  /** When this code identifies the product for billing (e.g. HCPCS J3389 from 2026-01-01). */
  effective?: DateRange;
  note?: string;
  /** V (verified), S (secondary) or UNVERIFIED, as in clinical-codes.md. */
  status?: 'V' | 'S' | 'UNVERIFIED';
}

/** A weight band of a kit-dosed product (Zolgensma kits by body weight). */
export interface DoseKit {
  ndc: string;
  minKg: number;
  maxKg: number;
  vials: number;
  status?: 'V' | 'S' | 'UNVERIFIED';
}

export interface ProductDosing {
  /** The labelled dose per kg, in the unit named by `unit` (e.g. 1.1e14 {vg}/kg). */
  perKg?: { value: number; unit: string };
  /** Concentration used to turn a volume into a dose (e.g. 2.0e13 {vg}/mL). */
  concentration?: { value: number; unit: string };
  /** The label rounds the weight up to the kit band's upper bound; dose = perKg × band upper. */
  weightBandKg?: number;
  kits?: DoseKit[];
  source?: string;
}

/** Label facts that can be individually unverified (clinical-codes.md §1.2 marks them one by one). */
export type LabelFactName = 'indication' | 'age' | 'sex' | 'dose' | 'medicaidDrugRebate';

export interface LabelFacts {
  indication: string;
  /** Value set id of diagnoses the label covers (absent when no verified codes exist). */
  indicationValueSet?: string;
  minAgeYears?: number;
  /** Exclusive upper age bound in years (Zolgensma: < 2). */
  maxAgeYearsExclusive?: number;
  /** Inclusive upper age bound in years (Skysona: 4–17). */
  maxAgeYearsInclusive?: number;
  sex?: 'male' | 'female';
  doseBasis?: string;
  /** Manufacturer participates in the Medicaid Drug Rebate Program. */
  medicaidDrugRebate?: boolean | 'UNVERIFIED';
  /** Where the rebate-program fact comes from. */
  medicaidDrugRebateSource?: string;
  /** Boxed warnings and label limits, shown with the administration instructions. */
  warnings?: string;
  /**
   * Facts stated here that no source verified: a check never denies on them alone (it asks for
   * review instead), so an unverified age floor cannot turn into a false "not covered".
   */
  unverifiedFacts?: LabelFactName[];
  source: string;
  status: 'V' | 'S' | 'UNVERIFIED';
}

export interface ProductDefinition {
  id: string;
  name: string;
  nonproprietaryName: string;
  /** Lower-case names matched in order text and coding displays (brand and nonproprietary). */
  names: string[];
  codes: ProductCode[];
  categories: string[];
  fdaApproved: boolean;
  /** The regulatory status in words when it is not a plain approval (e.g. an Emergency Use Authorization). */
  regulatoryNote?: string;
  label?: LabelFacts;
  dosing?: ProductDosing;
}

// ---------------------------------------------------------------------------------------------
// Treatment-site registries (e.g. a Medicaid plan's Qualified Treatment Centers)
// ---------------------------------------------------------------------------------------------

export interface TreatmentSite {
  name: string;
  /** Identifiers the site is matched on (NPI, or any system the EHR sends); never its name. */
  identifiers: { system: string; value: string }[];
  /** What the site is approved to give: every FDA-approved product, or listed products/categories. */
  qualifiedFor: { allFdaApproved?: boolean; products?: string[]; categories?: string[] };
}

export interface TreatmentSiteRegistry {
  id: string;
  payer: string;
  title: string;
  source: string;
  sites: TreatmentSite[];
}

// ---------------------------------------------------------------------------------------------
// Checks (the machine-readable part of a criterion)
// ---------------------------------------------------------------------------------------------

export type Comparator = '<' | '<=' | '>' | '>=' | '=';

/** A comparison of a numeric value, optionally with a UCUM unit the value is converted to first. */
export interface NumericTest {
  comparator: Comparator;
  value: number;
  unit?: string;
}

/** How an observation's value is read. */
export type ValueKind = 'quantity' | 'titer' | 'coded' | 'presence';

/** One band of an observation check: the first band whose test holds decides the status. */
export interface ValueBand {
  test?: NumericTest;
  /** For coded values: the value matches this value set. */
  valueSet?: string;
  status: CriterionStatus;
  /** Why, shown on the card (e.g. "one SMN1 copy: document the second pathogenic variant"). */
  note?: string;
}

interface CheckBase {
  /** Short label for a sub-check, shown in the checklist (e.g. "AST"). */
  label?: string;
  /** What to document when the check lacks data; listed on the card. */
  missing?: string;
  /** The documentation category when missing (CRD doc-needed). */
  docCategory?: 'clinical' | 'admin';
}

export interface AllOfCheck extends CheckBase {
  type: 'allOf';
  checks: Check[];
}

export interface AnyOfCheck extends CheckBase {
  type: 'anyOf';
  checks: Check[];
  /** Status when no branch is met and none is missing (default not-met). */
  otherwise?: CriterionStatus;
}

export interface PrescriberSpecialtyCheck extends CheckBase {
  type: 'prescriberSpecialty';
  valueSet: string;
}

export interface ConditionPresentCheck extends CheckBase {
  type: 'conditionPresent';
  valueSet: string;
  /** Count the order's own reasonCode/reasonReference as a diagnosis (default true). */
  includeOrderReason?: boolean;
  /** Status when the record has conditions but none matches (default missing). */
  whenAbsent?: CriterionStatus;
  /** Status when the order states a reason that is not in the value set (e.g. not-met: off-label). */
  whenOrderReasonOther?: CriterionStatus;
  /**
   * The order's stated reason is the use being judged: when it states one, the patient's other
   * diagnoses do not count (a drug ordered for depression is not "for" the patient's heart block).
   */
  orderReasonDecides?: boolean;
}

export interface ConditionAbsentCheck extends CheckBase {
  type: 'conditionAbsent';
  valueSet: string;
  /** Only conditions whose clinicalStatus is active/recurrence/relapse (default true). */
  activeOnly?: boolean;
  /** Only conditions with onset/recorded date within this many days of the evaluation date. */
  onsetWithinDays?: number;
  /** What a matching condition means: not-met, review (e.g. Medical Director) or deferred. */
  whenPresent: CriterionStatus;
  /** Shown with a present condition (e.g. "Refer to Medical Director"). */
  presentNote?: string;
  /**
   * Judge only the order's stated reasons (reasonCode/reasonReference): the use being ordered,
   * not the patient's history (Ketalar for depression is excluded; a depressed patient's
   * anesthesia is not).
   */
  orderReasonOnly?: boolean;
}

export interface AgeCheck extends CheckBase {
  type: 'age';
  /** Age in years at the service date must satisfy all given bounds. */
  minYears?: number;
  maxYearsExclusive?: number;
  maxYearsInclusive?: number;
  /** Status when out of bounds (default not-met). */
  whenOutside?: CriterionStatus;
}

export interface SexCheck extends CheckBase {
  type: 'sex';
  allowed: ('male' | 'female')[];
}

export interface ObservationCheck extends CheckBase {
  type: 'observation';
  valueSet: string;
  /** Optional FHIRPath filter evaluated on each candidate Observation (compiled once). */
  where?: string;
  /** Optional FHIRPath extracting the value (default Observation.value). */
  valuePath?: string;
  valueKind: ValueKind;
  /** Only results with an effective date within this many days before the evaluation date. */
  withinDays?: number;
  /** Ordered bands; a value that satisfies none is not-met. Not needed for `presence`. */
  bands?: ValueBand[];
  /** Method requirement (e.g. ELISA): Observation.method matches, or the code implies it. */
  method?: {
    valueSet: string;
    /** Codes whose assay is known to use the method (e.g. a lab's ELISA test code). */
    impliedByCodes?: string;
    name: string;
    whenAbsent: CriterionStatus;
    whenOther: CriterionStatus;
  };
  /** Status when a matching result exists but its value cannot be read (e.g. narrative only). */
  whenUnreadable?: CriterionStatus;
  /** Value sets of results that exist only as narrative (e.g. SMN1 35462-1 text). */
  narrativeValueSet?: string;
}

export interface CorrectedGestationalAgeCheck extends CheckBase {
  type: 'correctedGestationalAge';
  /** Observation codes for gestational age at birth (76516-4). */
  gestationalAgeValueSet: string;
  /** Conditions that show preterm birth (P07.2x, P07.3x). */
  pretermValueSet: string;
  /** Completed weeks implied by specific preterm codes (normalised, e.g. "P0731": 28). */
  pretermCodeWeeks: Record<string, number>;
  /** Born before this many weeks counts as preterm (37). */
  pretermBeforeWeeks: number;
  /** The corrected age is reached when GA at birth + postnatal age reaches this (40 weeks). */
  termWeeks: number;
}

export interface MedicationPlannedCheck extends CheckBase {
  type: 'medicationPlanned';
  valueSet: string;
  /** MedicationRequest statuses that count as a plan (draft orders in the hook always count). */
  statuses: string[];
}

export interface OrderPlannedCheck extends CheckBase {
  type: 'orderPlanned';
  /** ServiceRequest codes that show the plan (e.g. monitoring labs). */
  valueSet: string;
  statuses: string[];
}

export interface ProductHistoryAbsentCheck extends CheckBase {
  type: 'productHistoryAbsent';
  /** "same": the ordered product; otherwise a product category (e.g. "cell-gene-therapy"). */
  products: 'same' | { category: string };
  /** Conditions that record a history of such a therapy (Z92.86). */
  historyConditionValueSet?: string;
  /** Procedure codes that record an administration (ICD-10-PCS, CPT). */
  procedureValueSet?: string;
  whenPresent: CriterionStatus;
}

export interface DosePerKgCheck extends CheckBase {
  type: 'dosePerKg';
  weightValueSet: string;
  /** Only weights measured within this many days (default: latest). */
  weightWithinDays?: number;
}

export interface AttestationCheck extends CheckBase {
  type: 'attestation';
  /** Documentation the record cannot show; always listed as missing unless waived by config. */
  item: string;
}

export interface NeverCheck extends CheckBase {
  type: 'never';
  /** The policy's reason the product is not medically necessary. */
  reason: string;
}

/** A fact about the ordered product itself, from the catalog. */
export interface ProductStatusCheck extends CheckBase {
  type: 'productStatus';
  /**
   * identified: the catalog knows the product (an unclassified code alone is not enough);
   * fdaApproved: the catalog records an FDA approval;
   * medicaidDrugRebate: the manufacturer participates in the Medicaid Drug Rebate Program.
   */
  fact: 'identified' | 'fdaApproved' | 'medicaidDrugRebate';
  /** Status when the catalog marks the fact UNVERIFIED or does not state it (default missing, admin). */
  whenUnverified?: CriterionStatus;
}

export type LabelAspect = 'indication' | 'age' | 'sex' | 'dose' | 'form';

/** Use per the FDA label, judged from the catalog's label facts of the ordered product. */
export interface OnLabelCheck extends CheckBase {
  type: 'onLabel';
  aspects: LabelAspect[];
  /** Body weight codes, for products with a per-kg labelled dose. */
  weightValueSet?: string;
  /** Status when an unverified label fact is what excludes the use (default review). */
  whenUnverified?: CriterionStatus;
}

/** Where the therapy is given: a site in a configured registry (e.g. Qualified Treatment Centers). */
export interface TreatmentSiteCheck extends CheckBase {
  type: 'treatmentSite';
  /** Id of a registry in policies/treatment-centers.json. */
  registry: string;
}

/** The care setting, from the Encounter's class and the types of its (or the order's) locations. */
export interface CareSettingCheck extends CheckBase {
  type: 'careSetting';
  /** The setting in words, e.g. "a critical care setting". */
  setting: string;
  /** Encounter.class codes (v3 ActCode) that establish the setting. */
  encounterClasses?: string[];
  /** Value set of Location.type codes that establish the setting. */
  locationTypes?: string;
  /** Encounter.class codes that rule the setting out. */
  excludedEncounterClasses?: string[];
}

/** The ordered amount against a limit per period (dispense quantity and dosing rate). */
export interface OrderQuantityCheck extends CheckBase {
  type: 'orderQuantity';
  max: { value: number; unit: string };
  /** Unit codes and spellings that count as the limit's unit (e.g. {tbl}, tablet, TAB). */
  units: string[];
  perHours: number;
}

/** A criterion that applies only in some cases: `then` decides when `if` is not definitely not met. */
export interface WhenCheck extends CheckBase {
  type: 'when';
  if: Check;
  then: Check;
  /** Shown when the criterion does not apply. */
  notApplicable: string;
}

export type Check =
  | AllOfCheck
  | AnyOfCheck
  | PrescriberSpecialtyCheck
  | ConditionPresentCheck
  | ConditionAbsentCheck
  | AgeCheck
  | SexCheck
  | ObservationCheck
  | CorrectedGestationalAgeCheck
  | MedicationPlannedCheck
  | OrderPlannedCheck
  | ProductHistoryAbsentCheck
  | DosePerKgCheck
  | AttestationCheck
  | NeverCheck
  | ProductStatusCheck
  | OnLabelCheck
  | TreatmentSiteCheck
  | CareSettingCheck
  | OrderQuantityCheck
  | WhenCheck;

export type CheckType = Check['type'];

// ---------------------------------------------------------------------------------------------
// Policy documents
// ---------------------------------------------------------------------------------------------

export interface CriterionDefinition {
  id: string;
  /** Kind decides where it shows: the numbered checklist, or the rules/exclusions list. */
  kind: 'criterion' | 'exclusion' | 'rule';
  /** Number in the source (e.g. 6 for "6) The member has a baseline anti-AAV9 …"). */
  number?: number;
  /** Section of the source document. */
  section: string;
  /** The source's own wording. */
  text: string;
  /** Short label for the checklist. */
  label: string;
  check: Check;
  /** Restrict to some of the policy's products (default: all). */
  products?: string[];
  /** What a not-met result means for coverage, and which route remains. */
  notMet?: { reason: string; route?: string };
  /** What a review result means (e.g. refer to Medical Director). */
  review?: { reason: string };
  /** What a deferred result means (e.g. postpone until infection resolved). */
  deferred?: { reason: string };
}

/** A rule on the member's coverage evaluated before the criteria (product lines, groups). */
export interface CoverageRule {
  id: string;
  section: string;
  text: string;
  when: {
    /** Coverage.type Source of Payment Typology families (first digit). */
    productLineFamilies?: string[];
    /** Coverage.type is absent or not a SOPT code. */
    productLineUnknown?: boolean;
    /** A payer-configured member group (Coverage.class) id. */
    memberGroup?: string;
  };
  effect: 'not-covered' | 'conditional' | 'out-of-scope' | 'note';
  reason: string;
  route?: string;
  /**
   * For a conditional rule: the member's own plan terms govern, so the criteria are shown for
   * information but do not decide (a criterion not met does not make the order not covered).
   */
  criteriaAdvisory?: boolean;
  /** The prior-authorization answer while this rule applies (default: the policy's). */
  paNeeded?: PaNeededCode;
}

/**
 * A service the policy judges when it is ordered together with one of its products (e.g.
 * fertility preservation with a cell or gene therapy), though the service names no product.
 */
export interface CompanionService {
  id: string;
  section: string;
  text: string;
  label: string;
  /** Value set of the service's order codes (CPT, HCPCS). */
  orderCodes: string;
  /** Value set of order reasons that also identify the service (e.g. Z31.84). */
  orderReasons?: string;
  effect: 'not-covered';
  reason: string;
}

export interface PolicyLink {
  label: string;
  url: string;
}

export interface PolicyDocument {
  id: string;
  payer: string;
  title: string;
  policyNumber: string;
  version: string;
  versionDate: string;
  effective: DateRange;
  history: { version?: string; date: string; summary: string }[];
  source: { document: string; publisher: string; links?: PolicyLink[] };
  /** Product lines (SOPT families) this policy applies to, with their names. */
  productLines: { family: string; name: string }[];
  coverageRules: CoverageRule[];
  /** Product ids from the catalog, or every product of a category. */
  products: { ids?: string[]; category?: string };
  /**
   * Unclassified billing codes (J3590…) that bring an order into scope even when the product
   * cannot be identified, so the answer can ask for the NDC instead of staying silent.
   */
  unidentifiedProductCodes?: { system: string; code: string }[];
  /** How the assertion reads when every criterion is met. */
  priorAuth: 'always' | 'never';
  /** Authorization length in months (Cigna: up to 12). */
  authorizationMonths?: number;
  /** Quantity limits per product, sent as CRD detail allowed-quantity. */
  quantityLimits?: { product: string; quantity: { value: number; unit: string; code?: string }; per: string; section?: string }[];
  /** What the PA request and the claim must carry. */
  billing?: {
    /** Billed when an identified, FDA-approved product has no product-specific code yet (J3590). */
    unclassifiedCode?: { system: string; code: string; display?: string };
    /** The NDC must be on the PA request and the claim. */
    ndcRequired?: boolean;
    section: string;
  };
  /** Label facts added to the instructions (e.g. warnings and precautions, labelled dose). */
  labelInstructions?: { facts: ('warnings' | 'doseBasis')[]; section: string };
  companionServices?: CompanionService[];
  criteria: CriterionDefinition[];
  /** Notes always shown on the card (e.g. Medicaid case-by-case review), optionally only for some products. */
  notes?: { text: string; productLineFamilies?: string[]; maxAgeYearsExclusive?: number; products?: string[]; section: string }[];
  /** Terms the source defines, for the policy page. */
  definitions?: { term: string; text: string; section: string }[];
  /** Instructions for the PA request, administration or claim, shown on an Instructions card. */
  instructions?: { text: string; section: string }[];
  /** Card type of the Instructions card (cdshooks-card-type code; default clinical-reminder). */
  instructionsTopic?: string;
  /** Summary of the Instructions card, after the product name. */
  instructionsSummary?: string;
  valueSets?: Record<string, ValueSetDefinition>;
}

// ---------------------------------------------------------------------------------------------
// Results
// ---------------------------------------------------------------------------------------------

/**
 * - met: the record shows the criterion is satisfied;
 * - not-met: the record shows it is not;
 * - missing: the record lacks what is needed; the item must be documented;
 * - review: the case goes to individual review (e.g. Medical Director);
 * - deferred: not yet (timing), possibly with an earliest date;
 * - unavailable: the data could not be retrieved (technical), so nothing can be said.
 */
export type CriterionStatus = 'met' | 'not-met' | 'missing' | 'review' | 'deferred' | 'unavailable';

export interface Evidence {
  /** Relative reference to the resource the statement rests on, e.g. "Observation/aav9-1". */
  reference?: string;
  /** Human-readable statement, e.g. "AAV9 titer 1:25 by ELISA on 2026-11-12". */
  text: string;
}

export interface MissingItem {
  text: string;
  category: 'clinical' | 'admin';
}

export interface CheckOutcome {
  status: CriterionStatus;
  evidence: Evidence[];
  missing: MissingItem[];
  /** Why not met / review / deferred, in words for the clinician. */
  notes: string[];
  /** For deferred: the earliest date the criterion will be met, when known. */
  earliestDate?: string;
  /** CRD info-needed codes this outcome calls for (e.g. detail-code when an NDC is needed). */
  infoNeeded?: InfoNeeded[];
}

export interface CriterionResult extends CheckOutcome {
  id: string;
  kind: CriterionDefinition['kind'];
  number?: number;
  label: string;
  section: string;
}

export type CoveredCode = 'covered' | 'not-covered' | 'conditional' | 'indeterminate';
export type PaNeededCode = 'no-auth' | 'auth-needed' | 'satisfied' | 'performpa' | 'conditional' | 'indeterminate';
export type InfoNeeded = 'performer' | 'location' | 'timeframe' | 'contract-window' | 'detail-code' | 'OTH';

export interface Determination {
  covered: CoveredCode;
  paNeeded?: PaNeededCode;
  docNeeded: ('clinical' | 'admin')[];
  infoNeeded: InfoNeeded[];
  /**
   * Reasons in words; each becomes a CRD reason. `documentation` marks the reason that asks for
   * documentation, which order-select must not send (CRD §hook-19).
   */
  reasons: { text: string; code?: 'technical'; documentation?: boolean }[];
  /** Earliest date the service may be given (timing criteria). */
  earliestDate?: string;
  /** Authorization expiry (authorizationMonths). */
  expiryDate?: string;
  /** Quantity limit for this product. */
  allowedQuantity?: { value: number; unit: string; code?: string; per: string };
  /** HCPCS code(s) a claim must carry on the service date. */
  billingCodes: { system: string; code: string; display?: string }[];
  /** Which route remains when not covered. */
  routes: string[];
}

export interface MatchedProduct {
  product: ProductDefinition | null;
  /**
   * How the product was identified: hcpcs, ndc, rxnorm, name, an unclassified code alone, or a
   * companion service ordered with a product (the order names no product itself).
   */
  matchedBy: 'hcpcs' | 'ndc' | 'rxnorm' | 'name' | 'unclassified-code' | 'companion-service';
  /** The coding or text that matched. */
  matchedValue: string;
  /** What to call the ordered item when it is not a catalog product (e.g. "Fertility preservation (CPT 89258)"). */
  display?: string;
}

export interface PolicyDecision {
  policy: { id: string; title: string; policyNumber: string; version: string; payer: string };
  product: MatchedProduct;
  orderReference: string;
  serviceDate: string;
  productLine?: { family: string; name: string };
  /** Coverage rules that applied (exclusions, notes). */
  coverageRules: { id: string; effect: CoverageRule['effect']; reason: string; route?: string }[];
  results: CriterionResult[];
  determination: Determination;
  notes: string[];
  instructions: string[];
}
