import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import express from 'express';
import request from 'supertest';
import { createRateLimiter } from '../../server/security/rate-limit.ts';

function app(perMinute: number, now: () => number, iss?: string, maxKeys?: number) {
  const a = express();
  a.use((req, res, next) => {
    const header = req.headers['x-test-iss'];
    if (typeof header === 'string') res.locals.clientIss = header;
    else if (iss) res.locals.clientIss = iss;
    next();
  });
  a.use(createRateLimiter({ perMinute, now, ...(maxKeys ? { maxKeys } : {}) }));
  a.get('/', (_req, res) => {
    res.json({ ok: true });
  });
  return a;
}

describe('rate limiter', () => {
  it('returns 429 JSON OperationOutcome with Retry-After once the bucket is empty', async () => {
    let clock = 1_000_000;
    const a = app(3, () => clock, 'https://ehr.example.org');
    for (let i = 0; i < 3; i++) await request(a).get('/').expect(200);
    const res = await request(a).get('/');
    assert.equal(res.status, 429);
    assert.match(res.headers['content-type'] ?? '', /json/);
    assert.equal(res.headers['retry-after'], '20');
    assert.equal(res.body.resourceType, 'OperationOutcome');
    assert.equal(res.body.issue[0].code, 'throttled');
    clock += 20_000;
    await request(a).get('/').expect(200);
    await request(a).get('/').expect(429);
  });

  it('keeps separate buckets per client iss', async () => {
    const a = app(1, () => 0);
    await request(a).get('/').set('x-test-iss', 'a').expect(200);
    await request(a).get('/').set('x-test-iss', 'a').expect(429);
    await request(a).get('/').set('x-test-iss', 'b').expect(200);
  });

  it('falls back to the remote address when authentication is off', async () => {
    const a = app(1, () => 0);
    await request(a).get('/').expect(200);
    await request(a).get('/').expect(429);
  });

  it('bounds memory by forgetting the least recently seen clients', async () => {
    const a = app(1, () => 0, undefined, 2);
    await request(a).get('/').set('x-test-iss', 'a').expect(200);
    await request(a).get('/').set('x-test-iss', 'b').expect(200);
    await request(a).get('/').set('x-test-iss', 'c').expect(200);
    // "a" was evicted, so it starts with a full bucket again; "c" is still tracked.
    await request(a).get('/').set('x-test-iss', 'a').expect(200);
    await request(a).get('/').set('x-test-iss', 'c').expect(429);
  });
});
