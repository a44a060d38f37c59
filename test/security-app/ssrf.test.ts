import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { after, before, describe, test } from 'node:test';
import type { Bundle } from 'fhir/r4.js';
import request from 'supertest';
import type { HookResponse } from '../../server/protocol/types.ts';
import { json, makeKey, startRecordingServer, type RecordingServer, type TestKey } from '../security/helpers.ts';
import { ORDER_SIGN, testApp, type TestApp } from '../support/app.ts';
import { startFhirServer, type FhirTestServer } from '../support/fhir-server.ts';
import { allResources, fullPrefetch, hookRequest, zolgensmaCase, type ClinicalCase } from '../support/fixtures.ts';
import { bearer, inlineClient, ISS_A, isOperationOutcomeBody, logEntries, tokenFor } from './helpers.ts';

/**
 * Issue 4, "never a way into other servers", through the pipeline: a trusted client's fhirServer is
 * contacted only under its configured prefixes, and neither paging links nor redirects lead
 * anywhere else. Every "other" server here is a real local server whose request log must stay empty.
 */

const ACCESS_TOKEN = 'ehr-access-token-ssrf-5d41402a';

let key: TestKey;
/** The client's FHIR server, on its allowlist. */
let fhir: FhirTestServer;
/** A second real FHIR server holding the same patient: the SSRF target. */
let other: FhirTestServer;
/** Also on the allowlist; proxies to `fhir` and misbehaves as each test asks. */
let hostile: RecordingServer;
/** Any request here is a failure. */
let evil: RecordingServer;
let hostileBehaviour: (req: IncomingMessage, res: ServerResponse) => Promise<void>;
let t: TestApp;
let devApp: TestApp;
let c: ClinicalCase;

function originOf(url: string): string {
  return new URL(url).origin;
}

/** Forwards to the real FHIR server; `rewrite` may change the parsed body. */
async function proxy(req: IncomingMessage, res: ServerResponse, rewrite?: (body: Bundle) => Bundle): Promise<void> {
  const upstream = await fetch(`${originOf(fhir.baseUrl)}${req.url ?? '/'}`, {
    method: req.method ?? 'GET',
    headers: { accept: 'application/fhir+json', ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}) },
  });
  const body = (await upstream.json()) as Bundle;
  json(res, upstream.status, rewrite && body.resourceType === 'Bundle' ? rewrite(body) : body);
}

before(async () => {
  key = await makeKey('ES384', 'ssrf-1');
  c = zolgensmaCase();
  [fhir, other] = await Promise.all([startFhirServer(), startFhirServer()]);
  await fhir.seed(allResources(c));
  await other.seed(allResources(c));
  hostileBehaviour = (req, res) => proxy(req, res);
  hostile = await startRecordingServer((req, res) => {
    hostileBehaviour(req, res).catch(() => json(res, 502, {}));
  });
  evil = await startRecordingServer();
  t = testApp({}, { clients: [inlineClient(ISS_A, [key], [`${fhir.baseUrl}/`, `${hostile.origin}/fhir/`])] });
  devApp = testApp();
});

after(async () => {
  await Promise.all([fhir.close(), other.close(), hostile.close(), evil.close()]);
});

async function call(body: Record<string, unknown>, app: TestApp = t) {
  const req = request(app.app).post(ORDER_SIGN).send(body);
  if (app === t) req.set('Authorization', bearer(await tokenFor(key, ISS_A, ORDER_SIGN)));
  return req;
}

function assertNoRequests(server: { requests: unknown[] }, name: string, since = 0): void {
  assert.deepEqual(server.requests.slice(since), [], `${name} received a request`);
}

function clearLogs(): void {
  fhir.requests.length = 0;
  other.requests.length = 0;
  hostile.requests.length = 0;
  evil.requests.length = 0;
}

describe('fhirServer allowlist through the pipeline (authentication on)', () => {
  test('baseline: the allowed FHIR server is queried with the EHR token when nothing is prefetched', async () => {
    clearLogs();
    const res = await call(hookRequest(c, { prefetch: 'none', fhirServer: fhir.baseUrl, accessToken: ACCESS_TOKEN }));
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.ok(fhir.requests.length > 5, 'the fallback queries ran');
    assert.ok(fhir.requests.every((r) => r.authorization === `Bearer ${ACCESS_TOKEN}`));
    assert.ok((res.body as HookResponse).systemActions?.length);
  });

  test('a fhirServer not under the client\'s prefixes: the second server sees no request, the answer is 412', async () => {
    clearLogs();
    const from = t.logs.lines.length;
    const res = await call(hookRequest(c, { prefetch: 'none', fhirServer: other.baseUrl, accessToken: ACCESS_TOKEN }));
    assert.equal(res.status, 412, JSON.stringify(res.body));
    assert.ok(isOperationOutcomeBody(res.body));
    assertNoRequests(other, 'the second FHIR server');
    const warned = logEntries(t.logs.lines.slice(from)).find((e) => /not among the client's allowed FHIR servers/.test(String(e.msg)));
    assert.equal(warned?.iss, ISS_A);
    assert.ok(!t.logs.text.includes(ACCESS_TOKEN));
  });

  test('with full prefetch a refused fhirServer costs nothing: 200 and no request anywhere', async () => {
    clearLogs();
    const res = await call(hookRequest(c, { fhirServer: other.baseUrl, accessToken: ACCESS_TOKEN }));
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assertNoRequests(other, 'the second FHIR server');
  });

  const variants: Array<[string, () => string]> = [
    ['prefix boundary (/fhir-evil)', () => `${originOf(fhir.baseUrl)}/fhir-evil`],
    ['prefix boundary with slash (/fhirx/)', () => `${originOf(fhir.baseUrl)}/fhirx/`],
    ['dot segments out of the prefix', () => `${fhir.baseUrl}/../admin`],
    ['encoded dot segments', () => `${fhir.baseUrl}/%2e%2e/admin`],
    ['encoded slash', () => `${fhir.baseUrl}%2f..%2fadmin`],
    ['userinfo on the allowed host', () => fhir.baseUrl.replace('http://', 'http://user:secret@')],
    ['allowed host as userinfo, other server as host', () => other.baseUrl.replace('http://', `http://${new URL(fhir.baseUrl).host}@`)],
    ['other port, same host', () => other.baseUrl],
    ['same port, host spelled localhost', () => fhir.baseUrl.replace('127.0.0.1', 'localhost')],
    ['same server over https', () => fhir.baseUrl.replace('http://', 'https://')],
    ['query string', () => `${fhir.baseUrl}?_format=json`],
  ];
  for (const [name, url] of variants) {
    test(`refused: ${name}`, async () => {
      clearLogs();
      const res = await call(hookRequest(c, { prefetch: 'none', fhirServer: url(), accessToken: ACCESS_TOKEN }));
      // The refused server is treated as absent: nothing prefetched and nothing to query, so no Coverage → 412.
      assert.equal(res.status, 412, JSON.stringify(res.body));
      assert.ok(isOperationOutcomeBody(res.body));
      assertNoRequests(fhir, 'the allowed FHIR server (outside its prefix)');
      assertNoRequests(other, 'the second FHIR server');
      assertNoRequests(hostile, 'the other allowed server');
    });
  }

  test('a trailing slash on the allowed fhirServer is still allowed', async () => {
    clearLogs();
    const res = await call(hookRequest(c, { prefetch: 'none', fhirServer: `${fhir.baseUrl}/`, accessToken: ACCESS_TOKEN }));
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.ok(fhir.requests.length > 0);
  });

  test('a client with fhirServers [] never has its fhirServer contacted', async () => {
    const k = await makeKey('ES384', 'none-1');
    const app = testApp({}, { clients: [inlineClient('https://no-fhir.example.org', [k], [])] });
    clearLogs();
    const res = await request(app.app)
      .post(ORDER_SIGN)
      .set('Authorization', bearer(await tokenFor(k, 'https://no-fhir.example.org', ORDER_SIGN)))
      .send(hookRequest(c, { prefetch: 'none', fhirServer: fhir.baseUrl, accessToken: ACCESS_TOKEN }));
    assert.equal(res.status, 412);
    assertNoRequests(fhir, 'the FHIR server');
  });
});

describe('paging links and redirects stay on the fhirServer origin', () => {
  test('a prefetched Bundle whose next link points at another origin: not followed, observations degrade, 200', async () => {
    clearLogs();
    const prefetch = fullPrefetch(c);
    const observations = prefetch.observations as Bundle;
    observations.link = [{ relation: 'next', url: `${evil.origin}/fhir/Observation?page=2&patient=${c.patient.id}` }];
    const from = t.logs.lines.length;
    const res = await call(hookRequest(c, { prefetch, fhirServer: fhir.baseUrl, accessToken: ACCESS_TOKEN }));
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assertNoRequests(evil, 'the next-link target');
    const answered = logEntries(t.logs.lines.slice(from)).find((e) => e.msg === 'hook answered');
    assert.deepEqual((answered?.sources as Record<string, string>).observations, 'unavailable');
    assert.ok((answered?.problems as string[]).some((p) => /observations: further prefetch pages: blocked/.test(p)), JSON.stringify(answered?.problems));
  });

  test('a next link from the allowed server\'s own search result pointing at another origin: not followed', async () => {
    clearLogs();
    hostileBehaviour = (req, res) =>
      proxy(req, res, (bundle) =>
        req.url?.startsWith('/fhir/Observation?')
          ? { ...bundle, link: [...(bundle.link ?? []).filter((l) => l.relation !== 'next'), { relation: 'next', url: `${evil.origin}/fhir/Observation?page=2` }] }
          : bundle,
      );
    try {
      const res = await call(hookRequest(c, { prefetch: 'none', fhirServer: `${hostile.origin}/fhir`, accessToken: ACCESS_TOKEN }));
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.ok(hostile.requests.some((r) => r.url.startsWith('/fhir/Observation?')), 'the first page was fetched');
      assertNoRequests(evil, 'the next-link target');
    } finally {
      hostileBehaviour = (req, res) => proxy(req, res);
    }
  });

  test('a next link to another port of the same host (the second FHIR server): not followed', async () => {
    clearLogs();
    hostileBehaviour = (req, res) =>
      proxy(req, res, (bundle) =>
        req.url?.startsWith('/fhir/Condition?') ? { ...bundle, link: [{ relation: 'next', url: `${other.baseUrl}/Condition?patient=${c.patient.id}` }] } : bundle,
      );
    try {
      const res = await call(hookRequest(c, { prefetch: 'none', fhirServer: `${hostile.origin}/fhir`, accessToken: ACCESS_TOKEN }));
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assertNoRequests(other, 'the second FHIR server');
    } finally {
      hostileBehaviour = (req, res) => proxy(req, res);
    }
  });

  for (const status of [301, 302, 303, 307, 308]) {
    test(`a ${status} redirect from the allowed server to another origin: not followed, the token stays home`, async () => {
      clearLogs();
      hostileBehaviour = async (req, res) => {
        res.writeHead(status, { location: `${evil.origin}${req.url ?? '/'}` }).end();
      };
      try {
        const res = await call(hookRequest(c, { prefetch: 'none', fhirServer: `${hostile.origin}/fhir`, accessToken: ACCESS_TOKEN }));
        // Every query failed, so the Coverage is unavailable: the documented 412, not a 5xx.
        assert.equal(res.status, 412, JSON.stringify(res.body));
        assert.ok(isOperationOutcomeBody(res.body));
        assert.ok(hostile.requests.length > 0);
        assertNoRequests(evil, 'the redirect target');
      } finally {
        hostileBehaviour = (req, res) => proxy(req, res);
      }
    });
  }

  test('a redirect on one query only: that category degrades, the answer is 200, the target sees nothing', async () => {
    clearLogs();
    hostileBehaviour = async (req, res) => {
      if (req.url?.startsWith('/fhir/Procedure?')) res.writeHead(302, { location: `${evil.origin}/steal` }).end();
      else await proxy(req, res);
    };
    try {
      const res = await call(hookRequest(c, { prefetch: 'none', fhirServer: `${hostile.origin}/fhir`, accessToken: ACCESS_TOKEN }));
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assertNoRequests(evil, 'the redirect target');
    } finally {
      hostileBehaviour = (req, res) => proxy(req, res);
    }
  });
});

describe('authentication off (development): documented behaviour', () => {
  test('any http(s) fhirServer is contacted: the second server is queried (this is why production refuses to run without clients)', async () => {
    clearLogs();
    const res = await call(hookRequest(c, { prefetch: 'none', fhirServer: other.baseUrl, accessToken: ACCESS_TOKEN }), devApp);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.ok(other.requests.length > 0);
    assert.ok(devApp.logs.text.includes('CDS CLIENT AUTHENTICATION IS OFF'), 'the loud warning was logged');
  });

  test('still refused with authentication off: userinfo, next links and redirects to other origins', async () => {
    clearLogs();
    let res = await call(hookRequest(c, { prefetch: 'none', fhirServer: other.baseUrl.replace('http://', 'http://u:p@'), accessToken: ACCESS_TOKEN }), devApp);
    assert.equal(res.status, 412);
    assertNoRequests(other, 'the second FHIR server (userinfo URL)');

    const prefetch = fullPrefetch(c);
    (prefetch.conditions as Bundle).link = [{ relation: 'next', url: `${evil.origin}/fhir/Condition?page=2` }];
    res = await call(hookRequest(c, { prefetch, fhirServer: fhir.baseUrl, accessToken: ACCESS_TOKEN }), devApp);
    assert.equal(res.status, 200);

    hostileBehaviour = async (req, res2) => {
      res2.writeHead(302, { location: `${evil.origin}${req.url ?? '/'}` }).end();
    };
    try {
      res = await call(hookRequest(c, { prefetch: 'none', fhirServer: `${hostile.origin}/fhir`, accessToken: ACCESS_TOKEN }), devApp);
      assert.equal(res.status, 412);
    } finally {
      hostileBehaviour = (req, res2) => proxy(req, res2);
    }
    assertNoRequests(evil, 'the other origin');
  });

  test('non-http(s) fhirServer values are rejected by request validation (400) before anything is contacted', async () => {
    for (const url of ['file:///etc/passwd', 'gopher://127.0.0.1:70/x', 'ftp://127.0.0.1/fhir']) {
      const res = await call(hookRequest(c, { prefetch: 'none', fhirServer: url, accessToken: ACCESS_TOKEN }), devApp);
      assert.equal(res.status, 400, url);
      assert.ok(isOperationOutcomeBody(res.body));
    }
  });
});
