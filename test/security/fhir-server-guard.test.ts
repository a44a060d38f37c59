import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  BlockedRequestError,
  createFhirKitGuard,
  createGuardedFetch,
  isFhirServerAllowed,
  isSameOrigin,
} from '../../server/security/fhir-server-guard.ts';
import type { TrustedClient } from '../../server/security/trusted-clients.ts';
import { json, startRecordingServer, type RecordingServer } from './helpers.ts';

const client: TrustedClient = {
  iss: 'https://ehr.example.org',
  jku: ['https://ehr.example.org/jwks.json'],
  fhirServers: ['https://ehr.example.org/fhir', 'https://EHR2.example.org:443/r4/'],
};

describe('isFhirServerAllowed', () => {
  const allowed = [
    'https://ehr.example.org/fhir',
    'https://ehr.example.org/fhir/',
    'https://ehr.example.org/fhir/tenant-a',
    'https://EHR.Example.ORG/fhir',
    'https://ehr.example.org:443/fhir',
    'https://ehr2.example.org/r4',
    'https://ehr2.example.org/r4/x',
  ];
  const refused = [
    'https://ehr.example.org/fhir-evil/',
    'https://ehr.example.org/fhirx',
    'https://ehr.example.org/',
    'https://ehr.example.org/other/fhir',
    'https://ehr.example.org/fhir/../admin',
    'https://ehr.example.org/fhir/%2e%2e/admin',
    'https://ehr.example.org/fhir%2F..%2Fadmin',
    'https://ehr.example.org.evil.com/fhir',
    'https://evil.com/ehr.example.org/fhir',
    'https://user@ehr.example.org/fhir',
    'https://user:pw@ehr.example.org/fhir',
    'https://ehr.example.org@evil.com/fhir',
    'http://ehr.example.org/fhir',
    'https://ehr.example.org:8443/fhir',
    'https://ehr.example.org/fhir?x=1',
    'https://ehr.example.org/fhir#frag',
    'ftp://ehr.example.org/fhir',
    'file:///etc/passwd',
    'not a url',
    '',
  ];
  for (const url of allowed) {
    it(`allows ${url}`, () => assert.equal(isFhirServerAllowed(client, url), true));
  }
  for (const url of refused) {
    it(`refuses ${JSON.stringify(url)}`, () => assert.equal(isFhirServerAllowed(client, url), false));
  }
  it('refuses everything for a client with no fhirServers', () => {
    assert.equal(isFhirServerAllowed({ ...client, fhirServers: [] }, 'https://ehr.example.org/fhir'), false);
  });
  it('allows any http(s) URL when authentication is off (development)', () => {
    assert.equal(isFhirServerAllowed(undefined, 'http://localhost:8080/fhir'), true);
    assert.equal(isFhirServerAllowed(undefined, 'file:///etc/passwd'), false);
  });
});

describe('isSameOrigin', () => {
  it('compares normalised origins', () => {
    assert.equal(isSameOrigin('https://A.example.org:443/x', 'https://a.example.org/y?z'), true);
    assert.equal(isSameOrigin('http://a.example.org:80/', 'http://a.example.org'), true);
    assert.equal(isSameOrigin('https://a.example.org', 'http://a.example.org'), false);
    assert.equal(isSameOrigin('https://a.example.org', 'https://a.example.org:8443'), false);
    assert.equal(isSameOrigin('https://a.example.org', 'https://a.example.org.evil.com'), false);
    assert.equal(isSameOrigin('data:text/plain,x', 'data:text/plain,x'), false);
    assert.equal(isSameOrigin('nonsense', 'nonsense'), false);
  });
});

describe('createGuardedFetch', () => {
  let fhir: RecordingServer;
  let other: RecordingServer;

  before(async () => {
    other = await startRecordingServer();
    fhir = await startRecordingServer((req, res) => {
      if (req.url === '/fhir/cross') res.writeHead(302, { location: `${other.origin}/steal` }).end();
      else if (req.url === '/fhir/same') res.writeHead(301, { location: '/fhir/Patient/1' }).end();
      else if (req.url === '/fhir/post307') res.writeHead(307, { location: '/fhir/Observation/_search' }).end();
      else if (req.url === '/fhir/loop') res.writeHead(302, { location: '/fhir/loop' }).end();
      else json(res, 200, { url: req.url, method: req.method, auth: req.headers.authorization ?? null });
    });
  });
  after(async () => {
    await fhir.close();
    await other.close();
  });

  it('fetches same-origin URLs', async () => {
    const guarded = createGuardedFetch(`${fhir.origin}/fhir/`);
    const res = await guarded(`${fhir.origin}/fhir/Patient/1`, { headers: { authorization: 'Bearer t' } });
    assert.deepEqual(await res.json(), { url: '/fhir/Patient/1', method: 'GET', auth: 'Bearer t' });
  });

  it('refuses a cross-origin URL without contacting it', async () => {
    other.requests.length = 0;
    const guarded = createGuardedFetch(`${fhir.origin}/fhir/`);
    await assert.rejects(guarded(`${other.origin}/fhir/Patient/1`), (err: unknown) => {
      assert.ok(err instanceof BlockedRequestError);
      assert.equal(err.reason, 'cross_origin');
      return true;
    });
    assert.equal(other.requests.length, 0);
  });

  it('refuses a cross-origin redirect; the other server sees no request', async () => {
    other.requests.length = 0;
    const guarded = createGuardedFetch(fhir.origin);
    await assert.rejects(guarded(`${fhir.origin}/fhir/cross`, { headers: { authorization: 'Bearer secret' } }), (err: unknown) => {
      assert.ok(err instanceof BlockedRequestError);
      assert.equal(err.reason, 'cross_origin_redirect');
      return true;
    });
    assert.equal(other.requests.length, 0);
  });

  it('follows a same-origin redirect itself, keeping the Authorization header', async () => {
    const guarded = createGuardedFetch(fhir.origin);
    const res = await guarded(new URL(`${fhir.origin}/fhir/same`), { headers: { authorization: 'Bearer t' } });
    assert.deepEqual(await res.json(), { url: '/fhir/Patient/1', method: 'GET', auth: 'Bearer t' });
  });

  it('resends method and body on 307', async () => {
    const guarded = createGuardedFetch(fhir.origin);
    const res = await guarded(new Request(`${fhir.origin}/fhir/post307`, { method: 'POST', body: 'patient=1' }));
    assert.deepEqual(await res.json(), { url: '/fhir/Observation/_search', method: 'POST', auth: null });
  });

  it('stops after maxRedirects', async () => {
    const guarded = createGuardedFetch(fhir.origin, { maxRedirects: 3 });
    await assert.rejects(guarded(`${fhir.origin}/fhir/loop`), /More than 3 redirects/);
  });
});

describe('createFhirKitGuard', () => {
  it('refuses cross-origin URLs (e.g. a paging next link) and forces manual redirects', () => {
    const { requestOptions, requestSigner } = createFhirKitGuard('https://ehr.example.org/fhir/');
    assert.deepEqual(requestOptions, { redirect: 'manual' });
    const init: RequestInit = { redirect: 'follow' };
    requestSigner('https://ehr.example.org/fhir/Patient?page=2', init);
    assert.equal(init.redirect, 'manual');
    assert.throws(() => requestSigner('https://evil.example.com/fhir/Patient?page=2', {}), BlockedRequestError);
  });
});
