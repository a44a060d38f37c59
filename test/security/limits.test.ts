import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import express from 'express';
import request from 'supertest';
import fc from 'fast-check';
import {
  bodyErrorHandler,
  createDraftOrdersLimit,
  createJsonDepthLimit,
  draftOrderCount,
  jsonDepthExceeds,
  requestTimeout,
} from '../../server/security/limits.ts';

function nested(depth: number): unknown {
  let v: unknown = 1;
  for (let i = 0; i < depth; i++) v = i % 2 === 0 ? [v] : { a: v };
  return v;
}

/** Reference definition, recursive: fine for the small values fast-check generates. */
function depthOf(v: unknown): number {
  if (typeof v !== 'object' || v === null) return 0;
  const children = Array.isArray(v) ? v : Object.values(v);
  return 1 + children.reduce<number>((m, c) => Math.max(m, depthOf(c)), 0);
}

describe('jsonDepthExceeds', () => {
  it('counts containers', () => {
    assert.equal(jsonDepthExceeds(1, 0), false);
    assert.equal(jsonDepthExceeds({}, 0), true);
    assert.equal(jsonDepthExceeds({}, 1), false);
    assert.equal(jsonDepthExceeds({ a: [1, { b: 2 }] }, 3), false);
    assert.equal(jsonDepthExceeds({ a: [1, { b: 2 }] }, 2), true);
  });
  it('handles a million levels without recursion', () => {
    const deep = JSON.parse('['.repeat(1_000_000) + ']'.repeat(1_000_000)) as unknown;
    assert.equal(jsonDepthExceeds(deep, 64), true);
    assert.equal(jsonDepthExceeds(nested(64), 64), false);
    assert.equal(jsonDepthExceeds(nested(65), 64), true);
  });
  it('agrees with the recursive definition', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 8 }), fc.integer({ min: 0, max: 10 }), (v, max) => jsonDepthExceeds(v, max) === depthOf(v) > max),
      { numRuns: 2000 },
    );
  });
});

function limitsApp() {
  const a = express();
  a.use(express.json({ limit: 2048 }));
  a.use(createJsonDepthLimit(8));
  a.use(createDraftOrdersLimit(2));
  a.post('/', (_req, res) => {
    res.json({ ok: true });
  });
  a.use(bodyErrorHandler);
  return a;
}

describe('request limits middleware', () => {
  it('rejects too-deep bodies with a 400 OperationOutcome', async () => {
    const res = await request(limitsApp()).post('/').send(nested(9) as object);
    assert.equal(res.status, 400);
    assert.equal(res.body.resourceType, 'OperationOutcome');
    assert.equal(res.body.issue[0].code, 'too-costly');
    await request(limitsApp()).post('/').send(nested(8) as object).expect(200);
  });
  it('rejects too many draft orders', async () => {
    const body = (n: number) => ({ context: { draftOrders: { resourceType: 'Bundle', entry: Array.from({ length: n }, () => ({})) } } });
    assert.equal(draftOrderCount(body(3)), 3);
    assert.equal(draftOrderCount({ context: 'x' }), 0);
    const res = await request(limitsApp()).post('/').send(body(3));
    assert.equal(res.status, 400);
    assert.deepEqual(res.body.issue[0].expression, ['context.draftOrders']);
    await request(limitsApp()).post('/').send(body(2)).expect(200);
  });
  it('turns malformed and oversized bodies into OperationOutcomes', async () => {
    const bad = await request(limitsApp()).post('/').set('content-type', 'application/json').send('{"a":');
    assert.equal(bad.status, 400);
    assert.equal(bad.body.issue[0].code, 'structure');
    const big = await request(limitsApp()).post('/').send({ a: 'x'.repeat(5000) });
    assert.equal(big.status, 413);
    assert.equal(big.body.resourceType, 'OperationOutcome');
    const charset = await request(limitsApp()).post('/').set('content-type', 'application/json; charset=koi8-r').send('{}');
    assert.equal(charset.status, 415);
  });
});

describe('requestTimeout', () => {
  function slowApp(ms: number, status?: number, body?: () => unknown) {
    const a = express();
    a.use(requestTimeout(ms, status, body));
    a.get('/slow', (_req, res) => {
      setTimeout(() => {
        if (!res.headersSent) res.json({ late: true });
      }, ms + 100);
    });
    a.get('/fast', (_req, res) => {
      res.json({ fast: true });
    });
    return a;
  }
  it('answers 408 OperationOutcome when the handler is too slow', async () => {
    const res = await request(slowApp(50)).get('/slow');
    assert.equal(res.status, 408);
    assert.equal(res.body.issue[0].code, 'timeout');
  });
  it('can answer with a custom status and body (e.g. empty cards)', async () => {
    const res = await request(slowApp(50, 200, () => ({ cards: [], systemActions: [] }))).get('/slow');
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { cards: [], systemActions: [] });
  });
  it('does not interfere with fast handlers', async () => {
    await request(slowApp(50)).get('/fast').expect(200, { fast: true });
  });
  it('refuses 5xx statuses', () => {
    assert.throws(() => requestTimeout(100, 503), /2xx-4xx/);
  });
});
