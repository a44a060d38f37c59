// Proves the in-process FHIR test server over real HTTP: Medplum's router and search plus the wrapper's
// additions (metadata, paging links, form POST _search, bare-id references, _include) and test behaviours.
import { test, describe, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import type { Bundle, CapabilityStatement, Coverage, FhirResource, Observation, OperationOutcome, Resource } from 'fhir/r4.js';
import { startFhirServer, type FhirTestServer } from './fhir-server.ts';

const LOINC = 'http://loinc.org';
const LAB = 'http://terminology.hl7.org/CodeSystem/observation-category';
const CLINICAL = 'http://terminology.hl7.org/CodeSystem/condition-clinical';

function observation(id: string, patient: string, code: string, date: string, category = 'laboratory'): Observation {
  return {
    resourceType: 'Observation',
    id,
    status: 'final',
    category: [{ coding: [{ system: LAB, code: category }] }],
    code: { coding: [{ system: LOINC, code }] },
    subject: { reference: `Patient/${patient}` },
    effectiveDateTime: date,
  };
}

function coverage(id: string, patient: string, payor: string, status: Coverage['status']): Coverage {
  return {
    resourceType: 'Coverage',
    id,
    status,
    beneficiary: { reference: `Patient/${patient}` },
    payor: [{ reference: `Organization/${payor}` }],
  };
}

const fixtures: FhirResource[] = [
  { resourceType: 'Patient', id: 'p1', name: [{ family: 'One' }] },
  { resourceType: 'Patient', id: 'p2', name: [{ family: 'Two' }] },
  { resourceType: 'Organization', id: 'org1', name: 'Payer One' },
  { resourceType: 'Organization', id: 'org2', name: 'Payer Two' },
  coverage('cov1', 'p1', 'org1', 'active'),
  coverage('cov2', 'p1', 'org2', 'cancelled'),
  coverage('cov3', 'p2', 'org1', 'active'),
  observation('ob1', 'p1', '4548-4', '2024-01-10'),
  observation('ob2', 'p1', '718-7', '2024-03-05'),
  observation('ob3', 'p1', '2345-7', '2024-02-20'),
  observation('ob4', 'p1', '4548-4', '2024-05-01'),
  observation('ob5', 'p1', '8867-4', '2024-04-15', 'vital-signs'),
  observation('ob6', 'p2', '4548-4', '2024-06-01'),
  {
    resourceType: 'Condition',
    id: 'cond1',
    subject: { reference: 'Patient/p1' },
    clinicalStatus: { coding: [{ system: CLINICAL, code: 'active' }] },
    code: { coding: [{ system: 'http://snomed.info/sct', code: '1' }] },
  },
  {
    resourceType: 'Condition',
    id: 'cond2',
    subject: { reference: 'Patient/p1' },
    clinicalStatus: { coding: [{ system: CLINICAL, code: 'resolved' }] },
    code: { coding: [{ system: 'http://snomed.info/sct', code: '2' }] },
  },
];

let server: FhirTestServer;
let startMs = 0;

async function fetchJson<T>(url: string, init?: RequestInit): Promise<{ status: number; body: T; headers: Headers }> {
  const res = await fetch(url, { ...init, headers: { accept: 'application/fhir+json', ...init?.headers } });
  return { status: res.status, body: (await res.json()) as T, headers: res.headers };
}

async function searchIds(path: string): Promise<string[]> {
  const { status, body } = await fetchJson<Bundle>(`${server.baseUrl}/${path}`);
  assert.equal(status, 200, path);
  return (body.entry ?? []).filter((e) => e.search?.mode === 'match').map((e) => e.resource?.id ?? '?');
}

function sorted(ids: string[]): string[] {
  return [...ids].sort();
}

before(async () => {
  const t0 = performance.now();
  server = await startFhirServer();
  startMs = performance.now() - t0;
});

after(async () => {
  await server.close();
});

beforeEach(async () => {
  server.setBehaviour({});
  await server.reset();
  await server.seed(fixtures);
});

describe('FHIR test server', () => {
  test('listens on 127.0.0.1 with a /fhir base and no trailing slash', () => {
    assert.match(server.baseUrl, /^http:\/\/127\.0\.0\.1:\d+\/fhir$/);
    assert.ok(startMs < 10_000, `start took ${startMs} ms`);
  });

  test('GET /metadata returns a CapabilityStatement', async () => {
    const { status, body, headers } = await fetchJson<CapabilityStatement>(`${server.baseUrl}/metadata`);
    assert.equal(status, 200);
    assert.match(headers.get('content-type') ?? '', /application\/fhir\+json/);
    assert.equal(body.resourceType, 'CapabilityStatement');
    assert.equal(body.fhirVersion, '4.0.1');
    const coverageRest = body.rest?.[0]?.resource?.find((r) => r.type === 'Coverage');
    assert.ok(coverageRest?.searchInclude?.includes('Coverage:payor'));
  });

  test('read keeps seeded ids; missing resources are 404 OperationOutcomes', async () => {
    const ok = await fetchJson<Coverage>(`${server.baseUrl}/Coverage/cov1`);
    assert.equal(ok.status, 200);
    assert.equal(ok.body.id, 'cov1');
    assert.equal(ok.body.payor[0]?.reference, 'Organization/org1');
    assert.match(ok.headers.get('etag') ?? '', /^W\/"/);

    const missing = await fetchJson<OperationOutcome>(`${server.baseUrl}/Coverage/nope`);
    assert.equal(missing.status, 404);
    assert.equal(missing.body.resourceType, 'OperationOutcome');
  });

  test('create returns 201 with Location, and the resource is searchable', async () => {
    const res = await fetchJson<Resource>(`${server.baseUrl}/Patient`, {
      method: 'POST',
      headers: { 'content-type': 'application/fhir+json' },
      body: JSON.stringify({ resourceType: 'Patient', name: [{ family: 'New' }] }),
    });
    assert.equal(res.status, 201);
    assert.ok(res.body.id);
    assert.ok(res.headers.get('location')?.startsWith(`${server.baseUrl}/Patient/${res.body.id}`));
    assert.deepEqual(await searchIds(`Patient?_id=${res.body.id}`), [res.body.id]);
  });

  test('reference params accept bare ids (patient, subject, beneficiary, subject:Patient)', async () => {
    assert.deepEqual(sorted(await searchIds('Coverage?patient=p1')), ['cov1', 'cov2']);
    assert.deepEqual(sorted(await searchIds('Coverage?beneficiary=p2')), ['cov3']);
    assert.deepEqual(sorted(await searchIds('Coverage?payor=org1')), ['cov1', 'cov3']);
    assert.deepEqual(sorted(await searchIds('Observation?subject=p2')), ['ob6']);
    assert.deepEqual(sorted(await searchIds('Observation?subject:Patient=p2')), ['ob6']);
    assert.deepEqual(sorted(await searchIds('Condition?patient=p1')), ['cond1', 'cond2']);
    // The full form and absolute URLs on this server still work.
    assert.deepEqual(sorted(await searchIds('Coverage?patient=Patient/p1')), ['cov1', 'cov2']);
    const absolute = encodeURIComponent(`${server.baseUrl}/Patient/p2`);
    assert.deepEqual(sorted(await searchIds(`Coverage?patient=${absolute}`)), ['cov3']);
  });

  test('status, clinical-status, category and date filters', async () => {
    assert.deepEqual(sorted(await searchIds('Coverage?status=active')), ['cov1', 'cov3']);
    assert.deepEqual(sorted(await searchIds('Coverage?patient=p1&status=active')), ['cov1']);
    assert.deepEqual(await searchIds('Condition?patient=p1&clinical-status=active'), ['cond1']);
    assert.deepEqual(await searchIds(`Condition?clinical-status=${encodeURIComponent(`${CLINICAL}|resolved`)}`), ['cond2']);
    assert.deepEqual(await searchIds('Observation?patient=p1&category=vital-signs'), ['ob5']);
    assert.deepEqual(
      sorted(await searchIds(`Observation?patient=p1&category=${encodeURIComponent(`${LAB}|laboratory`)}&date=ge2024-03-01`)),
      ['ob2', 'ob4'],
    );
  });

  test('code with one or several system|code tokens', async () => {
    assert.deepEqual(sorted(await searchIds(`Observation?patient=p1&code=${LOINC}|4548-4`)), ['ob1', 'ob4']);
    const several = encodeURIComponent(`${LOINC}|718-7,${LOINC}|2345-7,${LOINC}|8867-4`);
    assert.deepEqual(sorted(await searchIds(`Observation?patient=p1&code=${several}`)), ['ob2', 'ob3', 'ob5']);
    // The system is part of the match.
    assert.deepEqual(await searchIds(`Observation?code=${encodeURIComponent('http://other|4548-4')}`), []);
  });

  test('_id accepts a comma-separated list', async () => {
    assert.deepEqual(sorted(await searchIds('Observation?_id=ob1,ob3,ob6')), ['ob1', 'ob3', 'ob6']);
    assert.deepEqual(await searchIds('Observation?_id=nope'), []);
  });

  test('_sort=-date orders newest first, and the first key of a multi-key sort is primary', async () => {
    assert.deepEqual(await searchIds('Observation?patient=p1&_sort=-date'), ['ob4', 'ob5', 'ob2', 'ob3', 'ob1']);
    assert.deepEqual(await searchIds('Observation?patient=p1&_sort=date'), ['ob1', 'ob3', 'ob2', 'ob5', 'ob4']);
    assert.deepEqual(await searchIds('Observation?patient=p1&_sort=code,-date'), ['ob3', 'ob4', 'ob1', 'ob2', 'ob5']);
  });

  test('search bundles are searchsets with absolute fullUrls, total and a self link', async () => {
    const { body } = await fetchJson<Bundle>(`${server.baseUrl}/Coverage?patient=p1`);
    assert.equal(body.type, 'searchset');
    assert.equal(body.total, 2);
    for (const entry of body.entry ?? []) {
      assert.equal(entry.fullUrl, `${server.baseUrl}/Coverage/${entry.resource?.id ?? ''}`);
    }
    assert.ok(body.link?.find((l) => l.relation === 'self')?.url.startsWith(`${server.baseUrl}/Coverage?`));
    assert.equal(body.link?.find((l) => l.relation === 'next'), undefined);
  });

  test('_summary=count gives the total only; unsupported parameters are refused, not silently empty', async () => {
    const { body } = await fetchJson<Bundle>(`${server.baseUrl}/Observation?patient=p1&_summary=count`);
    assert.equal(body.total, 5);
    assert.equal(body.entry, undefined);
    for (const path of ['Coverage?foo=bar', 'Observation?value-quantity=5', 'Coverage?beneficiary.name=One', 'Coverage?_sort=nope', 'Coverage?_include=Coverage:status']) {
      const res = await fetchJson<OperationOutcome>(`${server.baseUrl}/${path}`);
      assert.equal(res.status, 400, path);
      assert.equal(res.body.resourceType, 'OperationOutcome');
    }
    assert.deepEqual(await searchIds('Coverage?payor:missing=false&beneficiary:not=p1'), ['cov3']);
  });

  test('_include=Coverage:payor adds each referenced Organization once, as include', async () => {
    const { body } = await fetchJson<Bundle>(`${server.baseUrl}/Coverage?status=active&_include=Coverage:payor`);
    const matches = (body.entry ?? []).filter((e) => e.search?.mode === 'match').map((e) => e.resource?.id);
    const includes = (body.entry ?? []).filter((e) => e.search?.mode === 'include');
    assert.deepEqual(sorted(matches.map(String)), ['cov1', 'cov3']);
    assert.equal(includes.length, 1);
    assert.equal(includes[0]?.resource?.resourceType, 'Organization');
    assert.equal(includes[0]?.resource?.id, 'org1');
    assert.equal(includes[0]?.fullUrl, `${server.baseUrl}/Organization/org1`);
    assert.equal(body.total, 2, 'total counts matches only');

    const both = await fetchJson<Bundle>(`${server.baseUrl}/Coverage?patient=p1&_include=Coverage:payor:Organization`);
    const orgIds = (both.body.entry ?? []).filter((e) => e.search?.mode === 'include').map((e) => e.resource?.id);
    assert.deepEqual(sorted(orgIds.map(String)), ['org1', 'org2']);
  });

  test('generic _include (Observation:patient) and _revinclude (Coverage:beneficiary)', async () => {
    const inc = await fetchJson<Bundle>(`${server.baseUrl}/Observation?_id=ob1,ob6&_include=Observation:patient`);
    const patients = (inc.body.entry ?? []).filter((e) => e.search?.mode === 'include').map((e) => e.resource?.id);
    assert.deepEqual(sorted(patients.map(String)), ['p1', 'p2']);

    const rev = await fetchJson<Bundle>(`${server.baseUrl}/Patient?_id=p1&_revinclude=Coverage:beneficiary`);
    const covs = (rev.body.entry ?? []).filter((e) => e.search?.mode === 'include').map((e) => e.resource?.id);
    assert.deepEqual(sorted(covs.map(String)), ['cov1', 'cov2']);
  });

  test('_count=2 with filters and _sort: next links walk every match exactly once, in order', async () => {
    let url: string | undefined = `${server.baseUrl}/Observation?patient=p1&code=${encodeURIComponent(
      `${LOINC}|4548-4,${LOINC}|718-7,${LOINC}|2345-7,${LOINC}|8867-4`,
    )}&_sort=-date&_count=2&_include=Observation:patient`;
    const seen: string[] = [];
    let pages = 0;
    while (url !== undefined) {
      assert.ok(url.startsWith(`${server.baseUrl}/Observation?`), `next link must be absolute on this server: ${url}`);
      const { status, body }: { status: number; body: Bundle } = await fetchJson<Bundle>(url);
      assert.equal(status, 200);
      assert.equal(body.total, 5);
      const matches = (body.entry ?? []).filter((e) => e.search?.mode === 'match');
      assert.ok(matches.length <= 2);
      seen.push(...matches.map((e) => e.resource?.id ?? '?'));
      // Includes are resolved per page.
      assert.ok((body.entry ?? []).some((e) => e.search?.mode === 'include' && e.resource?.id === 'p1'));
      url = body.link?.find((l) => l.relation === 'next')?.url;
      pages++;
      assert.ok(pages <= 5, 'paging does not terminate');
    }
    assert.equal(pages, 3);
    assert.deepEqual(seen, ['ob4', 'ob5', 'ob2', 'ob3', 'ob1']);
  });

  test('form-encoded POST [type]/_search filters, and its next link pages with GET', async () => {
    const res = await fetchJson<Bundle>(`${server.baseUrl}/Observation/_search`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ patient: 'p1', code: `${LOINC}|4548-4,${LOINC}|718-7`, _count: '2', _sort: 'date' }).toString(),
    });
    assert.equal(res.status, 200);
    assert.equal(res.body.total, 3);
    assert.deepEqual(
      (res.body.entry ?? []).map((e) => e.resource?.id),
      ['ob1', 'ob2'],
    );
    const next = res.body.link?.find((l) => l.relation === 'next')?.url;
    assert.ok(next);
    assert.deepEqual(await searchIds(next.slice(server.baseUrl.length + 1)), ['ob4']);
    assert.deepEqual(
      server.requests.map((r) => r.method),
      ['POST', 'GET'],
    );
  });

  test('records every request with method, path+query and Authorization', async () => {
    await fetch(`${server.baseUrl}/Patient/p1`, { headers: { authorization: 'Bearer abc' } });
    await fetch(`${server.baseUrl}/Coverage?patient=p1`);
    assert.deepEqual(server.requests, [
      { method: 'GET', url: '/fhir/Patient/p1', authorization: 'Bearer abc' },
      { method: 'GET', url: '/fhir/Coverage?patient=p1', authorization: undefined },
    ]);
  });

  test('delayMs delays responses, so client deadlines fire', async () => {
    server.setBehaviour({ delayMs: 300 });
    const t0 = performance.now();
    const res = await fetch(`${server.baseUrl}/Patient/p1`);
    assert.equal(res.status, 200);
    await res.arrayBuffer();
    assert.ok(performance.now() - t0 >= 280, 'response was not delayed');

    await assert.rejects(fetch(`${server.baseUrl}/Patient/p1`, { signal: AbortSignal.timeout(50) }), /abort|timeout/i);
  });

  test('failWith answers with that status and an OperationOutcome, optionally only for matching paths', async () => {
    server.setBehaviour({ failWith: 503, failPathPattern: /\/Coverage\b/ });
    const failed = await fetchJson<OperationOutcome>(`${server.baseUrl}/Coverage?patient=p1`);
    assert.equal(failed.status, 503);
    assert.equal(failed.body.resourceType, 'OperationOutcome');
    assert.equal((await fetch(`${server.baseUrl}/Patient/p1`)).status, 200);

    server.setBehaviour({ failWith: 500 });
    assert.equal((await fetch(`${server.baseUrl}/Patient/p1`)).status, 500);
    assert.equal((await fetch(`${server.baseUrl}/metadata`)).status, 500);

    server.setBehaviour({});
    assert.equal((await fetch(`${server.baseUrl}/Coverage/cov1`)).status, 200);
  });

  test('requireBearer answers 401 unless Authorization is exactly Bearer <token>', async () => {
    server.setBehaviour({ requireBearer: 'secret' });
    const none = await fetchJson<OperationOutcome>(`${server.baseUrl}/Patient/p1`);
    assert.equal(none.status, 401);
    assert.equal(none.body.resourceType, 'OperationOutcome');
    assert.equal((await fetch(`${server.baseUrl}/Patient/p1`, { headers: { authorization: 'Bearer wrong' } })).status, 401);
    assert.equal((await fetch(`${server.baseUrl}/Patient/p1`, { headers: { authorization: 'bearer secret' } })).status, 401);
    assert.equal((await fetch(`${server.baseUrl}/Patient/p1`, { headers: { authorization: 'Bearer secret' } })).status, 200);
    assert.equal(server.requests.length, 4, 'rejected requests are recorded too');
  });

  test('reset() empties the repository and the request log', async () => {
    assert.deepEqual(sorted(await searchIds('Coverage?patient=p1')), ['cov1', 'cov2']);
    const requests = server.requests;
    await server.reset();
    assert.equal(requests.length, 0, 'the same array is emptied, so held references see it');
    assert.deepEqual(await searchIds('Coverage'), []);
    assert.equal((await fetch(`${server.baseUrl}/Patient/p1`)).status, 404);
  });

  test('pageSizeDefault applies when _count is absent; a second server starts fast (definitions indexed once)', async () => {
    const t0 = performance.now();
    const small = await startFhirServer({ pageSizeDefault: 2 });
    const secondStartMs = performance.now() - t0;
    try {
      assert.ok(secondStartMs < 500, `second start took ${secondStartMs} ms`);
      assert.notEqual(small.baseUrl, server.baseUrl);
      await small.seed(fixtures);
      const { body } = await fetchJson<Bundle>(`${small.baseUrl}/Observation?patient=p1`);
      assert.equal(body.entry?.length, 2);
      assert.equal(body.total, 5);
      assert.ok(body.link?.some((l) => l.relation === 'next'));
      // Separate repositories and request logs.
      assert.equal(server.requests.length, 0);
    } finally {
      await small.close();
    }
  });
});
