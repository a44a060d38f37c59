import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import express from 'express';
import request from 'supertest';
import { createCors } from '../../server/security/cors.ts';
import { createClientAuthenticator } from '../../server/security/client-auth.ts';
import { BASE_URL, captureLogger, makeKey } from './helpers.ts';

const ALLOWED = 'https://sandbox.cds-hooks.org';

/** CORS mounted before authentication, as in the service. */
async function app(origins: string[]) {
  const key = await makeKey('ES384', 'k');
  const a = express();
  a.use(createCors(origins));
  a.use('/cds-services', createClientAuthenticator({
    clients: [{ iss: 'https://ehr.example.org', jwks: { keys: [key.publicJwk] }, fhirServers: [] }],
    baseUrl: BASE_URL,
    logger: captureLogger().logger,
  }));
  a.post('/cds-services/:id', (_req, res) => {
    res.json({ cards: [] });
  });
  a.post('/open', (_req, res) => {
    res.json({ ok: true });
  });
  return a;
}

function preflight(a: express.Express, origin: string) {
  return request(a)
    .options('/cds-services/crd-order-sign')
    .set('Origin', origin)
    .set('Access-Control-Request-Method', 'POST')
    .set('Access-Control-Request-Headers', 'authorization, content-type');
}

describe('CORS', () => {
  it('answers a preflight from an allowed origin with 204 and no JWT', async () => {
    const res = await preflight(await app([ALLOWED]), ALLOWED);
    assert.equal(res.status, 204);
    assert.equal(res.headers['access-control-allow-origin'], ALLOWED);
    assert.equal(res.headers['access-control-allow-headers'], 'Authorization, Content-Type');
    assert.equal(res.headers['access-control-allow-methods'], 'GET, POST, OPTIONS');
    assert.match(res.headers.vary ?? '', /Origin/);
    assert.equal(res.text, '');
  });

  it('gives a disallowed origin a 204 preflight without any allow headers', async () => {
    const res = await preflight(await app([ALLOWED]), 'https://evil.example.com');
    assert.equal(res.status, 204);
    assert.equal(res.headers['access-control-allow-origin'], undefined);
    assert.equal(res.headers['access-control-allow-headers'], undefined);
    assert.equal(res.headers['access-control-allow-methods'], undefined);
    assert.match(res.headers.vary ?? '', /Origin/);
  });

  it('puts Access-Control-Allow-Origin on POST responses, including the 401', async () => {
    const a = await app([ALLOWED]);
    const denied = await request(a).post('/cds-services/crd-order-sign').set('Origin', ALLOWED).send({});
    assert.equal(denied.status, 401);
    assert.equal(denied.headers['access-control-allow-origin'], ALLOWED);
    const ok = await request(a).post('/open').set('Origin', ALLOWED).send({});
    assert.equal(ok.status, 200);
    assert.equal(ok.headers['access-control-allow-origin'], ALLOWED);
    assert.match(ok.headers.vary ?? '', /Origin/);
  });

  it('adds no CORS headers for a disallowed origin or without Origin', async () => {
    const a = await app([ALLOWED]);
    const evil = await request(a).post('/open').set('Origin', 'https://evil.example.com').send({});
    assert.equal(evil.status, 200);
    assert.equal(evil.headers['access-control-allow-origin'], undefined);
    const none = await request(a).post('/open').send({});
    assert.equal(none.headers['access-control-allow-origin'], undefined);
  });

  it('matches configured origins after normalisation', async () => {
    const res = await preflight(await app(['HTTPS://Sandbox.CDS-Hooks.org:443/']), ALLOWED);
    assert.equal(res.headers['access-control-allow-origin'], ALLOWED);
  });

  it('allows any origin only when "*" is configured', async () => {
    const res = await preflight(await app(['*']), 'https://anything.example');
    assert.equal(res.headers['access-control-allow-origin'], '*');
    const none = await preflight(await app([]), 'https://anything.example');
    assert.equal(none.headers['access-control-allow-origin'], undefined);
  });

  it('answers a non-preflight OPTIONS with 204 and Allow', async () => {
    const res = await request(await app([ALLOWED])).options('/cds-services');
    assert.equal(res.status, 204);
    assert.equal(res.headers.allow, 'GET, POST, OPTIONS');
  });

  it('rejects an invalid configured origin at startup', () => {
    assert.throws(() => createCors(['not an origin']));
  });
});
