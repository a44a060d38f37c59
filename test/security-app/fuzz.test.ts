import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test, type TestContext } from 'node:test';
import fc from 'fast-check';
import { makeKey, rawToken, type TestKey } from '../security/helpers.ts';
import { ORDER_SELECT, ORDER_SIGN, testApp, type TestApp } from '../support/app.ts';
import { fullPrefetch, hookRequest, zolgensmaCase } from '../support/fixtures.ts';
import { apply, FHIR_FIELDS, getAt, hostileValue, isObject, mutation, paths, setOwn, type Json } from './fuzz-arbitraries.ts';
import { bearer, inlineClient, ISS_A, isOperationOutcomeBody, listen, logEntries, tokenFor } from './helpers.ts';

/**
 * Issue 4, fuzzing the whole service: thousands of malformed, truncated, wrongly typed and hostile
 * bodies, headers and FHIR server replies. Properties: no 5xx, the process keeps answering /health,
 * every 4xx body is an OperationOutcome, no prototype is polluted, nothing logs an unhandled error.
 *
 * Reproduce a failure with the seed fast-check prints: FC_SEED=<seed> node --import tsx --test test/security-app/fuzz.test.ts
 * Scale the run with FUZZ_SCALE (default 1; e.g. 10 for a long soak).
 */

const SCALE = Number(process.env.FUZZ_SCALE ?? '1') || 1;
const SEED = process.env.FC_SEED !== undefined ? Number(process.env.FC_SEED) : undefined;
function runs(n: number): fc.Parameters<unknown> {
  return { numRuns: Math.max(1, Math.round(n * SCALE)), includeErrorInReport: true, ...(SEED !== undefined ? { seed: SEED } : {}) };
}

let open: TestApp;
let authed: TestApp;
let openUrl: string;
let authedUrl: string;
let key: TestKey;
let fhirUrl: string;
let fhirServer: Server;
/** What the fake FHIR server answers, by the first path segment after /fhir/ (set per run). */
let fhirReplies: Record<string, Json> = {};
const closers: Array<() => Promise<void>> = [];

// ---------------------------------------------------------------------------------------------
// Base documents

type BaseName = 'sign-full' | 'select-full' | 'sign-partial' | 'sign-no-prefetch' | 'sign-fhir';

function base(name: BaseName): Json {
  const c = zolgensmaCase();
  switch (name) {
    case 'sign-full':
      return hookRequest(c) as Json;
    case 'select-full':
      return hookRequest(c, { hook: 'order-select' }) as Json;
    case 'sign-partial': {
      const prefetch: Record<string, unknown> = { ...fullPrefetch(c) };
      delete prefetch.procedures;
      prefetch.medicationStatements = null;
      return hookRequest(c, { prefetch: prefetch as never }) as Json;
    }
    case 'sign-no-prefetch':
      return hookRequest(c, { prefetch: 'none' }) as Json;
    case 'sign-fhir':
      return hookRequest(c, { prefetch: 'none', fhirServer: fhirUrl }) as Json;
  }
}

function pathFor(doc: Json): string {
  return isObject(doc) && doc.hook === 'order-select' ? ORDER_SELECT : ORDER_SIGN;
}

// ---------------------------------------------------------------------------------------------
// Sending and checking

interface Reply {
  status: number;
  text: string;
  contentType: string;
}

/** Statuses seen in the current property, reported as a test diagnostic (how many runs reached the engine). */
const tally = new Map<number, number>();

function report(t: TestContext): void {
  t.diagnostic(`statuses: ${[...tally].sort(([a], [b]) => a - b).map(([status, n]) => `${status}×${n}`).join(' ')}${SEED === undefined ? '' : ` (seed ${SEED})`}`);
  tally.clear();
}

async function send(url: string, init: RequestInit): Promise<Reply> {
  const res = await fetch(url, { ...init, redirect: 'manual' });
  const text = await res.text();
  tally.set(res.status, (tally.get(res.status) ?? 0) + 1);
  return { status: res.status, text, contentType: res.headers.get('content-type') ?? '' };
}

function checkReply(reply: Reply, what: string, method = 'POST'): void {
  const show = (): string => `${what}\n→ ${reply.status} ${reply.text.slice(0, 600)}`;
  assert.ok(reply.status < 500, `5xx: ${show()}`);
  if (reply.status >= 400 && method !== 'HEAD') {
    let body: unknown;
    try {
      body = JSON.parse(reply.text);
    } catch {
      assert.fail(`4xx body is not JSON: ${show()}`);
    }
    assert.ok(isOperationOutcomeBody(body), `4xx body is not an OperationOutcome: ${show()}`);
    assert.match(reply.contentType, /json/, show());
  }
  if (reply.status === 200 && method === 'POST' && what.includes('/cds-services/gene-therapy')) {
    const body = JSON.parse(reply.text) as { cards?: unknown };
    assert.ok(Array.isArray(body.cards), `200 without cards: ${show()}`);
  }
}

function describeDoc(doc: Json): string {
  const text = JSON.stringify(doc) ?? 'undefined';
  return text.length > 1500 ? `${text.slice(0, 1500)}… (${text.length} chars)` : text;
}

async function assertAlive(url: string): Promise<void> {
  const res = await fetch(`${url}/health`);
  assert.equal(res.status, 200);
  await res.text();
}

function assertNoPollution(): void {
  const probe: Record<string, unknown> = {};
  assert.equal(probe.polluted, undefined, 'Object.prototype was polluted');
  assert.deepEqual(Object.keys(Object.prototype), []);
  assert.equal(([] as unknown as Record<string, unknown>).polluted, undefined, 'Array.prototype was polluted');
}

/** Log lines at error level or above, and the engine's "policy evaluation failed" lines, since `from`. */
function errorLogs(app: TestApp, from: number): Array<Record<string, unknown>> {
  return logEntries(app.logs.lines.slice(from)).filter((e) => Number(e.level) >= 50);
}

// ---------------------------------------------------------------------------------------------

before(async () => {
  key = await makeKey('ES384', 'fuzz-1');
  // A FHIR server that answers whatever the current run put in fhirReplies.
  fhirServer = createServer((req, res) => {
    req.resume();
    const segment = /^\/fhir\/([A-Za-z]+)(\/|\?|$)/.exec(req.url ?? '')?.[1] ?? '';
    const read = /^\/fhir\/[A-Za-z]+\/[^?]+/.test(req.url ?? '');
    const reply = fhirReplies[read ? `${segment}/read` : segment] ?? fhirReplies[segment];
    if (reply === undefined) {
      res.writeHead(404, { 'content-type': 'application/fhir+json' }).end('{"resourceType":"OperationOutcome","issue":[]}');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/fhir+json' }).end(JSON.stringify(reply));
  });
  await new Promise<void>((resolve) => fhirServer.listen(0, '127.0.0.1', resolve));
  fhirUrl = `http://127.0.0.1:${(fhirServer.address() as AddressInfo).port}/fhir`;
  closers.push(
    () =>
      new Promise<void>((resolve) => {
        fhirServer.closeAllConnections();
        fhirServer.close(() => resolve());
      }),
  );

  const limits = { maxBodyBytes: 512 * 1024, rateLimitPerMinute: 1_000_000, requestTimeoutMs: 4000, fhirDeadlineMs: 1500 };
  open = testApp(limits);
  authed = testApp(limits, { clients: [inlineClient(ISS_A, [key], [`${fhirUrl}/`])] });
  const a = await listen(open.app);
  const b = await listen(authed.app);
  openUrl = a.url;
  authedUrl = b.url;
  closers.push(a.close, b.close);
});

after(async () => {
  for (const close of closers) await close();
});

describe('fuzzing the whole service', () => {
  test('mutated hook requests (wrong types at every path of context and prefetch, hostile keys and values): no 5xx, 4xx are OperationOutcomes', async (t) => {
    const from = open.logs.lines.length;
    const bases: BaseName[] = ['sign-full', 'select-full', 'sign-partial', 'sign-no-prefetch'];
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...bases), fc.array(mutation, { minLength: 1, maxLength: 4 }), async (name, mutations) => {
        const doc = base(name);
        for (const m of mutations) apply(doc, m);
        const reply = await send(`${openUrl}${pathFor(doc)}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(doc) });
        checkReply(reply, `${name} ${JSON.stringify(mutations).slice(0, 400)}\n${describeDoc(doc)}`);
      }),
      runs(2000),
    );
    report(t);
    assertNoPollution();
    await assertAlive(openUrl);
    assert.deepEqual(errorLogs(open, from), [], 'errors were logged while answering fuzzed requests');
  });

  test('mutations aimed at prefetch resources: wrong types for known FHIR elements on every resource', async (t) => {
    const from = open.logs.lines.length;
    // Paths into prefetch only, so most runs get past request validation and reach the engine and cards.
    const target = fc.record({
      key: fc.constantFrom('patient', 'coverage', 'encounter', 'userPractitionerRole', 'conditions', 'observations', 'labObservations', 'serviceRequests', 'medicationRequests'),
      at: fc.nat(),
      field: fc.constantFrom(...FHIR_FIELDS),
      value: hostileValue,
      replace: fc.boolean(),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(target, { minLength: 1, maxLength: 5 }), fc.boolean(), async (targets, orders) => {
        const doc = base('sign-full');
        for (const target of targets) {
          const root = orders ? getAt(doc, ['context', 'draftOrders']) : getAt(doc, ['prefetch', target.key]);
          if (root === undefined) continue;
          const { all, objects } = paths(root);
          if (target.replace && all.length > 0) {
            const p = all[target.at % all.length]!;
            const parent = getAt(root, p.slice(0, -1));
            const last = p[p.length - 1]!;
            if (Array.isArray(parent) && typeof last === 'number') parent[last] = structuredClone(target.value);
            else if (isObject(parent) && typeof last === 'string') setOwn(parent, last, structuredClone(target.value));
          } else {
            const obj = getAt(root, objects[target.at % objects.length]!);
            if (isObject(obj)) setOwn(obj, target.field, structuredClone(target.value));
          }
        }
        const reply = await send(`${openUrl}${ORDER_SIGN}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(doc) });
        checkReply(reply, `prefetch ${JSON.stringify(targets).slice(0, 400)}\n${describeDoc(doc)}`);
      }),
      runs(2000),
    );
    report(t);
    assertNoPollution();
    await assertAlive(openUrl);
    assert.deepEqual(errorLogs(open, from), [], 'errors were logged while answering fuzzed requests');
  });

  test('the examples the issue names: Condition.code = 5, Observation.valueQuantity = "x", Bundle.entry = {}', async (t) => {
    const cases: Array<[string, (doc: Json) => void]> = [
      ['Condition.code = 5', (doc) => setOwn(getAt(doc, ['prefetch', 'conditions', 'entry', 0, 'resource']) as { [k: string]: Json }, 'code', 5)],
      ['Observation.valueQuantity = "x"', (doc) => {
        for (const e of getAt(doc, ['prefetch', 'observations', 'entry']) as Json[]) setOwn((e as { resource: { [k: string]: Json } }).resource, 'valueQuantity', 'x');
      }],
      ['Bundle.entry = {} (every prefetch Bundle)', (doc) => {
        for (const v of Object.values(getAt(doc, ['prefetch']) as { [k: string]: Json })) if (isObject(v) && v.resourceType === 'Bundle') setOwn(v, 'entry', {});
      }],
      ['draftOrders.entry[0].resource.medicationCodeableConcept = []', (doc) => setOwn(getAt(doc, ['context', 'draftOrders', 'entry', 0, 'resource']) as { [k: string]: Json }, 'medicationCodeableConcept', [])],
      ['Coverage.payor = "Organization/x"', (doc) => setOwn(getAt(doc, ['prefetch', 'coverage', 'entry', 0, 'resource']) as { [k: string]: Json }, 'payor', 'Organization/x')],
      ['Patient.birthDate = {}', (doc) => setOwn(getAt(doc, ['prefetch', 'patient']) as { [k: string]: Json }, 'birthDate', {})],
      ['every Observation.component = 7', (doc) => {
        for (const e of getAt(doc, ['prefetch', 'observations', 'entry']) as Json[]) setOwn((e as { resource: { [k: string]: Json } }).resource, 'component', 7);
      }],
      // Found by the fuzzer: a name that is an object which cannot become a string (no callable
      // toString/valueOf) once threw while the engine put it into a sentence.
      ['every Observation.method.text and Condition.code.text an object without toString', (doc) => {
        const unprintable = JSON.parse('{"toString":"x","valueOf":1}') as Json;
        for (const key of ['observations', 'conditions']) {
          for (const e of getAt(doc, ['prefetch', key, 'entry']) as Json[]) {
            const resource = (e as { resource: { [k: string]: Json } }).resource;
            if (key === 'observations') setOwn(resource, 'method', { text: unprintable });
            else if (isObject(resource.code ?? null)) setOwn(resource.code as { [k: string]: Json }, 'text', unprintable);
          }
        }
      }],
      ['every coding = "x"', (doc) => {
        const walk = (v: Json): void => {
          if (Array.isArray(v)) v.forEach(walk);
          else if (isObject(v)) for (const k of Object.keys(v)) (k === 'coding' ? setOwn(v, k, 'x') : walk(v[k]!));
        };
        walk(getAt(doc, ['prefetch']) ?? null);
      }],
    ];
    const from = open.logs.lines.length;
    for (const [name, mutate] of cases) {
      const doc = base('sign-full');
      mutate(doc);
      const reply = await send(`${openUrl}${ORDER_SIGN}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(doc) });
      checkReply(reply, name);
    }
    report(t);
    assert.deepEqual(errorLogs(open, from), []);
  });

  test('raw bodies: truncated JSON, random text, wrong content types and charsets, bogus encodings, odd methods and paths', async (t) => {
    const valid = JSON.stringify(base('sign-full'));
    const body = fc.oneof(
      fc.nat({ max: valid.length }).map((n) => valid.slice(0, n)),
      fc.nat({ max: valid.length }).map((n) => valid.slice(n)),
      fc.string({ maxLength: 200, unit: 'binary' }),
      fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)),
      fc.constantFrom('', 'null', '[]', '{}', '"x"', '1', 'true', '{"hook":', '{"__proto__":{"polluted":1}}', '\ufeff{}', '{"a":1}{"b":2}', `{"x":"${'\\u0000'.repeat(50)}"}`),
      fc.tuple(fc.integer({ min: 60, max: 3000 }), fc.boolean()).map(([d, arr]) => (arr ? '['.repeat(d) + ']'.repeat(d) : '{"a":'.repeat(d) + '1' + '}'.repeat(d))),
    );
    const contentType = fc.constantFrom(
      'application/json',
      'application/fhir+json',
      'application/json; charset=utf-8',
      'application/json; charset=UTF-8',
      'application/json; charset=utf-16',
      'application/json; charset=latin1',
      'application/json; charset=bogus',
      'application/json;;;',
      'APPLICATION/JSON',
      'application/*+json',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=xyz',
      'text/plain',
      'text/html',
      '*/*',
      'json',
      '',
    );
    const encoding = fc.constantFrom(undefined, 'gzip', 'deflate', 'br', 'identity', 'compress', 'x-unknown');
    const method = fc.constantFrom('POST', 'POST', 'POST', 'GET', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS');
    const path = fc.constantFrom(
      ORDER_SIGN,
      ORDER_SELECT,
      '/cds-services',
      '/cds-services/',
      `${ORDER_SIGN}/feedback`,
      '/cds-services/unknown',
      '/cds-services/__proto__',
      '/cds-services/constructor',
      `/cds-services/${'a'.repeat(4000)}`,
      '/cds-services/%2e%2e',
      '/cds-services/..%2f..%2fetc',
      `${ORDER_SIGN}?x=%E0%A4%A&y[__proto__][a]=1`,
      '//cds-services',
      '/policies/jefferson-dr005d-zolgensma',
      '/policies/__proto__',
      '/policies/constructor',
      '/health',
      '/',
    );
    const from = open.logs.lines.length;
    await fc.assert(
      fc.asyncProperty(body, contentType, encoding, method, path, async (b, type, enc, m, p) => {
        const headers: Record<string, string> = {};
        if (type !== '') headers['content-type'] = type;
        if (enc !== undefined) headers['content-encoding'] = enc;
        const init: RequestInit = { method: m, headers, ...(m === 'GET' || m === 'HEAD' ? {} : { body: b }) };
        const reply = await send(`${openUrl}${p}`, init);
        checkReply(reply, `${m} ${p.slice(0, 80)} type=${type} enc=${enc ?? '-'} body=${JSON.stringify(b.slice(0, 300))}`, m);
      }),
      runs(1200),
    );
    report(t);
    assertNoPollution();
    await assertAlive(openUrl);
    assert.deepEqual(errorLogs(open, from), []);
  });

  test('hostile Authorization headers against the authenticated service: always a bare 401 OperationOutcome, never 5xx', async (t) => {
    const headerObj = fc.record(
      {
        alg: fc.constantFrom('ES384', 'RS384', 'none', 'None', 'HS256', 'HS384', 'ES256', '', 'EdDSA', 'RSA-OAEP'),
        typ: fc.constantFrom('JWT', 'jwt', 'at+jwt', '', 'JWS'),
        kid: fc.oneof(fc.constant('fuzz-1'), fc.string({ maxLength: 8 }), fc.integer()),
        jku: fc.oneof(fc.constant(`${fhirUrl}/jwks.json`), fc.constant('http://127.0.0.1:1/x'), fc.constant('file:///etc/passwd'), fc.integer()),
        jwk: fc.constant(key.publicJwk as unknown as Json),
        x5u: fc.constant('http://127.0.0.1:1/cert'),
        crit: fc.array(fc.string({ maxLength: 4 }), { maxLength: 2 }),
        b64: fc.boolean(),
      },
      { requiredKeys: [] },
    );
    const payloadObj = fc.record(
      {
        iss: fc.oneof(fc.constant(ISS_A), fc.string({ maxLength: 10 }), fc.integer(), fc.constant(null)),
        aud: fc.oneof(fc.constant(`http://crd.test${ORDER_SIGN}`), fc.array(fc.string({ maxLength: 5 }), { maxLength: 3 }), fc.integer()),
        exp: fc.oneof(fc.integer(), fc.double(), fc.string({ maxLength: 4 }), fc.constant(1e308)),
        iat: fc.oneof(fc.integer(), fc.constant(Math.floor(Date.now() / 1000)), fc.constant(-1e308)),
        jti: fc.oneof(fc.string({ maxLength: 10 }), fc.integer(), fc.constant(null), fc.constant('x'.repeat(300))),
      },
      { requiredKeys: [] },
    );
    const authorization = fc.oneof(
      fc.tuple(headerObj, payloadObj, fc.base64String({ maxLength: 120 })).map(([h, p, s]) => `Bearer ${rawToken(h as Record<string, unknown>, p, s.replace(/[+/=]/g, ''))}`),
      fc.string({ maxLength: 80 }).map((s) => s.replace(/[\r\n\0]/g, '')),
      fc.constantFrom('Bearer', 'Bearer ', 'Bearer a.b.c', 'bearer    ..', 'Basic dXNlcjpwYXNz', 'Bearer ...........', `Bearer ${'A'.repeat(9000)}`, `Bearer e${'.'.repeat(5000)}`, 'Bearer eyJ.eyJ.', 'DPoP x'),
    );
    const paths = fc.constantFrom('/cds-services', ORDER_SIGN, ORDER_SELECT, `${ORDER_SIGN}/feedback`, '/cds-services/unknown');
    await fc.assert(
      fc.asyncProperty(authorization, paths, fc.constantFrom('GET', 'POST'), async (auth, p, m) => {
        const reply = await send(`${authedUrl}${p}`, {
          method: m,
          headers: { authorization: auth, 'content-type': 'application/json' },
          ...(m === 'POST' ? { body: '{}' } : {}),
        });
        checkReply(reply, `${m} ${p} Authorization=${auth.slice(0, 300)}`, m);
        assert.equal(reply.status, 401, `accepted: ${auth.slice(0, 300)}`);
      }),
      runs(800),
    );
    report(t);
    assertNoPollution();
    await assertAlive(authedUrl);
    assert.ok(!/eyJ[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]*\./.test(authed.logs.text), 'a JWT reached the log');
  });

  test('authenticated clients sending mutated bodies, falling back to a FHIR server that answers mutated resources', async (t) => {
    const from = authed.logs.lines.length;
    const c = zolgensmaCase();
    const prefetch = fullPrefetch(c) as unknown as Record<string, Json>;
    const byType: Array<[string, string]> = [
      ['Patient/read', 'patient'],
      ['Coverage', 'coverage'],
      ['Encounter/read', 'encounter'],
      ['PractitionerRole/read', 'userPractitionerRole'],
      ['PractitionerRole', 'userPractitionerRoles'],
      ['Condition', 'conditions'],
      ['Observation', 'observations'],
      ['MedicationRequest', 'medicationRequests'],
      ['MedicationAdministration', 'medicationAdministrations'],
      ['MedicationStatement', 'medicationStatements'],
      ['Procedure', 'procedures'],
      ['ServiceRequest', 'serviceRequests'],
    ];
    const organization = c.payer as unknown as Json;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.nat({ max: byType.length - 1 }), mutation), { minLength: 1, maxLength: 4 }),
        fc.array(mutation, { maxLength: 2 }),
        async (serverMutations, bodyMutations) => {
          const replies: Record<string, Json> = { 'Organization/read': structuredClone(organization) };
          for (const [type, keyName] of byType) replies[type] = structuredClone(prefetch[keyName] ?? null);
          for (const [i, m] of serverMutations) {
            const [type] = byType[i]!;
            apply(replies[type]!, m);
          }
          fhirReplies = replies;
          const doc = base('sign-fhir');
          for (const m of bodyMutations) apply(doc, m);
          const reply = await send(`${authedUrl}${ORDER_SIGN}`, {
            method: 'POST',
            headers: { authorization: bearer(await tokenFor(key, ISS_A, ORDER_SIGN)), 'content-type': 'application/json' },
            body: JSON.stringify(doc),
          });
          checkReply(reply, `server ${JSON.stringify(serverMutations).slice(0, 400)} body ${JSON.stringify(bodyMutations).slice(0, 300)}\n${describeDoc(replies as Json).slice(0, 800)}`);
        },
      ),
      runs(500),
    );
    report(t);
    assertNoPollution();
    await assertAlive(authedUrl);
    assert.deepEqual(errorLogs(authed, from), []);
  });
});
