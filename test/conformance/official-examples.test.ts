// The official CDS Hooks, CRD and Inferno example JSON (test/conformance/examples, unchanged) sent to
// our services the way Inferno's CRD server suite calls a server: every POST carries an ES384 client
// JWT (iss, aud = service URL, exp, iat, jti; kid and jku in the header). Every example gets 200 or a
// clean 4xx whose body is an OperationOutcome, never a 5xx; the discovery document passes Inferno's
// Group 1 checks. The trusted client may contact no FHIR server, so nothing leaves this machine; a
// second pass lets the examples' no-prefetch path run against our in-memory FHIR server.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Express } from 'express';
import { randomBytes } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import request from 'supertest';
import { ORDER_SELECT, ORDER_SIGN, testApp } from '../support/app.ts';
import { assertCrdConformant } from '../support/crd-conformance.ts';
import { startFhirServer, type FhirTestServer } from '../support/fhir-server.ts';

const EXAMPLES = path.join(import.meta.dirname, 'examples');
const BASE_URL = 'http://crd.test';
const INFERNO_ISS = 'https://inferno.example.org/custom/crd_server';
const INFERNO_JKU = 'https://inferno.example.org/custom/crd_server/jwks.json';

type Json = Record<string, unknown>;

interface Example {
  name: string;
  body: unknown;
}

function loadExamples(): Example[] {
  const out: Example[] = [];
  for (const dir of readdirSync(EXAMPLES, { withFileTypes: true })) {
    if (!dir.isDirectory()) continue;
    for (const file of readdirSync(path.join(EXAMPLES, dir.name)).filter((f) => f.endsWith('.json')).sort()) {
      out.push({ name: `${dir.name}/${file}`, body: JSON.parse(readFileSync(path.join(EXAMPLES, dir.name, file), 'utf8')) as unknown });
    }
  }
  return out;
}

const examples = loadExamples();
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const requests = examples.filter((e) => isObject(e.body) && typeof e.body.hook === 'string' && isObject(e.body.context));
/** The CDS Hooks library context examples, completed into requests (hook and hookInstance added). */
const contexts = examples
  .filter((e) => e.name.startsWith('hooks-library/'))
  .map((e) => ({
    name: `${e.name} (as a full request)`,
    hook: e.name.includes('order-select') ? 'order-select' : 'order-sign',
    body: { hook: e.name.includes('order-select') ? 'order-select' : 'order-sign', hookInstance: 'd1577c69-dfbe-44ad-ba6d-3e05e953b2ea', ...(e.body as Json) },
  }));

interface ClientKey {
  privateKey: CryptoKey;
  publicJwk: JWK;
}

/** The client JWT as Inferno builds it: ES384, typ JWT, kid and jku; iss, aud, exp = iat + 5 min, jti of 64 hex. */
async function signToken(clientKey: ClientKey, claims: { iss: string; aud: string; header: { jku: string } }): Promise<string> {
  const iat = Math.floor(Date.now() / 1000);
  return new SignJWT({ iss: claims.iss, aud: claims.aud, iat, exp: iat + 300, jti: randomBytes(32).toString('hex') })
    .setProtectedHeader({ alg: 'ES384', typ: 'JWT', kid: 'inferno-es384', jku: claims.header.jku })
    .sign(clientKey.privateKey);
}

let key: ClientKey;
let app: Express;
let fhir: FhirTestServer;
let appWithFhir: Express;

async function post(target: Express, service: string, body: unknown): Promise<request.Response> {
  const token = await signToken(key, { iss: INFERNO_ISS, aud: `${BASE_URL}${service}`, header: { jku: INFERNO_JKU } });
  return request(target).post(service).set('Authorization', `Bearer ${token}`).set('Content-Type', 'application/json').send(JSON.stringify(body));
}

/** 200 (and then a conformant CRD response), or a 4xx whose body is an OperationOutcome with an issue that says something. */
function assertCleanAnswer(res: request.Response, what: string, body: unknown): void {
  assert.ok(res.status < 500, `${what}: ${res.status} ${res.text}`);
  assert.match(String(res.headers['content-type']), /json/, what);
  if (res.status === 200) {
    assertCrdConformant(res.body, { request: body as Json, payerName: 'Jefferson Health Plans' });
    return;
  }
  assert.ok(res.status >= 400 && res.status < 500, `${what}: ${res.status}`);
  const outcome = res.body as Json;
  assert.equal(outcome.resourceType, 'OperationOutcome', `${what}: ${res.text}`);
  const issues = outcome.issue as Json[];
  assert.ok(Array.isArray(issues) && issues.length > 0, what);
  for (const issue of issues) {
    assert.ok(['error', 'fatal'].includes(String(issue.severity)), what);
    assert.ok(typeof issue.code === 'string' && issue.code.length > 0, what);
    assert.ok(typeof issue.diagnostics === 'string' && issue.diagnostics.length > 0, what);
  }
}

function diagnostics(res: request.Response): string {
  return ((res.body as Json).issue as Json[]).map((i) => String(i.diagnostics)).join(' | ');
}

before(async () => {
  const pair = await generateKeyPair('ES384', { extractable: true });
  key = { privateKey: pair.privateKey, publicJwk: { ...(await exportJWK(pair.publicKey)), kid: 'inferno-es384', alg: 'ES384', use: 'sig' } };
  const client = { iss: INFERNO_ISS, jwks: { keys: [key.publicJwk] }, jku: [INFERNO_JKU] };
  app = testApp({ baseUrl: BASE_URL, fhirDeadlineMs: 1000 }, { clients: [{ ...client, fhirServers: [] }] }).app;
  fhir = await startFhirServer();
  appWithFhir = testApp({ baseUrl: BASE_URL, fhirDeadlineMs: 1000 }, { clients: [{ ...client, fhirServers: [fhir.baseUrl] }] }).app;
});

after(async () => {
  await fhir.close();
});

describe('official examples sent to our services', () => {
  it('the corpus is complete: 35 example files, 12 hook requests, 2 library contexts', () => {
    assert.equal(examples.length, 35);
    assert.equal(requests.length, 12);
    assert.equal(contexts.length, 2);
  });

  for (const example of requests) {
    const hook = (example.body as Json).hook as string;
    for (const service of [ORDER_SIGN, ORDER_SELECT]) {
      const serviceHook = service === ORDER_SIGN ? 'order-sign' : 'order-select';
      it(`${example.name} (${hook}) → ${serviceHook} service`, async () => {
        const res = await post(app, service, example.body);
        assertCleanAnswer(res, example.name, example.body);
        if (hook !== serviceHook) {
          // A hook this service does not answer: 400 naming the hook field.
          assert.equal(res.status, 400);
          assert.match(diagnostics(res), new RegExp(`hook must be "${serviceHook}"`));
          assert.deepEqual(((res.body as Json).issue as Json[])[0]!.expression, ['hook']);
        } else {
          // Valid requests for a payer we do not serve, or whose data we may not fetch: a 4xx that says why.
          assert.ok([400, 412].includes(res.status), `${example.name}: ${res.status} ${res.text}`);
          assert.match(diagnostics(res), /Coverage|payer/i);
        }
      });
    }
  }

  for (const example of contexts) {
    for (const service of [ORDER_SIGN, ORDER_SELECT]) {
      it(`${example.name} → ${service === ORDER_SIGN ? 'order-sign' : 'order-select'} service`, async () => {
        const res = await post(app, service, example.body);
        assertCleanAnswer(res, example.name, example.body);
        if ((service === ORDER_SIGN) === (example.hook === 'order-sign')) {
          // No prefetch and no FHIR server this client may use: the coverage cannot be had (CDS Hooks §412).
          assert.equal(res.status, 412, res.text);
        } else {
          assert.equal(res.status, 400);
        }
      });
    }
  }

  for (const example of examples.filter((e) => !requests.includes(e) && !e.name.startsWith('hooks-library/'))) {
    it(`${example.name} (not a hook request) → both services answer 400`, async () => {
      for (const service of [ORDER_SIGN, ORDER_SELECT]) {
        const res = await post(app, service, example.body);
        assertCleanAnswer(res, example.name, example.body);
        assert.equal(res.status, 400, `${example.name} → ${service}`);
      }
    });
  }

  it('order-sign/order-select examples against a reachable (empty) FHIR server: the service queries it with the token and answers 4xx, never 5xx', async () => {
    let sent = 0;
    for (const example of [...requests, ...contexts]) {
      const body = structuredClone(example.body) as Json;
      const hook = body.hook;
      if (hook !== 'order-sign' && hook !== 'order-select') continue;
      body.fhirServer = fhir.baseUrl;
      body.fhirAuthorization = { access_token: 'example-token-1', token_type: 'Bearer', expires_in: 30, scope: 'patient/*.read', subject: 'crd' };
      const before = fhir.requests.length;
      const res = await post(appWithFhir, hook === 'order-sign' ? ORDER_SIGN : ORDER_SELECT, body);
      assertCleanAnswer(res, example.name, body);
      assert.ok([400, 412].includes(res.status), `${example.name}: ${res.status} ${res.text}`);
      const seen = fhir.requests.slice(before);
      assert.ok(seen.length > 0, `${example.name}: the FHIR server was queried`);
      assert.ok(seen.every((r) => r.authorization === 'Bearer example-token-1'), `${example.name}: every query carried the hook's token`);
      sent++;
    }
    assert.equal(sent, 8, 'order-sign and order-select examples (6 requests, 2 library contexts)');
  });
});

describe('discovery as Inferno checks it (CRD server suite, Group 1)', () => {
  it('GET /cds-services with the client JWT: 200, valid JSON, services with string hook, description and id', async () => {
    const token = await signToken(key, { iss: INFERNO_ISS, aud: `${BASE_URL}/cds-services`, header: { jku: INFERNO_JKU } });
    const res = await request(app).get('/cds-services').set('Authorization', `Bearer ${token}`);
    assert.equal(res.status, 200);
    // Authentication is really on in this file: without the JWT the same calls are refused.
    assert.equal((await request(app).get('/cds-services')).status, 401);
    assert.equal((await request(app).post(ORDER_SIGN).send({})).status, 401);
    const doc = JSON.parse(res.text) as Json;
    assert.ok(Array.isArray(doc.services) && doc.services.length > 0, 'services is a non-empty array');
    const byHook = new Map<string, string[]>();
    for (const service of doc.services as Json[]) {
      for (const field of ['hook', 'description', 'id']) assert.equal(typeof service[field], 'string', `service.${field}`);
      byHook.set(String(service.hook), [...(byHook.get(String(service.hook)) ?? []), String(service.id)]);
    }
    assert.deepEqual([...byHook.keys()].sort(), ['order-select', 'order-sign']);
    // Inferno then calls {base}/cds-services/{id} for each hook's service: each id is routed.
    for (const [hook, ids] of byHook) {
      for (const id of ids) {
        const res2 = await post(app, `/cds-services/${id}`, { hook, hookInstance: 'x', context: {} });
        assert.equal(res2.status, 400, `${id} is a service (it validated the body, not 404)`);
      }
    }
  });

  it('our discovery has every field the official discovery examples use, with the same types', () => {
    const ours = JSON.parse(readFileSync(path.join(import.meta.dirname, '../../cds-services.json'), 'utf8')) as { services: Json[] };
    for (const file of ['crd-ig/discovery_CRDServices.json', 'cds-hooks-spec/discovery_response.json', 'inferno/discovery_inferno_simulated_crd_server_v220.json']) {
      const official = examples.find((e) => e.name === file)!.body as { services: Json[] };
      for (const field of ['hook', 'title', 'description', 'id', 'prefetch']) {
        const types = new Set<string>(official.services.map((s) => typeof s[field]).filter((t) => t !== 'undefined'));
        for (const service of ours.services) assert.ok(types.size === 0 || types.has(typeof service[field]), `${file}: ${field}`);
      }
    }
    // The CRD example's extension shape: davinci-crd.version is an array of "major.minor" strings.
    const crd = examples.find((e) => e.name === 'crd-ig/discovery_CRDServices.json')!.body as { services: Json[] };
    const theirVersion = (crd.services[0]!.extension as Json)['davinci-crd.version'];
    for (const service of ours.services) {
      const version = (service.extension as Json)['davinci-crd.version'];
      assert.ok(Array.isArray(theirVersion) && Array.isArray(version));
      assert.ok((version as unknown[]).every((v) => typeof v === 'string' && /^\d+\.\d+$/.test(v)));
    }
  });

  it('the official feedback bodies parse into the shape a feedback endpoint will accept', () => {
    const feedback = examples.filter((e) => e.name.startsWith('cds-hooks-spec/feedback_'));
    assert.equal(feedback.length, 2);
    for (const example of feedback) {
      const items = (example.body as { feedback?: unknown }).feedback;
      assert.ok(Array.isArray(items) && items.length > 0, example.name);
      for (const item of items as Json[]) {
        assert.match(String(item.card), /^[0-9a-f-]{36}$/, `${example.name}: card uuid`);
        assert.ok(['accepted', 'overridden'].includes(String(item.outcome)), example.name);
        assert.ok(!Number.isNaN(Date.parse(String(item.outcomeTimestamp))) && /Z$/.test(String(item.outcomeTimestamp)), `${example.name}: RFC 3339 UTC`);
        if (item.outcome === 'accepted') assert.ok(Array.isArray(item.acceptedSuggestions) && item.acceptedSuggestions.length > 0, example.name);
        if (item.outcome === 'overridden' && item.overrideReason !== undefined) {
          const reason = (item.overrideReason as Json).reason as Json | undefined;
          if (reason) assert.ok(typeof reason.code === 'string' && typeof reason.system === 'string', example.name);
        }
      }
    }
  });
});
