import fc from 'fast-check';

/**
 * Generators for fuzzing the service: hostile JSON values, FHIR element names to put them under,
 * and structural mutations applied in place to a JSON document (a hook request, a FHIR reply).
 */

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type Path = Array<string | number>;

// ---------------------------------------------------------------------------------------------
// Hostile values and mutations

export function nested(depth: number, leaf: Json, asArray: boolean): Json {
  let v = leaf;
  for (let i = 0; i < depth; i++) v = asArray ? [v] : { x: v };
  return v;
}

const HOSTILE_STRINGS = [
  '',
  ' ',
  '\u0000',
  '\ud800',
  '\u202e\u0645\u0631\u062d\u0628\u0627',
  '👶🏽🧬',
  'Patient/../../etc/passwd',
  '#',
  '#missing',
  'urn:uuid:',
  'http://169.254.169.254/latest/meta-data/',
  'Organization/',
  '/',
  'Coverage/cov-1/_history/x',
  '2024-13-45',
  '0000-00-00',
  '9999-12-31T99:99:99Z',
  '-1',
  'NaN',
  '1e309',
  '1:0',
  '1:',
  ':',
  '< 1:25',
  '>=',
  'kg/0',
  '10*999999',
  '%',
  '{{context.patientId}}',
  'constructor',
  '__proto__',
  'toString',
  'hasOwnProperty',
  'x'.repeat(70_000),
];

const PROTO_OBJECTS: Json[] = [
  JSON.parse('{"__proto__":{"polluted":"yes","length":5}}') as Json,
  JSON.parse('{"constructor":{"prototype":{"polluted":"yes"}}}') as Json,
  JSON.parse('{"__proto__":[]}') as Json,
  JSON.parse('{"toString":"x","valueOf":1,"hasOwnProperty":null}') as Json,
];

const hostileLeaf: fc.Arbitrary<Json> = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.integer(),
  fc.constantFrom(0, -0, -1, 1e308, -1e308, 5e-324, 2 ** 53 + 1, 0.1),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.constantFrom(...HOSTILE_STRINGS),
  fc.string({ maxLength: 30, unit: 'grapheme' }),
  fc.string({ maxLength: 10, unit: 'binary' }),
);

export const hostileValue: fc.Arbitrary<Json> = fc.oneof(
  { weight: 4, arbitrary: hostileLeaf },
  { weight: 1, arbitrary: fc.constant<Json>({}) },
  { weight: 1, arbitrary: fc.constant<Json>([]) },
  { weight: 1, arbitrary: fc.constantFrom(...PROTO_OBJECTS) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<Json> },
  { weight: 1, arbitrary: fc.array(hostileLeaf, { maxLength: 4 }) },
  { weight: 1, arbitrary: fc.dictionary(fc.constantFrom('resourceType', 'id', 'reference', 'coding', 'system', 'code', 'value', 'unit', '__proto__', 'url'), hostileLeaf, { maxKeys: 4 }) },
  { weight: 1, arbitrary: fc.tuple(fc.integer({ min: 20, max: 55 }), hostileLeaf, fc.boolean()).map(([d, leaf, arr]) => nested(d, leaf, arr)) },
);

/** FHIR element names the engine, gather and cards read; set on any object to put a wrong type where a right one is expected. */
export const FHIR_FIELDS = [
  'resourceType', 'id', 'code', 'coding', 'system', 'display', 'text', 'value', 'unit', 'comparator',
  'valueQuantity', 'valueString', 'valueRatio', 'valueCodeableConcept', 'valueInteger', 'valueBoolean', 'numerator', 'denominator',
  'component', 'interpretation', 'method', 'category', 'status', 'effectiveDateTime', 'effectivePeriod', 'issued',
  'onsetDateTime', 'onsetAge', 'abatementDateTime', 'recordedDate', 'clinicalStatus', 'verificationStatus', 'severity',
  'subject', 'patient', 'reference', 'identifier', 'name', 'family', 'given', 'birthDate', 'gender', 'deceasedBoolean',
  'payor', 'beneficiary', 'class', 'type', 'period', 'start', 'end', 'subscriberId', 'relationship', 'order',
  'medicationCodeableConcept', 'medicationReference', 'dosageInstruction', 'doseAndRate', 'doseQuantity', 'timing',
  'authoredOn', 'requester', 'performer', 'reasonCode', 'reasonReference', 'intent', 'priority', 'occurrenceDateTime',
  'occurrenceTiming', 'repeat', 'boundsDuration', 'frequency', 'period', 'periodUnit', 'quantity', 'dispenseRequest',
  'specialty', 'practitioner', 'organization', 'location', 'serviceProvider', 'address', 'state',
  'entry', 'resource', 'fullUrl', 'link', 'relation', 'url', 'search', 'mode', 'total', 'extension', 'modifierExtension',
  'contained', 'meta', 'profile', 'issue', 'severity', 'diagnostics', 'note', 'performedDateTime', 'performedPeriod',
  'bodySite', 'outcome', 'effectiveTiming', 'hasMember', 'derivedFrom', 'basedOn', 'encounter', 'context', 'selections',
  'userId', 'patientId', 'encounterId', 'draftOrders', 'prefetch', 'fhirServer', 'fhirAuthorization', 'hook', 'hookInstance',
  'davinci-crd.configuration', 'coverage-info', 'guideline',
];

export type Mutation =
  | { kind: 'replace'; at: number; value: Json }
  | { kind: 'delete'; at: number }
  | { kind: 'setField'; at: number; field: string; value: Json }
  | { kind: 'wrapArray'; at: number }
  | { kind: 'unwrapArray'; at: number }
  | { kind: 'duplicateEntry'; at: number };

export const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('replace' as const), at: fc.nat(), value: hostileValue }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('delete' as const), at: fc.nat() }) },
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('setField' as const), at: fc.nat(), field: fc.constantFrom(...FHIR_FIELDS), value: hostileValue }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('wrapArray' as const), at: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('unwrapArray' as const), at: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('duplicateEntry' as const), at: fc.nat() }) },
);

export function isObject(v: Json | undefined): v is { [key: string]: Json } {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Every path in the document (root excluded), and separately every path to an object. */
export function paths(doc: Json): { all: Path[]; objects: Path[] } {
  const all: Path[] = [];
  const objects: Path[] = [[]];
  const walk = (v: Json, at: Path): void => {
    if (Array.isArray(v)) {
      v.forEach((child, i) => {
        all.push([...at, i]);
        walk(child, [...at, i]);
      });
    } else if (isObject(v)) {
      if (at.length > 0) objects.push(at);
      for (const k of Object.keys(v)) {
        all.push([...at, k]);
        walk(v[k]!, [...at, k]);
      }
    }
  };
  walk(doc, []);
  return { all, objects };
}

export function getAt(doc: Json, path: Path): Json | undefined {
  let v: Json | undefined = doc;
  for (const p of path) {
    if (Array.isArray(v) && typeof p === 'number') v = v[p];
    else if (isObject(v) && typeof p === 'string') v = Object.prototype.hasOwnProperty.call(v, p) ? v[p] : undefined;
    else return undefined;
  }
  return v;
}

export function setOwn(target: { [key: string]: Json }, key: string, value: Json): void {
  // defineProperty so "__proto__" becomes an own key, exactly as JSON.parse on the server makes it.
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

export function apply(doc: Json, m: Mutation): void {
  const { all, objects } = paths(doc);
  if (m.kind === 'setField') {
    const target = getAt(doc, objects[m.at % objects.length]!);
    if (isObject(target)) setOwn(target, m.field, structuredClone(m.value));
    return;
  }
  if (all.length === 0) return;
  const path = all[m.at % all.length]!;
  const parent = getAt(doc, path.slice(0, -1));
  const last = path[path.length - 1]!;
  const current = getAt(doc, path);
  let next: Json | undefined;
  switch (m.kind) {
    case 'replace':
      next = structuredClone(m.value);
      break;
    case 'delete':
      next = undefined;
      break;
    case 'wrapArray':
      next = current === undefined ? [] : [current];
      break;
    case 'unwrapArray':
      next = Array.isArray(current) ? (current[0] ?? null) : isObject(current) ? (Object.values(current)[0] ?? null) : current ?? null;
      break;
    case 'duplicateEntry':
      next = Array.isArray(current) ? [...current, ...current] : current ?? null;
      break;
  }
  if (Array.isArray(parent) && typeof last === 'number') {
    if (next === undefined) parent.splice(last, 1);
    else parent[last] = next;
  } else if (isObject(parent) && typeof last === 'string') {
    if (next === undefined) delete parent[last];
    else setOwn(parent, last, next);
  }
}

