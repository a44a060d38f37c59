// Request validation through the HTTP API: malformed requests get 400 (or 413/404) with an
// OperationOutcome that names the problem; unknown fields are ignored; payer resolution errors are
// 400 (CRD §hook-13); davinci-crd.configuration is honoured and nonsense in it is ignored.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Bundle, CommunicationRequest, Coverage, FhirResource, NutritionOrder, Organization } from 'fhir/r4.js';
import request from 'supertest';
import { ORDER_SELECT, ORDER_SIGN, testApp } from '../support/app.ts';
import { assertCrdConformant, coverageInformationByOrder } from '../support/crd-conformance.ts';
import { coverageFor, fullPrefetch, hookRequest, NAIC, PAYER_ID_SYSTEM, searchset, zolgensmaCase, type RequestOptions } from '../support/fixtures.ts';

type Json = Record<string, unknown>;

const { app } = testApp();
const PAYER = 'Jefferson Health Plans';

interface Issue {
  severity: string;
  code: string;
  diagnostics: string;
  expression?: string[];
}

/** Asserts a 4xx OperationOutcome and returns its issues. */
function outcome(res: request.Response, status: number): Issue[] {
  assert.equal(res.status, status, res.text);
  assert.match(String(res.headers['content-type']), /json/);
  const body = res.body as { resourceType?: string; issue?: Issue[] };
  assert.equal(body.resourceType, 'OperationOutcome', res.text);
  assert.ok(Array.isArray(body.issue) && body.issue.length > 0);
  for (const issue of body.issue) {
    assert.equal(issue.severity, 'error');
    assert.ok(issue.code.length > 0 && issue.diagnostics.length > 0);
  }
  return body.issue;
}

/** The issue naming `expression` (exactly), whose diagnostics match `message`. */
function assertNames(issues: Issue[], expression: string, message: RegExp): void {
  const hit = issues.find((i) => i.expression?.includes(expression));
  assert.ok(hit, `an issue with expression "${expression}" among ${JSON.stringify(issues)}`);
  assert.match(hit.diagnostics, message);
}

function body(options: RequestOptions = {}): Json {
  return hookRequest(zolgensmaCase(), options);
}

function ctx(b: Json): Json {
  return b.context as Json;
}

function drafts(b: Json): Bundle {
  return ctx(b).draftOrders as Bundle;
}

async function sign(b: unknown): Promise<request.Response> {
  return request(app).post(ORDER_SIGN).send(b as object);
}

async function select(b: unknown): Promise<request.Response> {
  return request(app).post(ORDER_SELECT).send(b as object);
}

describe('malformed requests → 400 OperationOutcome naming the problem', () => {
  it('a body that is not JSON', async () => {
    const res = await request(app).post(ORDER_SIGN).set('Content-Type', 'application/json').send('{"hook": "order-sign",');
    assert.match(outcome(res, 400)[0]!.diagnostics, /not valid JSON/);
  });

  it('a body sent as text/plain, or none at all', async () => {
    const text = await request(app).post(ORDER_SIGN).set('Content-Type', 'text/plain').send(JSON.stringify(body()));
    assert.match(outcome(text, 400)[0]!.diagnostics, /JSON object/);
    const empty = await request(app).post(ORDER_SIGN);
    assert.match(outcome(empty, 400)[0]!.diagnostics, /JSON object/);
  });

  it('a JSON array, string or number instead of an object', async () => {
    for (const raw of ['[]', JSON.stringify([body()]), '"order-sign"', '42', 'null']) {
      const res = await request(app).post(ORDER_SIGN).set('Content-Type', 'application/json').send(raw);
      outcome(res, 400);
    }
  });

  for (const field of ['hook', 'hookInstance', 'context'] as const) {
    it(`missing ${field}`, async () => {
      const b = body();
      delete b[field];
      assertNames(outcome(await sign(b), 400), field, new RegExp(`missing required property "${field}"`));
    });
  }

  for (const field of ['userId', 'patientId', 'draftOrders'] as const) {
    it(`missing context.${field}`, async () => {
      const b = body();
      delete ctx(b)[field];
      assertNames(outcome(await sign(b), 400), `context.${field}`, new RegExp(`"${field}"`));
    });
  }

  it('wrong types: hook a number, hookInstance empty, context a string, userId not Type/id, patientId a reference', async () => {
    const cases: [(b: Json) => void, string][] = [
      [(b) => void (b.hook = 7), 'hook'],
      [(b) => void (b.hookInstance = ''), 'hookInstance'],
      [(b) => void (b.context = 'Patient/1'), 'context'],
      [(b) => void (ctx(b).userId = 'role-neuro'), 'context.userId'],
      [(b) => void (ctx(b).patientId = 'Patient/pat-sma-1'), 'context.patientId'],
      [(b) => void (ctx(b).encounterId = 42), 'context.encounterId'],
    ];
    for (const [mutate, expression] of cases) {
      const b = body();
      mutate(b);
      const issues = outcome(await sign(b), 400);
      assert.ok(issues.some((i) => i.expression?.includes(expression)), `${expression}: ${JSON.stringify(issues)}`);
    }
  });

  it('the wrong hook for the service, both ways', async () => {
    assertNames(outcome(await sign(body({ hook: 'order-select' })), 400), 'hook', /must be "order-sign"/);
    const b = body();
    assertNames(outcome(await select(b), 400), 'hook', /must be "order-select"/);
    b.hook = 'patient-view';
    const issues = outcome(await sign(b), 400);
    assert.equal(issues.length, 1, 'only the hook is reported when the hook is wrong');
  });

  it('draftOrders that is not a Bundle', async () => {
    const b = body();
    ctx(b).draftOrders = { resourceType: 'List', entry: drafts(b).entry };
    assertNames(outcome(await sign(b), 400), 'context.draftOrders.resourceType', /must be "Bundle"/);
    ctx(b).draftOrders = drafts(body()).entry;
    assertNames(outcome(await sign(b), 400), 'context.draftOrders', /object/);
  });

  it('draftOrders with no entries', async () => {
    const b = body();
    drafts(b).entry = [];
    assertNames(outcome(await sign(b), 400), 'context.draftOrders.entry', /fewer than 1/);
    delete drafts(b).entry;
    assertNames(outcome(await sign(b), 400), 'context.draftOrders.entry', /"entry"/);
  });

  it('a draftOrders entry without a resource, or a resource without an id', async () => {
    const b = body();
    delete drafts(b).entry![1]!.resource;
    assertNames(outcome(await sign(b), 400), 'context.draftOrders.entry[1].resource', /"resource"/);
    const c = body();
    delete drafts(c).entry![0]!.resource!.id;
    assertNames(outcome(await sign(c), 400), 'context.draftOrders.entry[0].resource.id', /"id"/);
    const d = body();
    (drafts(d).entry![0]!.resource as unknown as Json).resourceType = 'not a type';
    assertNames(outcome(await sign(d), 400), 'context.draftOrders.entry[0].resource.resourceType', /pattern/);
  });

  it('order-select without selections, with empty selections, or with a selection not in draftOrders', async () => {
    const b = body({ hook: 'order-select' });
    delete ctx(b).selections;
    assertNames(outcome(await select(b), 400), 'context.selections', /"selections"/);
    ctx(b).selections = [];
    assertNames(outcome(await select(b), 400), 'context.selections', /fewer than 1/);
    ctx(b).selections = ['MedicationRequest/mr-zolgensma', 'MedicationRequest/not-drafted'];
    assertNames(outcome(await select(b), 400), 'context.selections[1]', /"MedicationRequest\/not-drafted" is not an order in context.draftOrders/);
    ctx(b).selections = ['mr-zolgensma'];
    outcome(await select(b), 400);
  });

  it('fhirAuthorization without fhirServer', async () => {
    const b = body({ fhirServer: 'http://127.0.0.1:9/fhir' });
    delete b.fhirServer;
    const issues = outcome(await sign(b), 400);
    assertNames(issues, 'fhirServer', /must have "fhirServer" when "fhirAuthorization" is present/);
  });

  it('fhirServer that is not an http(s) URL; fhirAuthorization without a token or of another type', async () => {
    for (const fhirServer of ['ftp://ehr.example.org/fhir', 'not a url', 'file:///etc/passwd']) {
      const b = body({ fhirServer: 'http://127.0.0.1:9/fhir' });
      b.fhirServer = fhirServer;
      assertNames(outcome(await sign(b), 400), 'fhirServer', /./);
    }
    const b = body({ fhirServer: 'http://127.0.0.1:9/fhir' });
    delete (b.fhirAuthorization as Json).access_token;
    assertNames(outcome(await sign(b), 400), 'fhirAuthorization.access_token', /"access_token"/);
    const c = body({ fhirServer: 'http://127.0.0.1:9/fhir' });
    (c.fhirAuthorization as Json).token_type = 'MAC';
    assertNames(outcome(await sign(c), 400), 'fhirAuthorization.token_type', /pattern/);
  });

  it('a prefetch value that is a string, an array, a number or a resource of the wrong type', async () => {
    const c = zolgensmaCase();
    const values: [string, unknown, string][] = [
      ['patient', 'Patient/pat-sma-1', 'prefetch.patient'],
      ['conditions', [c.conditions[0]], 'prefetch.conditions'],
      ['observations', 12, 'prefetch.observations'],
      ['coverage', { resourceType: 'Patient', id: 'x' }, 'prefetch.coverage'],
      ['patient', c.coverage, 'prefetch.patient'],
      ['observations', c.observations[0], 'prefetch.observations'],
      ['coverage', { entry: [] }, 'prefetch.coverage'],
    ];
    for (const [key, value, expression] of values) {
      const b = hookRequest(c, { prefetch: { ...fullPrefetch(c), [key]: value as FhirResource } });
      const issues = outcome(await sign(b), 400);
      assert.ok(issues.some((i) => i.expression?.some((e) => e.startsWith(expression))), `${key}=${JSON.stringify(value).slice(0, 40)}: ${JSON.stringify(issues)}`);
    }
  });

  it('prefetch that is not an object', async () => {
    for (const prefetch of ['all', [fullPrefetch(zolgensmaCase()).patient], 5]) {
      const b = body();
      b.prefetch = prefetch;
      assertNames(outcome(await sign(b), 400), 'prefetch', /object/);
    }
  });

  it('an oversized body → 413 with an OperationOutcome', async () => {
    const small = testApp({ maxBodyBytes: 4096 }).app;
    const b = body();
    b.padding = 'x'.repeat(5000);
    const res = await request(small).post(ORDER_SIGN).send(b);
    assert.match(outcome(res, 413)[0]!.diagnostics, /too large/);
  });

  it('too many draft orders → 400 too-costly', async () => {
    const limited = testApp({ maxDraftOrders: 3 }).app;
    const c = zolgensmaCase();
    for (let i = 2; i <= 3; i++) c.orders.push({ ...c.orders[1]!, id: `mr-extra-${i}` });
    const res = await request(limited).post(ORDER_SIGN).send(hookRequest(c));
    const issues = outcome(res, 400);
    assert.equal(issues[0]!.code, 'too-costly');
    assert.match(issues[0]!.diagnostics, /4 draft orders; at most 3/);
    c.orders.pop();
    assert.equal((await request(limited).post(ORDER_SIGN).send(hookRequest(c))).status, 200, 'at the limit is fine');
  });

  it('too-deep JSON → 400 too-costly, without a stack overflow', async () => {
    const text = JSON.stringify(body());
    for (const depth of [70, 20_000]) {
      // The request with an extension nested `depth` levels deep, as raw text.
      const deep = `${'{"x":'.repeat(depth)}{}${'}'.repeat(depth)}`;
      const raw = `${text.slice(0, -1)},"extension":${deep}}`;
      const res = await request(app).post(ORDER_SIGN).set('Content-Type', 'application/json').send(raw);
      const issues = outcome(res, 400);
      assert.equal(issues[0]!.code, 'too-costly', `${depth}`);
      assert.match(issues[0]!.diagnostics, /nesting deeper/);
    }
  });

  it('an unknown service id → 404 OperationOutcome', async () => {
    const issues = outcome(await request(app).post('/cds-services/no-such-service').send(body()), 404);
    assert.match(issues[0]!.diagnostics, /No CDS service "no-such-service"/);
    outcome(await request(app).post('/cds-services/').send(body()), 404);
    outcome(await request(app).get('/cds-services/gene-therapy-crd-order-sign'), 404);
  });

  it('a service id with malformed percent-encoding → 400 OperationOutcome, not a 5xx', async () => {
    for (const path of ['/cds-services/%E0%A4%A', `${ORDER_SIGN}%ZZ`, '/cds-services/%']) {
      outcome(await request(app).post(path).send(body()), 400);
    }
  });
});

describe('unknown fields are ignored (CRD §hook-23, §found-33)', () => {
  it('extra fields at the top level, in context, fhirAuthorization, draftOrders, prefetch and extension → 200, same answer', async () => {
    const c = zolgensmaCase();
    const plain = hookRequest(c);
    const baseline = await sign(plain);
    assert.equal(baseline.status, 200);

    const b = hookRequest(c, { fhirServer: 'http://127.0.0.1:9/fhir', extension: { 'com.example.unknown': { a: [1, 2] }, 'davinci-crd.requestedVersion': '2.2' } });
    // All prefetch given, so the (closed) FHIR server is never needed.
    b.futureField = { nested: true };
    b.hookVersion = '1.0';
    ctx(b).vendorContext = 'abc';
    ctx(b).dispatchedOrders = ['MedicationRequest/mr-zolgensma'];
    (b.fhirAuthorization as Json).extra_claim = 'x';
    (drafts(b) as unknown as Json).meta = { tag: [{ code: 'draft-session' }] };
    (drafts(b).entry![0] as unknown as Json).search = { mode: 'match' };
    (b.prefetch as Json).devices = { resourceType: 'Bundle', type: 'searchset', entry: [{ resource: { resourceType: 'Device', id: 'd1' } }] };
    (b.prefetch as Json).medication = null;
    const res = await sign(b);
    assert.equal(res.status, 200, res.text);
    assertCrdConformant(res.body, { request: b, payerName: PAYER });
    const pick = (r: request.Response) => [...coverageInformationByOrder(r.body).values()].flat().map((s) => [s.covered, s.paNeeded, s.docNeeded]);
    assert.deepEqual(pick(res), pick(baseline));
  });

  it('a draft bundle with no gene-therapy order → 200 with no cards and no system actions', async () => {
    const c = zolgensmaCase();
    c.orders = [c.orders[1]!];
    const b = hookRequest(c);
    const res = await sign(b);
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { cards: [] }, 'no guidance: cards empty, systemActions omitted (CDS Hooks 2.0 forbids empty optional arrays)');
  });

  it('draft orders of other CRD request types (NutritionOrder, CommunicationRequest) are tolerated', async () => {
    const c = zolgensmaCase();
    const b = hookRequest(c);
    const nutrition: NutritionOrder = { resourceType: 'NutritionOrder', id: 'no-1', status: 'draft', intent: 'order', patient: { reference: 'Patient/pat-sma-1' }, dateTime: '2026-01-01' };
    const communication: CommunicationRequest = { resourceType: 'CommunicationRequest', id: 'cr-1', status: 'draft' };
    drafts(b).entry!.push({ resource: nutrition }, { resource: communication });
    const res = await sign(b);
    assert.equal(res.status, 200, res.text);
    assertCrdConformant(res.body, { request: b, payerName: PAYER, requireCoverageInformation: true });
  });
});

describe('coverage and payer (CRD §hook-13)', () => {
  const coverageBundle = (c: ReturnType<typeof zolgensmaCase>, coverages: Coverage[], payers: Organization[]): Bundle => {
    const bundle = searchset(coverages);
    for (const payer of payers) bundle.entry!.push({ resource: payer, search: { mode: 'include' } });
    return bundle;
  };

  it('no Coverage at all → 400 naming the coverage', async () => {
    const c = zolgensmaCase();
    const issues = outcome(await sign(hookRequest(c, { prefetch: { ...fullPrefetch(c), coverage: searchset([]) } })), 400);
    assertNames(issues, 'prefetch.coverage', /No active Coverage/);
  });

  it('only a cancelled Coverage, or one for another patient → 400', async () => {
    const c = zolgensmaCase();
    const cancelled: Coverage = { ...c.coverage, status: 'cancelled' };
    outcome(await sign(hookRequest(c, { prefetch: { ...fullPrefetch(c), coverage: coverageBundle(c, [cancelled], [c.payer]) } })), 400);
    const other: Coverage = { ...c.coverage, beneficiary: { reference: 'Patient/someone-else' } };
    outcome(await sign(hookRequest(c, { prefetch: { ...fullPrefetch(c), coverage: coverageBundle(c, [other], [c.payer]) } })), 400);
  });

  it('a payer this service does not handle → 400 not-supported naming Coverage.payor', async () => {
    const c = zolgensmaCase();
    const unknown: Organization = { resourceType: 'Organization', id: 'org-acme', identifier: [{ system: PAYER_ID_SYSTEM, value: 'acme-health' }], name: 'Jefferson Health Plans' };
    const coverage = coverageFor(c.patient.id!, unknown, '21');
    const issues = outcome(await sign(hookRequest(c, { prefetch: { ...fullPrefetch(c), coverage: coverageBundle(c, [coverage], [unknown]) } })), 400);
    assert.equal(issues[0]!.code, 'not-supported');
    assertNames(issues, 'Coverage.payor', /no payer identifier that this CRD server handles/);
  });

  it('a payer Organization without any identifier (only a name) → 400: the name is never used', async () => {
    const c = zolgensmaCase();
    const nameOnly: Organization = { resourceType: 'Organization', id: 'org-jefferson', name: 'Jefferson Health Plans' };
    outcome(await sign(hookRequest(c, { prefetch: { ...fullPrefetch(c), coverage: coverageBundle(c, [c.coverage], [nameOnly]) } })), 400);
  });

  it('two active Coverages of handled payers → 400 multiple-matches', async () => {
    const c = zolgensmaCase();
    const bcbs: Organization = { resourceType: 'Organization', id: 'org-bcbsms', identifier: [{ system: NAIC, value: '60111' }], name: 'Blue Cross & Blue Shield of Mississippi' };
    const second = coverageFor(c.patient.id!, bcbs, '51', 'cov-2');
    const issues = outcome(await sign(hookRequest(c, { prefetch: { ...fullPrefetch(c), coverage: coverageBundle(c, [c.coverage, second], [c.payer, bcbs]) } })), 400);
    assert.equal(issues[0]!.code, 'multiple-matches');
    // Two Jefferson coverages are just as ambiguous.
    const twin = coverageFor(c.patient.id!, c.payer, '23', 'cov-3');
    outcome(await sign(hookRequest(c, { prefetch: { ...fullPrefetch(c), coverage: coverageBundle(c, [c.coverage, twin], [c.payer]) } })), 400);
  });

  it('a Coverage without a valid FHIR id → 400: coverage-information could not reference it', async () => {
    const c = zolgensmaCase();
    for (const id of [undefined, '1:25', 'Coverage/cov-1', '']) {
      const coverage: Coverage = { ...c.coverage };
      if (id === undefined) delete coverage.id;
      else coverage.id = id;
      const issues = outcome(await sign(hookRequest(c, { prefetch: { ...fullPrefetch(c), coverage: coverageBundle(c, [coverage], [c.payer]) } })), 400);
      assertNames(issues, 'Coverage.id', /no valid id/);
    }
  });

  it('an active Jefferson Coverage beside a cancelled other one is answered', async () => {
    const c = zolgensmaCase();
    const bcbs: Organization = { resourceType: 'Organization', id: 'org-bcbsms', identifier: [{ system: NAIC, value: '60111' }] };
    const old: Coverage = { ...coverageFor(c.patient.id!, bcbs, '51', 'cov-old'), status: 'cancelled' };
    const b = hookRequest(c, { prefetch: { ...fullPrefetch(c), coverage: coverageBundle(c, [old, c.coverage], [bcbs, c.payer]) } });
    const res = await sign(b);
    assert.equal(res.status, 200, res.text);
    assertCrdConformant(res.body, { request: b, payerName: PAYER, requireCoverageInformation: true });
  });
});

describe('davinci-crd.configuration (CRD §dev-12…17)', () => {
  const topics = (res: request.Response) => (res.body as { cards: Json[] }).cards.map((c) => String(((c.source as Json).topic as Json).code));
  const configured = async (configuration: unknown, hook: 'order-sign' | 'order-select' = 'order-sign') => {
    const b = body({ hook, extension: { 'davinci-crd.configuration': configuration } });
    const res = hook === 'order-sign' ? await sign(b) : await select(b);
    assert.equal(res.status, 200, res.text);
    assertCrdConformant(res.body, { request: b, payerName: PAYER });
    return res;
  };

  it('the default gives the checklist, the reminders and the coverage-information action', async () => {
    const res = await configured({});
    assert.deepEqual(topics(res), ['guideline', 'clinical-reminder']);
    assert.equal((res.body as { systemActions: unknown[] }).systemActions.length, 1);
  });

  for (const hook of ['order-sign', 'order-select'] as const) {
    it(`coverage-info: false removes the system action, not the cards — ${hook}`, async () => {
      const res = await configured({ 'coverage-info': false }, hook);
      assert.equal(coverageInformationByOrder(res.body).size, 0);
      assert.deepEqual(topics(res), ['guideline', 'clinical-reminder']);
    });
  }

  it('guideline: false and clinical-reminder: false remove those cards', async () => {
    assert.deepEqual(topics(await configured({ guideline: false })), ['clinical-reminder']);
    assert.deepEqual(topics(await configured({ 'clinical-reminder': false })), ['guideline']);
    const none = await configured({ guideline: false, 'clinical-reminder': false });
    assert.deepEqual(topics(none), []);
    assert.equal(coverageInformationByOrder(none.body).size, 1, 'coverage information stays');
  });

  it('max-cards: 1 keeps only the checklist; max-cards: 0 keeps none', async () => {
    assert.deepEqual(topics(await configured({ 'max-cards': 1 })), ['guideline']);
    assert.deepEqual(topics(await configured({ 'max-cards': 0 })), []);
  });

  it('nonsense values and unknown options are ignored (CRD §dev-6, §dev-17)', async () => {
    const nonsense: unknown[] = [
      { guideline: 'no', 'clinical-reminder': 0, 'coverage-info': null, 'max-cards': -1 },
      { 'max-cards': '1', 'max-cards-typo': 1, cost: false, 'unsolicited-determ': false },
      { 'max-cards': 1.5 },
      'guideline=false',
      ['guideline'],
      42,
      null,
    ];
    for (const configuration of nonsense) {
      const res = await configured(configuration);
      assert.deepEqual(topics(res), ['guideline', 'clinical-reminder'], JSON.stringify(configuration));
      assert.equal(coverageInformationByOrder(res.body).size, 1, JSON.stringify(configuration));
    }
  });
});
