// No prefetch at all: the service gathers everything from the EHR's FHIR server (a real in-memory
// FHIR R4 server on 127.0.0.1, Medplum fhir-router) with the hook's bearer token, follows paging,
// and degrades instead of failing when the server is slow, failing or down.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, it } from 'node:test';
import type { FhirResource, Observation } from 'fhir/r4.js';
import request from 'supertest';
import { ORDER_SELECT, ORDER_SIGN, shippedServices, testApp } from '../support/app.ts';
import { assertCrdConformant, coverageInformationByOrder, criterionStatuses } from '../support/crd-conformance.ts';
import { startFhirServer, type FhirTestServer, type RecordedRequest } from '../support/fhir-server.ts';
import { allResources, coding, daysAgo, fullPrefetch, hookRequest, LOINC, observation, quantity, zolgensmaCase, type RequestOptions } from '../support/fixtures.ts';

type Json = Record<string, unknown>;

const TOKEN = 'ehr-access-token-fallback-93d1';
const PAYER = 'Jefferson Health Plans';
const ZOLGENSMA = 'MedicationRequest/mr-zolgensma';
const PAGE_SIZE = 3;
const DEADLINE_MS = 300;
const TITER = 'Baseline anti-AAV9 antibody titer ≤ 1:50 by ELISA';

// The in-memory server is not fast (each page re-runs the search), so the ordinary calls get a
// generous deadline: timing is not what they test.
const { app } = testApp({ fhirDeadlineMs: 15_000, requestTimeoutMs: 20_000 });
const { app: quickApp } = testApp({ fhirDeadlineMs: DEADLINE_MS });
let fhir: FhirTestServer;

/**
 * The case on the server, with the AAV9 titer stored last and without the laboratory category: only
 * the code search of the `observations` key can find it, on its last page.
 */
async function seedCase(): Promise<void> {
  const resources = allResources(zolgensmaCase());
  const titer = resources.find((r): r is Observation => r.id === 'obs-aav9')!;
  const { category: _lab, ...uncategorised } = titer;
  await fhir.seed([...resources.filter((r) => r !== titer), uncategorised]);
}

before(async () => {
  fhir = await startFhirServer({ pageSizeDefault: PAGE_SIZE });
});
after(async () => {
  await fhir.close();
});
beforeEach(async () => {
  await fhir.reset();
  fhir.setBehaviour({});
  await seedCase();
});

interface Answer {
  status: number;
  ms: number;
  body: Json;
  requests: RecordedRequest[];
}

async function call(options: RequestOptions, target = app, hook: 'order-sign' | 'order-select' = 'order-sign'): Promise<Answer> {
  const body = hookRequest(zolgensmaCase(), { hook, ...options });
  const before = fhir.requests.length;
  const started = performance.now();
  const res = await request(target).post(hook === 'order-sign' ? ORDER_SIGN : ORDER_SELECT).send(body);
  const ms = performance.now() - started;
  assert.ok(res.status < 500, `${res.status} ${res.text}`);
  if (res.status === 200) assertCrdConformant(res.body, { request: body, payerName: PAYER, requireCoverageInformation: true });
  return { status: res.status, ms, body: res.body as Json, requests: fhir.requests.slice(before) };
}

function determination(body: Json) {
  const ci = coverageInformationByOrder(body).get(ZOLGENSMA)?.[0];
  const card = (body.cards as Json[]).find((c) => criterionStatuses(c)[TITER] !== undefined);
  assert.ok(ci && card);
  return { covered: ci.covered, paNeeded: ci.paNeeded, docNeeded: ci.docNeeded, statuses: criterionStatuses(card), detail: String(card.detail), reasons: ci.reasons };
}

const noPrefetch = (extra: RequestOptions = {}): RequestOptions => ({ prefetch: 'none', fhirServer: fhir.baseUrl, accessToken: TOKEN, ...extra });

describe('no prefetch: everything from the FHIR server', () => {
  it('gives the same determination as the full-prefetch call, for both hooks', async () => {
    for (const hook of ['order-sign', 'order-select'] as const) {
      const fetched = await call(noPrefetch(), app, hook);
      assert.equal(fetched.status, 200, JSON.stringify(fetched.body));
      const prefetched = await call({ prefetch: 'full' }, app, hook);
      assert.deepEqual(prefetched.requests, [], 'full prefetch needs no query');
      const a = determination(fetched.body);
      const b = determination(prefetched.body);
      assert.deepEqual([a.covered, a.paNeeded, a.docNeeded], [b.covered, b.paNeeded, b.docNeeded], hook);
      assert.deepEqual(a.statuses, b.statuses, hook);
      assert.deepEqual([a.covered, a.paNeeded], ['covered', 'auth-needed']);
      assert.equal(Object.values(a.statuses).filter((s) => s === 'met').length, 12);
    }
  });

  it('every request carried Authorization: Bearer <the hook access_token>, and only GETs were made', async () => {
    const a = await call(noPrefetch());
    assert.equal(a.status, 200);
    assert.ok(a.requests.length >= 10, `${a.requests.length} requests`);
    for (const r of a.requests) {
      assert.equal(r.authorization, `Bearer ${TOKEN}`, r.url);
      assert.equal(r.method, 'GET', r.url);
    }
  });

  it('asks for each thing once: no URL is requested twice in one call', async () => {
    const a = await call(noPrefetch());
    const urls = a.requests.map((r) => r.url);
    const repeated = urls.filter((u, i) => urls.indexOf(u) !== i);
    assert.deepEqual(repeated, []);
  });

  it('the server can insist on the token: with requireBearer it still works, and a wrong token gets nothing (412)', async () => {
    fhir.setBehaviour({ requireBearer: TOKEN });
    assert.equal((await call(noPrefetch())).status, 200);
    const wrong = await call(noPrefetch({ accessToken: 'some-other-token' }));
    assert.equal(wrong.status, 412);
    assert.match(String(((wrong.body.issue as Json[])[0]!).diagnostics), /HTTP 401/);
  });

  it('follows next links: the AAV9 titer found on page 3 or later of the observation search is used', async () => {
    // Where the titer is on the server's pages for the service's own observation query (precondition).
    const observations = shippedServices().get('gene-therapy-crd-order-sign')!.prefetch.observations!;
    const template = `${fhir.baseUrl}/${observations.replace('{{context.patientId}}', 'pat-sma-1')}`;
    let url: string | undefined = template;
    let page = 0;
    let titerPage = 0;
    while (url) {
      page++;
      const bundle = (await (await fetch(url)).json()) as { entry?: { resource: { id: string } }[]; link?: { relation: string; url: string }[] };
      if (bundle.entry?.some((e) => e.resource.id === 'obs-aav9')) titerPage = page;
      url = bundle.link?.find((l) => l.relation === 'next')?.url;
    }
    assert.ok(titerPage >= 3, `the titer is on page ${titerPage} of ${page}`);

    const a = await call(noPrefetch());
    const observationSearches = a.requests.filter((r) => r.url.startsWith('/fhir/Observation?') && decodeURIComponent(r.url).includes('code='));
    assert.ok(observationSearches.length >= titerPage, `${observationSearches.length} observation pages fetched`);
    assert.ok(observationSearches.some((r) => /_offset=([6-9]|\d\d)/.test(r.url)), 'a page from the third on was fetched');
    const labPages = a.requests.filter((r) => decodeURIComponent(r.url).includes('category=laboratory'));
    assert.equal(labPages.length, 1, 'the newest-labs query reads one page only');
    assert.ok(a.requests.every((r) => r.authorization === `Bearer ${TOKEN}`), 'the next links were followed with the token');
    const d = determination(a.body);
    assert.equal(d.statuses[TITER], 'met');
    assert.match(d.detail, /AAV9 titer 1:25 by ELISA on .* \(Observation\/obs-aav9\)/);
  });

  it('more than 100 lab results: the newest-labs query reads its first page by design, which is not a failure', async () => {
    // No titer anywhere: with complete data that is "missing" (document it), not "could not be checked".
    const c = zolgensmaCase();
    c.observations = c.observations.filter((o) => o.id !== 'obs-aav9');
    await fhir.reset();
    const labs = Array.from({ length: 105 }, (_, i) =>
      observation(`obs-glucose-${i}`, c.patient.id!, coding(LOINC, '2345-7', 'Glucose'), { valueQuantity: quantity(80 + (i % 20), 'mg/dL') }, { date: daysAgo(1 + (i % 8)) }),
    );
    await fhir.seed([...allResources(c), ...labs]);
    const prefetch: Record<string, FhirResource | null> = { ...fullPrefetch(c) };
    delete prefetch.labObservations;
    const body = hookRequest(c, noPrefetch({ prefetch }));
    const before = fhir.requests.length;
    const res = await request(app).post(ORDER_SIGN).send(body);
    assert.equal(res.status, 200);
    const requests = fhir.requests.slice(before);
    const labPages = requests.filter((r) => decodeURIComponent(r.url).includes('category=laboratory'));
    assert.equal(labPages.length, 1, requests.map((r) => r.url).join());
    const d = determination(res.body as Json);
    assert.equal(d.statuses[TITER], 'missing');
    assert.deepEqual([d.covered, d.paNeeded, d.docNeeded], ['covered', 'auth-needed', ['clinical']], JSON.stringify(d.reasons));
  });

  it('stops at FHIR_MAX_PAGES: a search with more pages is unavailable, not truncated silently', async () => {
    const { app: twoPages } = testApp({ fhirMaxPages: 2, fhirDeadlineMs: 15_000, requestTimeoutMs: 20_000 });
    const a = await call(noPrefetch(), twoPages);
    assert.equal(a.status, 200);
    const d = determination(a.body);
    assert.equal(d.covered, 'indeterminate');
    assert.ok(d.reasons.some((r) => r.codes.includes('technical') && /more than 2 pages/.test(r.text ?? '')), JSON.stringify(d.reasons));
    assert.equal(d.statuses[TITER], 'unavailable');
  });
});

describe('a slow, failing or absent FHIR server degrades the answer, never to a 5xx', () => {
  it(`slower than the deadline (${DEADLINE_MS} ms) with nothing prefetched → a quick 412: the coverage could not be had`, async () => {
    fhir.setBehaviour({ delayMs: 3000 });
    const a = await call(noPrefetch(), quickApp);
    assert.equal(a.status, 412);
    assert.match(String(((a.body.issue as Json[])[0]!).diagnostics), /deadline exceeded/);
    assert.ok(a.ms < DEADLINE_MS + 1500, `${Math.round(a.ms)} ms`);
  });

  it('slower than the deadline with coverage and patient prefetched → a quick 200, indeterminate + technical', async () => {
    fhir.setBehaviour({ delayMs: 3000 });
    const c = zolgensmaCase();
    const p = fullPrefetch(c);
    const a = await call(noPrefetch({ prefetch: { coverage: p.coverage, patient: p.patient } }), quickApp);
    assert.equal(a.status, 200);
    assert.ok(a.ms < DEADLINE_MS + 1500, `${Math.round(a.ms)} ms`);
    const d = determination(a.body);
    assert.equal(d.covered, 'indeterminate');
    assert.ok(d.reasons.some((r) => r.codes.includes('technical') && /deadline exceeded/.test(r.text ?? '')), JSON.stringify(d.reasons));
    assert.equal(d.statuses['Less than 2 years of age'], 'met', 'what was prefetched is still judged');
    assert.equal(d.statuses[TITER], 'unavailable');
  });

  it('500 for Observation searches only → the observation criteria are unavailable, the rest judged', async () => {
    fhir.setBehaviour({ failWith: 500, failPathPattern: /^\/fhir\/Observation\?/ });
    const a = await call(noPrefetch());
    assert.equal(a.status, 200);
    const d = determination(a.body);
    assert.equal(d.covered, 'indeterminate');
    assert.ok(d.reasons.some((r) => r.codes.includes('technical') && /HTTP 500/.test(r.text ?? '')));
    const unavailable = Object.entries(d.statuses).filter(([, s]) => s === 'unavailable').map(([l]) => l).sort();
    assert.deepEqual(unavailable, [
      'Baseline LFTs (AST, ALT, total bilirubin, PT) and monitoring ≥ 3 months',
      TITER,
      'Baseline platelet count and troponin-I, with monitoring',
      'Dose within 1.1 × 10^14 vg/kg',
      'Full-term corrected age reached (if born premature)',
      'SMA with bi-allelic SMN1 deletions or variants',
    ].sort());
    for (const judged of ['Prescribed by or with an SMA specialist', 'Less than 2 years of age', 'No signs or symptoms of infection', 'Systemic corticosteroids from 1 day before infusion for 30 days', 'One-time only: no prior Zolgensma']) {
      assert.equal(d.statuses[judged], 'met', judged);
    }
  });

  it('a server that is down (closed port) → a clean, quick answer: 412 without prefetch, 200 indeterminate with the coverage prefetched', async () => {
    const gone = await startFhirServer();
    const baseUrl = gone.baseUrl;
    await gone.close();
    const down = await call(noPrefetch({ fhirServer: baseUrl }));
    assert.equal(down.status, 412);
    assert.match(String(((down.body.issue as Json[])[0]!).diagnostics), /network error|request failed/);
    assert.ok(down.ms < 2000, `${Math.round(down.ms)} ms`);
    const p = fullPrefetch(zolgensmaCase());
    const partial = await call(noPrefetch({ fhirServer: baseUrl, prefetch: { coverage: p.coverage } }));
    assert.equal(partial.status, 200);
    assert.equal(determination(partial.body).covered, 'indeterminate');
    assert.ok(partial.ms < 2000, `${Math.round(partial.ms)} ms`);
  });

  it('404 for the Condition search → conditions unavailable, not a crash', async () => {
    fhir.setBehaviour({ failWith: 404, failPathPattern: /^\/fhir\/Condition\?/ });
    const a = await call(noPrefetch());
    assert.equal(a.status, 200);
    const d = determination(a.body);
    assert.equal(d.statuses['No advanced SMA (complete limb paralysis, invasive ventilation)'], 'unavailable');
    assert.equal(d.statuses['No signs or symptoms of infection'], 'unavailable', 'an absence check never passes on data that was never seen');
  });
  it('a "FHIR server" answering HTML → treated as no data source: 412 without prefetch, degraded with it', async () => {
    const html = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' }).end('<html><body>Login</body></html>');
    });
    await new Promise<void>((resolve) => html.listen(0, '127.0.0.1', resolve));
    const { port } = html.address() as AddressInfo;
    try {
      const base = `http://127.0.0.1:${port}/fhir`;
      const none = await call(noPrefetch({ fhirServer: base }));
      assert.equal(none.status, 412);
      const p = fullPrefetch(zolgensmaCase());
      const some = await call(noPrefetch({ fhirServer: base, prefetch: { coverage: p.coverage, patient: p.patient } }));
      assert.equal(some.status, 200);
      assert.equal(determination(some.body).covered, 'indeterminate');
    } finally {
      html.closeAllConnections();
      await new Promise<void>((resolve) => html.close(() => resolve()));
    }
  });
});
