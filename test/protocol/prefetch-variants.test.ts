// Each prefetch key in its four CDS Hooks 2.0 shapes — absent, null, an OperationOutcome, data — plus
// error Bundles, paged prefetch, payer resolution and medicationReference, against a real FHIR
// server (Medplum's router on 127.0.0.1) that records every request it receives.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import type { Bundle, Coverage, FhirResource, Medication, MedicationRequest, OperationOutcome, Organization, Procedure } from 'fhir/r4.js';
import request from 'supertest';
import { ORDER_SIGN, testApp } from '../support/app.ts';
import { assertCrdConformant, coverageInformationByOrder, criterionStatuses, type CoverageInformationSummary } from '../support/crd-conformance.ts';
import { startFhirServer, type FhirTestServer, type RecordedRequest } from '../support/fhir-server.ts';
import {
  allResources,
  coding,
  fullPrefetch,
  HCPCS,
  hookRequest,
  NDC,
  PAYER_ID_SYSTEM,
  searchset,
  zolgensmaCase,
  type ClinicalCase,
  type PrefetchKey,
  type RequestOptions,
} from '../support/fixtures.ts';

type Json = Record<string, unknown>;
type Prefetch = Partial<Record<string, FhirResource | null>>;

const TOKEN = 'prefetch-variants-token-51c9';
const PAYER = 'Jefferson Health Plans';
const ZOLGENSMA = 'MedicationRequest/mr-zolgensma';
const { app } = testApp();
let fhir: FhirTestServer;

before(async () => {
  fhir = await startFhirServer();
});
after(async () => {
  await fhir.close();
});
beforeEach(async () => {
  await fhir.reset();
  fhir.setBehaviour({});
  await fhir.seed(allResources(zolgensmaCase()));
});

const CRITERIA = {
  specialist: 'Prescribed by or with an SMA specialist',
  diagnosis: 'SMA with bi-allelic SMN1 deletions or variants',
  advanced: 'No advanced SMA (complete limb paralysis, invasive ventilation)',
  term: 'Full-term corrected age reached (if born premature)',
  age: 'Less than 2 years of age',
  titer: 'Baseline anti-AAV9 antibody titer ≤ 1:50 by ELISA',
  steroid: 'Systemic corticosteroids from 1 day before infusion for 30 days',
  liver: 'Baseline LFTs (AST, ALT, total bilirubin, PT) and monitoring ≥ 3 months',
  platelets: 'Baseline platelet count and troponin-I, with monitoring',
  infection: 'No signs or symptoms of infection',
  dose: 'Dose within 1.1 × 10^14 vg/kg',
  once: 'One-time only: no prior Zolgensma',
} as const;

interface KeySpec {
  key: PrefetchKey;
  kind: 'read' | 'search';
  /** Matches the request the service makes for this key (decoded path and query). */
  query: RegExp;
  /** The user the hook runs as (userPractitionerRoles needs a Practitioner user). */
  userId?: string;
  /** Other keys holding the same data, left out too so the key under test is the only source. */
  alsoWithout?: PrefetchKey[];
  /** Criteria that cannot be checked when the key is absent and there is no FHIR server. */
  degrades: (keyof typeof CRITERIA)[];
  /** A read the service still needs when the key is null (the order's requester is another resource). */
  nullStillReads?: string;
  /**
   * A criterion that degrades exactly when the key's data can change it: probed by prefetching a
   * record (a completed Zolgensma administration Procedure) that would make it not met.
   */
  probe?: keyof typeof CRITERIA;
}

/** Whether a completed Procedure coded with the product makes the one-time rule not met. */
async function proceduresDecideOnce(): Promise<boolean> {
  const c = zolgensmaCase();
  const given: Procedure = {
    resourceType: 'Procedure',
    id: 'proc-zolgensma',
    status: 'completed',
    code: { coding: [coding(HCPCS, 'J3399', 'Injection, onasemnogene abeparvovec-xioi, per treatment')], text: 'Zolgensma infusion' },
    subject: { reference: `Patient/${c.patient.id}` },
    performedDateTime: '2025-03-01',
  };
  const a = await call(c, { prefetch: { ...fullPrefetch(c), procedures: searchset([given]) } });
  return a.statuses[CRITERIA.once] === 'not-met';
}

const KEYS: KeySpec[] = [
  { key: 'patient', kind: 'read', query: /^\/fhir\/Patient\/pat-sma-1$/, degrades: ['term', 'age'] },
  { key: 'encounter', kind: 'read', query: /^\/fhir\/Encounter\/enc-1$/, degrades: [] },
  { key: 'userPractitionerRole', kind: 'read', query: /^\/fhir\/PractitionerRole\/role-neuro$/, alsoWithout: ['userPractitionerRoles'], degrades: ['specialist'] },
  {
    key: 'userPractitionerRoles',
    kind: 'search',
    query: /^\/fhir\/PractitionerRole\?practitioner=prac-neuro$/,
    userId: 'Practitioner/prac-neuro',
    alsoWithout: ['userPractitionerRole'],
    degrades: ['specialist'],
    nullStillReads: '/fhir/PractitionerRole/role-neuro',
  },
  { key: 'conditions', kind: 'search', query: /^\/fhir\/Condition\?patient=pat-sma-1$/, degrades: ['diagnosis', 'advanced', 'infection'] },
  { key: 'observations', kind: 'search', query: /^\/fhir\/Observation\?patient=pat-sma-1&code=/, alsoWithout: ['labObservations'], degrades: ['diagnosis', 'term', 'titer', 'liver', 'platelets', 'dose'] },
  { key: 'labObservations', kind: 'search', query: /^\/fhir\/Observation\?patient=pat-sma-1&category=laboratory/, alsoWithout: ['observations'], degrades: ['diagnosis', 'term', 'titer', 'liver', 'platelets', 'dose'] },
  { key: 'medicationRequests', kind: 'search', query: /^\/fhir\/MedicationRequest\?patient=pat-sma-1$/, degrades: ['once'] },
  { key: 'medicationAdministrations', kind: 'search', query: /^\/fhir\/MedicationAdministration\?patient=pat-sma-1$/, degrades: ['once'] },
  { key: 'medicationStatements', kind: 'search', query: /^\/fhir\/MedicationStatement\?patient=pat-sma-1$/, degrades: ['once'] },
  // Whether the one-time rule reads procedures is the policy engine's business: probed below.
  { key: 'procedures', kind: 'search', query: /^\/fhir\/Procedure\?patient=pat-sma-1$/, degrades: [], probe: 'once' },
  { key: 'serviceRequests', kind: 'search', query: /^\/fhir\/ServiceRequest\?patient=pat-sma-1&status=active,on-hold$/, degrades: ['liver', 'platelets'] },
];

function decoded(r: RecordedRequest): string {
  return decodeURIComponent(r.url);
}

function operationOutcome(text: string, severity: 'error' | 'warning' = 'error'): OperationOutcome {
  return { resourceType: 'OperationOutcome', issue: [{ severity, code: severity === 'error' ? 'timeout' : 'informational', diagnostics: text }] };
}

/** The full prefetch with the key set to `value` (undefined: absent); keys holding the same data absent too, or null with a null key. */
function prefetchWithout(c: ClinicalCase, spec: KeySpec, value: FhirResource | null | undefined): Prefetch {
  const p: Prefetch = { ...fullPrefetch(c) };
  for (const k of spec.alsoWithout ?? []) {
    if (value === null) p[k] = null;
    else delete p[k];
  }
  if (value === undefined) delete p[spec.key];
  else p[spec.key] = value;
  return p;
}

interface Answer {
  status: number;
  body: Json;
  requests: RecordedRequest[];
  ci: CoverageInformationSummary | undefined;
  statuses: Record<string, string>;
}

async function call(c: ClinicalCase, options: RequestOptions): Promise<Answer> {
  const body = hookRequest(c, options);
  const before = fhir.requests.length;
  const res = await request(app).post(ORDER_SIGN).send(body);
  assert.ok(res.status < 500, res.text);
  const requests = fhir.requests.slice(before);
  if (res.status !== 200) return { status: res.status, body: res.body as Json, requests, ci: undefined, statuses: {} };
  assertCrdConformant(res.body, { request: body, payerName: PAYER });
  const ci = coverageInformationByOrder(res.body).get(ZOLGENSMA)?.[0];
  const card = ((res.body as { cards: Json[] }).cards ?? []).find((x) => (x.extension as Json)['davinci-crd.associated-resource'] !== undefined && String(x.summary).startsWith('Zolgensma:') && criterionStatuses(x)[CRITERIA.age] !== undefined);
  return { status: res.status, body: res.body as Json, requests, ci, statuses: card ? criterionStatuses(card) : {} };
}

/** The full-prefetch answer: covered, prior auth needed, every criterion met. */
function assertAllMet(a: Answer, what: string): void {
  assert.equal(a.status, 200, `${what}: ${JSON.stringify(a.body).slice(0, 300)}`);
  assert.deepEqual([a.ci?.covered, a.ci?.paNeeded, a.ci?.docNeeded], ['covered', 'auth-needed', []], what);
  const notMet = Object.entries(a.statuses).filter(([, s]) => s !== 'met');
  assert.deepEqual(notMet, [], what);
  assert.equal(Object.keys(a.statuses).length, 12, what);
}

const withServer = (extra: RequestOptions = {}): RequestOptions => ({ fhirServer: fhir.baseUrl, accessToken: TOKEN, ...extra });

describe('each prefetch key: absent, null, OperationOutcome, data', () => {
  for (const spec of KEYS) {
    const userId = spec.userId ? { userId: spec.userId } : {};

    it(`${spec.key} absent, FHIR server given → the service queries it with the bearer token and uses the result`, async () => {
      const c = zolgensmaCase();
      const a = await call(c, withServer({ prefetch: prefetchWithout(c, spec, undefined), ...userId }));
      const hits = a.requests.filter((r) => spec.query.test(decoded(r)));
      assert.ok(hits.length >= 1, `queried ${spec.query}; saw ${a.requests.map(decoded).join(', ')}`);
      assert.ok(a.requests.every((r) => r.authorization === `Bearer ${TOKEN}`), 'every request carried the hook token');
      assertAllMet(a, spec.key);
    });

    it(`${spec.key} absent, no FHIR server → ${spec.degrades.length > 0 || spec.probe ? 'the criteria needing it become unavailable: indeterminate + technical' : 'nothing depends on it: still judged'}`, async () => {
      const c = zolgensmaCase();
      const a = await call(c, { prefetch: prefetchWithout(c, spec, undefined), ...userId });
      assert.equal(a.status, 200);
      const degrades = spec.probe && (await proceduresDecideOnce()) ? [...spec.degrades, spec.probe] : spec.degrades;
      const unavailable = Object.entries(a.statuses).filter(([, s]) => s === 'unavailable').map(([label]) => label).sort();
      assert.deepEqual(unavailable, degrades.map((d) => CRITERIA[d]).sort());
      if (degrades.length > 0) {
        assert.equal(a.ci?.covered, 'indeterminate');
        const technical = a.ci?.reasons.find((r) => r.codes.includes('technical'));
        assert.ok(technical && /could not be retrieved/.test(technical.text ?? ''), JSON.stringify(a.ci?.reasons));
        // The rest of the checklist is still judged.
        assert.ok(Object.values(a.statuses).filter((s) => s === 'met').length >= 12 - degrades.length);
      } else {
        assertAllMet(a, spec.key);
      }
    });

    it(`${spec.key} null → no data and NOT queried`, async () => {
      const c = zolgensmaCase();
      const a = await call(c, withServer({ prefetch: prefetchWithout(c, spec, null), ...userId }));
      assert.deepEqual(a.requests.filter((r) => spec.query.test(decoded(r))).map(decoded), [], 'no request for the null key');
      assert.deepEqual(a.requests.map(decoded), spec.nullStillReads ? [spec.nullStillReads] : [], 'everything else was prefetched, so nothing else was fetched');
      assert.equal(a.status, 200);
      assert.notEqual(a.ci?.covered, 'indeterminate', 'null is "no data", not a failure');
      assert.ok(!Object.values(a.statuses).includes('unavailable'));
    });

    it(`${spec.key} as an OperationOutcome → queried instead`, async () => {
      const c = zolgensmaCase();
      const a = await call(c, withServer({ prefetch: prefetchWithout(c, spec, operationOutcome('prefetch query timed out')), ...userId }));
      assert.ok(a.requests.some((r) => spec.query.test(decoded(r))), `queried ${spec.query}`);
      assertAllMet(a, spec.key);
    });

    if (spec.kind === 'search') {
      it(`${spec.key} as a Bundle holding an error OperationOutcome → queried instead`, async () => {
        const c = zolgensmaCase();
        const failed: Bundle = { resourceType: 'Bundle', type: 'searchset', entry: [{ resource: operationOutcome('partial failure'), search: { mode: 'outcome' } }] };
        const a = await call(c, withServer({ prefetch: prefetchWithout(c, spec, failed), ...userId }));
        assert.ok(a.requests.some((r) => spec.query.test(decoded(r))), `queried ${spec.query}`);
        assertAllMet(a, spec.key);
      });
    }

    it(`${spec.key} as data → used, not queried`, async () => {
      const c = zolgensmaCase();
      const a = await call(c, withServer({ prefetch: fullPrefetch(c), ...userId }));
      assert.deepEqual(a.requests.map(decoded), []);
      assertAllMet(a, spec.key);
    });
  }

  it('coverage absent → queried with _include=Coverage:payor, so the payer needs no extra read', async () => {
    const c = zolgensmaCase();
    const p: Prefetch = { ...fullPrefetch(c) };
    delete p.coverage;
    const a = await call(c, withServer({ prefetch: p }));
    assert.ok(a.requests.some((r) => /^\/fhir\/Coverage\?patient=pat-sma-1&status=active&_include=Coverage:payor$/.test(decoded(r))), a.requests.map(decoded).join());
    assert.ok(!a.requests.some((r) => decoded(r).startsWith('/fhir/Organization')), 'the payer came with the coverage');
    assertAllMet(a, 'coverage');
  });

  it('coverage null → 400 (no Coverage), nothing queried', async () => {
    const c = zolgensmaCase();
    const a = await call(c, withServer({ prefetch: { ...fullPrefetch(c), coverage: null } }));
    assert.equal(a.status, 400);
    assert.equal(a.body.resourceType, 'OperationOutcome');
    assert.deepEqual(a.requests, []);
  });

  it('the prefetched data wins over what the FHIR server holds (data → used)', async () => {
    const c = zolgensmaCase();
    // The server says the titer is 1:400; the prefetch (the EHR's own answer) says 1:25.
    const serverCase = zolgensmaCase();
    serverCase.observations = serverCase.observations.map((o) => (o.id === 'obs-aav9' ? { ...o, valueString: '1:400' } : o));
    await fhir.seed(allResources(serverCase));
    const a = await call(c, withServer({ prefetch: fullPrefetch(c) }));
    assert.equal(a.statuses[CRITERIA.titer], 'met');
    assert.deepEqual(a.requests, []);
    // And the server's data is what is used when the prefetch fails.
    const b = await call(c, withServer({ prefetch: { ...fullPrefetch(c), observations: operationOutcome('failed'), labObservations: operationOutcome('failed') } }));
    assert.equal(b.statuses[CRITERIA.titer], 'not-met');
  });

  it('a Bundle with only a warning OperationOutcome beside its data is data: not queried', async () => {
    const c = zolgensmaCase();
    const bundle = searchset(c.conditions);
    bundle.entry!.push({ resource: operationOutcome('results may be incomplete', 'warning'), search: { mode: 'outcome' } });
    const a = await call(c, withServer({ prefetch: { ...fullPrefetch(c), conditions: bundle } }));
    assert.deepEqual(a.requests, []);
    assertAllMet(a, 'conditions with a warning');
  });
});

describe('paged prefetch', () => {
  /** Page 1 of a real search on the test server, as an EHR would prefetch it. */
  async function firstPage(query: string): Promise<Bundle> {
    const res = await fetch(`${fhir.baseUrl}/${query}`, { headers: { accept: 'application/fhir+json' } });
    return (await res.json()) as Bundle;
  }

  it('a prefetch Bundle with a next link: the rest is fetched with the bearer token and used', async () => {
    const c = zolgensmaCase();
    const page = await firstPage('Observation?patient=pat-sma-1&_count=2');
    const onFirst = (page.entry ?? []).map((e) => e.resource?.id);
    assert.ok(!onFirst.includes('obs-aav9') && !onFirst.includes('obs-weight'), `AAV9 and weight are on later pages: ${onFirst.join()}`);
    assert.ok(page.link?.some((l) => l.relation === 'next'));
    const a = await call(c, withServer({ prefetch: { ...fullPrefetch(c), observations: page, labObservations: searchset([]) } }));
    const followed = a.requests.filter((r) => /_offset=\d+/.test(r.url));
    assert.ok(followed.length >= 4, `followed the next links: ${a.requests.map(decoded).join(', ')}`);
    assert.ok(followed.every((r) => r.authorization === `Bearer ${TOKEN}`));
    assertAllMet(a, 'paged observations');
  });

  it('a paged prefetch with no FHIR server: the missing pages make their criteria unavailable, not a failure', async () => {
    const c = zolgensmaCase();
    const page = await firstPage('Observation?patient=pat-sma-1&_count=2');
    const a = await call(c, { prefetch: { ...fullPrefetch(c), observations: page, labObservations: searchset([]) } });
    assert.equal(a.status, 200);
    assert.equal(a.ci?.covered, 'indeterminate');
    assert.equal(a.statuses[CRITERIA.titer], 'unavailable');
    assert.equal(a.statuses[CRITERIA.specialist], 'met');
  });

  it('a next link to another origin is not followed (the token stays with the fhirServer)', async () => {
    const c = zolgensmaCase();
    const page = await firstPage('Observation?patient=pat-sma-1&_count=2');
    const other = await startFhirServer();
    try {
      page.link = page.link!.map((l) => (l.relation === 'next' ? { ...l, url: l.url.replace(fhir.baseUrl, other.baseUrl) } : l));
      const a = await call(c, withServer({ prefetch: { ...fullPrefetch(c), observations: page, labObservations: searchset([]) } }));
      assert.equal(a.status, 200);
      assert.deepEqual(other.requests, [], 'the other server saw nothing');
      assert.equal(a.statuses[CRITERIA.titer], 'unavailable');
    } finally {
      await other.close();
    }
  });
});

describe('coverage and payer resolution', () => {
  const coverageOnly = (c: ClinicalCase, coverage: Coverage, included: Organization[] = []): Prefetch => {
    const bundle = searchset([coverage]);
    for (const org of included) bundle.entry!.push({ resource: org, search: { mode: 'include' } });
    return { ...fullPrefetch(c), coverage: bundle };
  };

  it('coverage not prefetched and no FHIR server → 412 with an OperationOutcome', async () => {
    const c = zolgensmaCase();
    const p: Prefetch = { ...fullPrefetch(c) };
    delete p.coverage;
    const a = await call(c, { prefetch: p });
    assert.equal(a.status, 412);
    assert.equal(a.body.resourceType, 'OperationOutcome');
    const issue = (a.body.issue as Json[])[0]!;
    assert.deepEqual(issue.expression, ['prefetch.coverage']);
    assert.match(String(issue.diagnostics), /Coverage was not prefetched/);
  });

  it('coverage as an OperationOutcome and the FHIR server failing → 412', async () => {
    const c = zolgensmaCase();
    fhir.setBehaviour({ failWith: 503, failPathPattern: /\/Coverage/ });
    const a = await call(c, withServer({ prefetch: { ...fullPrefetch(c), coverage: operationOutcome('failed') } }));
    assert.equal(a.status, 412);
    assert.match(String(((a.body.issue as Json[])[0]!).diagnostics), /HTTP 503/);
  });

  it('coverage prefetched but the payer Organization neither included nor retrievable → 412', async () => {
    const c = zolgensmaCase();
    const noServer = await call(c, { prefetch: coverageOnly(c, c.coverage) });
    assert.equal(noServer.status, 412);
    assert.match(String(((noServer.body.issue as Json[])[0]!).diagnostics), /payer Organization was neither included nor retrievable/);
    fhir.setBehaviour({ failWith: 500, failPathPattern: /\/Organization\// });
    const failing = await call(c, withServer({ prefetch: coverageOnly(c, c.coverage) }));
    assert.equal(failing.status, 412);
    assert.ok(failing.requests.some((r) => decoded(r) === '/fhir/Organization/org-jefferson'));
  });

  it('payer identifier on payor.identifier: resolves without any Organization', async () => {
    const c = zolgensmaCase();
    const coverage: Coverage = { ...c.coverage, payor: [{ identifier: { system: PAYER_ID_SYSTEM, value: 'jefferson-health-plans' }, display: 'JHP' }] };
    assertAllMet(await call(c, { prefetch: coverageOnly(c, coverage) }), 'payor.identifier');
  });

  it('payer in a contained Organization: resolves', async () => {
    const c = zolgensmaCase();
    const coverage: Coverage = { ...c.coverage, contained: [{ ...c.payer, id: 'payer' }], payor: [{ reference: '#payer' }] };
    assertAllMet(await call(c, { prefetch: coverageOnly(c, coverage) }), 'contained');
  });

  it('payer Organization included in the coverage Bundle (relative or absolute reference): resolves', async () => {
    const c = zolgensmaCase();
    assertAllMet(await call(c, { prefetch: coverageOnly(c, c.coverage, [c.payer]) }), 'included');
    const absolute: Coverage = { ...c.coverage, payor: [{ reference: 'http://ehr.example.org/fhir/Organization/org-jefferson' }] };
    assertAllMet(await call(c, { prefetch: coverageOnly(c, absolute, [c.payer]) }), 'included, absolute reference');
  });

  it('payer Organization read from the FHIR server: resolves, read with the bearer token', async () => {
    const c = zolgensmaCase();
    const a = await call(c, withServer({ prefetch: coverageOnly(c, c.coverage) }));
    const reads = a.requests.filter((r) => decoded(r) === '/fhir/Organization/org-jefferson');
    assert.equal(reads.length, 1);
    assert.equal(reads[0]!.authorization, `Bearer ${TOKEN}`);
    assertAllMet(a, 'read from the server');
  });

  it('the payer is identified by identifier, never by name: a look-alike name does not resolve', async () => {
    const c = zolgensmaCase();
    const impostor: Organization = { resourceType: 'Organization', id: 'org-jefferson', name: 'Jefferson Health Plans', identifier: [{ system: PAYER_ID_SYSTEM, value: 'jefferson-health-plan' }] };
    const a = await call(c, { prefetch: coverageOnly(c, c.coverage, [impostor]) });
    assert.equal(a.status, 400);
  });
});

describe('medicationReference', () => {
  const zolgensmaKit: Medication = { resourceType: 'Medication', id: 'med-zol', code: { coding: [coding(NDC, '71894-131-06', 'Zolgensma kit 8.1-8.5 kg')] } };

  function referencing(c: ClinicalCase, reference: string): MedicationRequest {
    const order = c.orders[0] as MedicationRequest;
    delete order.medicationCodeableConcept;
    order.medicationReference = { reference };
    return order;
  }

  function assertIdentified(a: Answer, what: string): void {
    assertAllMet(a, what);
    assert.match(String(((a.body.cards as Json[])[0]!).summary), /^Zolgensma: /, what);
  }

  it('to a contained Medication', async () => {
    const c = zolgensmaCase();
    const order = referencing(c, '#kit');
    order.contained = [{ ...zolgensmaKit, id: 'kit' }];
    assertIdentified(await call(c, {}), 'contained');
  });

  it('to a Medication sent in the draftOrders Bundle', async () => {
    const c = zolgensmaCase();
    referencing(c, 'Medication/med-zol');
    const body = hookRequest(c);
    ((body.context as Json).draftOrders as Bundle).entry!.push({ fullUrl: 'http://ehr.example.org/fhir/Medication/med-zol', resource: zolgensmaKit });
    const res = await request(app).post(ORDER_SIGN).send(body);
    assert.equal(res.status, 200);
    assertCrdConformant(res.body, { request: body, payerName: PAYER, requireCoverageInformation: true });
    const ci = coverageInformationByOrder(res.body).get(ZOLGENSMA)?.[0];
    assert.deepEqual([ci?.covered, ci?.paNeeded], ['covered', 'auth-needed']);
  });

  it('to a Medication included in a prefetch Bundle', async () => {
    const c = zolgensmaCase();
    referencing(c, 'Medication/med-zol');
    const meds = searchset([]);
    meds.entry = [{ resource: zolgensmaKit, search: { mode: 'include' } }];
    assertIdentified(await call(c, { prefetch: { ...fullPrefetch(c), medicationRequests: meds } }), 'prefetch include');
  });

  it('to a Medication on the FHIR server: read with the bearer token', async () => {
    const c = zolgensmaCase();
    referencing(c, 'Medication/med-zol');
    await fhir.seed([zolgensmaKit]);
    const a = await call(c, withServer({ prefetch: fullPrefetch(c) }));
    const reads = a.requests.filter((r) => decoded(r) === '/fhir/Medication/med-zol');
    assert.equal(reads.length, 1);
    assert.equal(reads[0]!.authorization, `Bearer ${TOKEN}`);
    assertIdentified(a, 'FHIR server');
  });

  it('to a Medication that cannot be found anywhere: no assertion is made, and nothing fails', async () => {
    const c = zolgensmaCase();
    referencing(c, 'Medication/med-unknown');
    const a = await call(c, withServer({ prefetch: fullPrefetch(c) }));
    assert.equal(a.status, 200);
    assert.deepEqual(a.body, { cards: [] });
  });
});
