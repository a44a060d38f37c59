import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import express from 'express';
import request from 'supertest';
import fc from 'fast-check';
import { createClientAuthenticator } from '../../server/security/client-auth.ts';
import { createCors } from '../../server/security/cors.ts';
import { bodyErrorHandler, createDraftOrdersLimit, createJsonDepthLimit, requestTimeout } from '../../server/security/limits.ts';
import { createRateLimiter } from '../../server/security/rate-limit.ts';
import { BASE_URL, captureLogger, makeKey, rawToken, signToken, type CapturedLog, type TestKey } from './helpers.ts';

const ISS = 'https://ehr.example.org';
let key: TestKey;
let log: CapturedLog;
let app: express.Express;

/** The security middlewares in the order the service mounts them (see server/security/README.md). */
function buildApp(): express.Express {
  const a = express();
  a.use(createCors(['https://sandbox.cds-hooks.org']));
  a.use('/cds-services', createClientAuthenticator({
    clients: [{ iss: ISS, jwks: { keys: [key.publicJwk] }, jku: ['http://127.0.0.1:1/jwks.json'], fhirServers: [] }],
    baseUrl: BASE_URL,
    logger: log.logger,
  }));
  a.use(createRateLimiter({ perMinute: 100_000 }));
  a.use(requestTimeout(2000));
  a.use(express.json({ limit: 4096 }));
  a.use(bodyErrorHandler);
  a.use(createJsonDepthLimit(16));
  a.use(createDraftOrdersLimit(5));
  a.post('/cds-services/:id', (_req, res) => {
    res.json({ cards: [] });
  });
  return a;
}

before(async () => {
  key = await makeKey('ES384', 'k1');
  log = captureLogger();
  app = buildApp();
});

function assertFhirishClientError(status: number, body: unknown, text: string): void {
  assert.ok(status < 500, `5xx: ${status} ${text}`);
  if (status >= 400) {
    assert.equal((body as { resourceType?: unknown }).resourceType, 'OperationOutcome', text);
  }
}

describe('security middleware stack', () => {
  it('lets a valid signed request through in the documented order', async () => {
    const token = await signToken(key);
    await request(app).post('/cds-services/crd-order-sign').set('Authorization', `Bearer ${token}`).send({ hook: 'order-sign' }).expect(200);
  });

  it('never answers 5xx to hostile Authorization headers and bodies; 4xx are OperationOutcomes; no token is logged', async () => {
    const jsonObject = fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 5 });
    const headerObj = fc.record(
      {
        alg: fc.constantFrom('ES384', 'RS384', 'none', 'HS256', 'ES256', '', 'EdDSA'),
        typ: fc.constantFrom('JWT', 'jwt', 'at+jwt', ''),
        kid: fc.oneof(fc.constant('k1'), fc.string({ maxLength: 5 })),
        jku: fc.oneof(fc.constant('http://127.0.0.1:1/jwks.json'), fc.constant('http://127.0.0.1:2/x'), fc.integer()),
        crit: fc.array(fc.string({ maxLength: 4 }), { maxLength: 2 }),
        b64: fc.boolean(),
      },
      { requiredKeys: [] },
    );
    const payloadObj = fc.record(
      {
        iss: fc.oneof(fc.constant(ISS), fc.string({ maxLength: 10 }), fc.integer()),
        aud: fc.oneof(fc.constant(`${BASE_URL}/cds-services/x`), fc.array(fc.string({ maxLength: 5 }), { maxLength: 3 }), fc.integer()),
        exp: fc.oneof(fc.integer(), fc.double(), fc.string({ maxLength: 4 })),
        iat: fc.oneof(fc.integer(), fc.constant(Math.floor(Date.now() / 1000))),
        jti: fc.oneof(fc.string({ maxLength: 10 }), fc.integer(), fc.constant(null)),
      },
      { requiredKeys: [] },
    );
    const crafted = fc
      .tuple(headerObj, payloadObj, fc.base64String({ maxLength: 40 }))
      .map(([h, p, s]) => `Bearer ${rawToken(h, p, s.replace(/[+/=]/g, ''))}`);
    const authorization = fc.oneof(
      crafted,
      fc.string({ maxLength: 60 }).map((s) => s.replace(/[\r\n\0]/g, '')),
      fc.constant('Bearer'),
      fc.constant('Bearer a.b.c'),
      fc.constant('bearer    ..'),
      fc.constant(`Bearer ${'A'.repeat(9000)}`),
    );
    const body = fc.oneof(
      jsonObject.map((o) => JSON.stringify(o)),
      fc.string({ maxLength: 100 }),
      fc.constant('['.repeat(40) + ']'.repeat(40)),
      fc.constant(`{"context":{"draftOrders":{"entry":[${Array(9).fill('{}').join(',')}]}}}`),
    );
    await fc.assert(
      fc.asyncProperty(authorization, body, fc.constantFrom('/cds-services', '/cds-services/crd-order-sign', '/cds-services/x/feedback'), async (auth, b, path) => {
        const res = await request(app).post(path).set('Authorization', auth).set('Content-Type', 'application/json').send(b);
        assertFhirishClientError(res.status, res.body, res.text);
      }),
      { numRuns: 300 },
    );
    // Valid tokens with hostile bodies get past authentication and are still answered 4xx, never 5xx.
    await fc.assert(
      fc.asyncProperty(body, async (b) => {
        const res = await request(app)
          .post('/cds-services/crd-order-sign')
          .set('Authorization', `Bearer ${await signToken(key)}`)
          .set('Content-Type', 'application/json')
          .send(b);
        assertFhirishClientError(res.status, res.body, res.text);
      }),
      { numRuns: 200 },
    );
    const text = log.lines.join('');
    assert.ok(!/eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}/.test(text), 'a JWT reached the log');
  });
});
