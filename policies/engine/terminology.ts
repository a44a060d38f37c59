import type { CodeableConcept, Coding } from 'fhir/r4.js';
import type { ValueSetDefinition, ValueSetInclude } from './types.ts';

/**
 * Code systems the service recognises, with every URI variant seen in real payloads
 * (payers-and-codes.md "Code systems"). Unknown systems keep their URI as their key, so local
 * lab codes from configuration work the same way.
 */
const SYSTEM_ALIASES: Record<string, string[]> = {
  hcpcs: [
    'https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets',
    'http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets',
    'https://bluebutton.cms.gov/resources/codesystem/hcpcs',
  ],
  ndc: ['http://hl7.org/fhir/sid/ndc'],
  rxnorm: ['http://www.nlm.nih.gov/research/umls/rxnorm'],
  'icd-10-cm': ['http://hl7.org/fhir/sid/icd-10-cm'],
  'icd-10-pcs': ['http://www.cms.gov/Medicare/Coding/ICD10', 'http://hl7.org/fhir/sid/icd-10-pcs'],
  snomed: ['http://snomed.info/sct'],
  loinc: ['http://loinc.org'],
  cpt: ['http://www.ama-assn.org/go/cpt'],
  nucc: ['http://nucc.org/provider-taxonomy'],
  npi: ['http://hl7.org/fhir/sid/us-npi'],
  ucum: ['http://unitsofmeasure.org'],
  sopt: ['https://nahdo.org/sopt', 'urn:oid:2.16.840.1.113883.3.221.5'],
  hgnc: ['http://www.genenames.org/geneId', 'http://www.genenames.org'],
  'v3-rolecode': ['http://terminology.hl7.org/CodeSystem/v3-RoleCode'],
  'v3-actcode': ['http://terminology.hl7.org/CodeSystem/v3-ActCode'],
};

const URI_TO_KEY = new Map<string, string>();
for (const [key, uris] of Object.entries(SYSTEM_ALIASES)) {
  for (const uri of uris) URI_TO_KEY.set(uri.toLowerCase(), key);
}

/** The canonical URI of a system key, for codings the service emits. */
export function systemUri(key: string): string {
  return SYSTEM_ALIASES[key]?.[0] ?? key;
}

/** Maps a system URI (any accepted variant) or an alias to its key. */
export function systemKey(system: string | undefined): string {
  // Request data is unvalidated JSON: anything but a string is no system.
  if (typeof system !== 'string' || !system) return '';
  const trimmed = system.trim();
  if (SYSTEM_ALIASES[trimmed]) return trimmed;
  return URI_TO_KEY.get(trimmed.toLowerCase()) ?? trimmed;
}

/**
 * NDCs arrive 10-digit hyphenated (4-4-2, 5-3-2, 5-4-1) or as the 11-digit 5-4-2 HIPAA form.
 * Both normalise to 11 digits. A bare 10-digit NDC without hyphens is ambiguous and kept as is.
 */
export function normaliseNdc(code: string): string {
  const trimmed = code.trim();
  const parts = trimmed.split('-');
  if (parts.length === 3 && parts.every((p) => /^\d+$/.test(p))) {
    const [labeler, product, pack] = parts as [string, string, string];
    return labeler.padStart(5, '0') + product.padStart(4, '0') + pack.padStart(2, '0');
  }
  return trimmed.replace(/\s+/g, '');
}

export function normaliseCode(key: string, code: string): string {
  switch (key) {
    case 'ndc':
      return normaliseNdc(code);
    case 'icd-10-cm':
    case 'icd-10-pcs':
      return code.trim().toUpperCase().replace(/\./g, '');
    case 'hcpcs':
    case 'cpt':
    case 'nucc':
      return code.trim().toUpperCase();
    default:
      return code.trim();
  }
}

export interface NormalisedCoding {
  system: string;
  code: string;
  display?: string;
}

export function normaliseCoding(coding: Coding): NormalisedCoding | undefined {
  if (typeof coding !== 'object' || coding === null) return undefined;
  if (typeof coding.code !== 'string' || coding.code.trim() === '') return undefined;
  const key = systemKey(coding.system);
  return { system: key, code: normaliseCode(key, coding.code), ...(typeof coding.display === 'string' && coding.display ? { display: coding.display } : {}) };
}

/** `concept.coding` when it is an array; FHIR from requests and servers is read defensively. */
function codingsOf(concept: CodeableConcept | undefined): unknown[] {
  const codings: unknown = typeof concept === 'object' && concept !== null ? concept.coding : undefined;
  return Array.isArray(codings) ? codings : [];
}

/**
 * Normalised codings per concept object. Every check reads the same request objects again and
 * again (a dozen checks over each Observation), so each concept is normalised once; the cache
 * lives as long as the request's objects do. Callers must not mutate the returned array.
 */
const codingsCache = new WeakMap<object, readonly NormalisedCoding[]>();

export function conceptCodings(concept: CodeableConcept | undefined): readonly NormalisedCoding[] {
  if (typeof concept !== 'object' || concept === null) return [];
  const cached = codingsCache.get(concept);
  if (cached) return cached;
  const out: NormalisedCoding[] = [];
  for (const coding of codingsOf(concept) as Coding[]) {
    const n = normaliseCoding(coding);
    if (n) out.push(n);
  }
  codingsCache.set(concept, out);
  return out;
}

/** A concept's text, when it is a non-empty string (request data is unvalidated JSON). */
export function conceptText(concept: CodeableConcept | undefined): string | undefined {
  const text: unknown = typeof concept === 'object' && concept !== null ? concept.text : undefined;
  return typeof text === 'string' && text ? text : undefined;
}

/**
 * What to call a concept in a card: its text, else its first coding's display, else that coding's
 * code, and only strings: an object there would throw when put into a sentence.
 */
export function conceptName(concept: CodeableConcept | undefined): string | undefined {
  const first: unknown = codingsOf(concept)[0];
  const coding = typeof first === 'object' && first !== null ? (first as { display?: unknown; code?: unknown }) : {};
  const display = typeof coding.display === 'string' && coding.display ? coding.display : undefined;
  const code = typeof coding.code === 'string' && coding.code ? coding.code : undefined;
  return conceptText(concept) ?? display ?? code;
}

/** Texts of a concept used for text matching: its text and every coding display. */
export function conceptTexts(concept: CodeableConcept | undefined): string[] {
  const texts: string[] = [];
  if (typeof concept?.text === 'string' && concept.text) texts.push(concept.text);
  for (const coding of codingsOf(concept) as Array<Coding | null>) if (typeof coding?.display === 'string' && coding.display) texts.push(coding.display);
  return texts;
}

interface CompiledInclude {
  system: string;
  codes: Set<string>;
  prefixes: string[];
  ranges: [string, string][];
}

function compileInclude(include: ValueSetInclude): CompiledInclude {
  const system = systemKey(include.system);
  return {
    system,
    codes: new Set((include.codes ?? []).map((c) => normaliseCode(system, c))),
    prefixes: (include.prefixes ?? []).map((p) => normaliseCode(system, p)),
    ranges: (include.ranges ?? []).map(([lo, hi]) => [normaliseCode(system, lo), normaliseCode(system, hi)]),
  };
}

function includeMatches(inc: CompiledInclude, coding: NormalisedCoding): boolean {
  if (inc.system !== coding.system) return false;
  if (inc.codes.has(coding.code)) return true;
  for (const prefix of inc.prefixes) if (coding.code.startsWith(prefix)) return true;
  for (const [lo, hi] of inc.ranges) {
    // Ranges compare on the category: "A00".."B99" includes "B97.4" and "A15".
    if (coding.code.slice(0, lo.length) >= lo && coding.code.slice(0, hi.length) <= hi) return true;
  }
  return false;
}

/** A value set compiled for fast matching; built once at startup. */
export class CompiledValueSet {
  readonly id: string;
  readonly title: string;
  private readonly includes: CompiledInclude[];
  private readonly excludes: CompiledInclude[];
  private readonly textGroups: RegExp[][];
  /**
   * "system|code" keys when the set is exact codes only (no prefixes, ranges or text matching):
   * callers can then look candidates up in a code index instead of scanning every resource.
   */
  readonly exactKeys: readonly string[] | undefined;

  constructor(id: string, definition: ValueSetDefinition) {
    this.id = id;
    this.title = definition.title;
    this.includes = definition.include.map(compileInclude);
    this.excludes = (definition.exclude ?? []).map(compileInclude);
    this.textGroups = (definition.textMatch ?? []).map((group) => group.map((pattern) => new RegExp(pattern, 'i')));
    const exactOnly = this.textGroups.length === 0 && this.includes.every((inc) => inc.prefixes.length === 0 && inc.ranges.length === 0);
    this.exactKeys = exactOnly ? this.includes.flatMap((inc) => [...inc.codes].map((code) => `${inc.system}|${code}`)) : undefined;
  }

  matchesCoding(coding: NormalisedCoding): boolean {
    if (!this.includes.some((inc) => includeMatches(inc, coding))) return false;
    return !this.excludes.some((exc) => includeMatches(exc, coding));
  }

  matchesText(text: string): boolean {
    return this.textGroups.some((group) => group.every((re) => re.test(text)));
  }

  /** The first matching coding, or the matching text, of a concept. */
  match(concept: CodeableConcept | undefined): { coding?: NormalisedCoding; text?: string } | undefined {
    if (typeof concept !== 'object' || concept === null) return undefined;
    for (const coding of conceptCodings(concept)) {
      if (this.matchesCoding(coding)) return { coding };
    }
    if (this.textGroups.length > 0) {
      for (const text of conceptTexts(concept)) {
        if (this.matchesText(text)) return { text };
      }
    }
    return undefined;
  }

  matches(concept: CodeableConcept | undefined): boolean {
    return this.match(concept) !== undefined;
  }

  /** Every exact code with its system URI, for building search queries. */
  exactCodes(): { system: string; code: string }[] {
    const out: { system: string; code: string }[] = [];
    for (const inc of this.includes) for (const code of inc.codes) out.push({ system: systemUri(inc.system), code });
    return out;
  }
}

/** Human-readable form of a coding for evidence text, e.g. "G12.0 (ICD-10-CM)". */
export function describeCoding(coding: NormalisedCoding): string {
  const label: Record<string, string> = {
    'icd-10-cm': 'ICD-10-CM',
    snomed: 'SNOMED CT',
    loinc: 'LOINC',
    rxnorm: 'RxNorm',
    ndc: 'NDC',
    hcpcs: 'HCPCS',
    cpt: 'CPT',
    nucc: 'NUCC',
    'icd-10-pcs': 'ICD-10-PCS',
    'v3-rolecode': 'HL7 RoleCode',
    'v3-actcode': 'HL7 ActCode',
  };
  let code = coding.code;
  if (coding.system === 'icd-10-cm' && code.length > 3) code = `${code.slice(0, 3)}.${code.slice(3)}`;
  const system = label[coding.system] ?? coding.system;
  return coding.display ? `${coding.display} (${system} ${code})` : `${system} ${code}`;
}
