import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { describe, test } from 'node:test';
import express from 'express';
import request from 'supertest';
import { HttpError } from '../../server/http/operation-outcome.ts';
import { clientErrorHandler } from '../../server/security/limits.ts';
import { ORDER_SIGN, testApp } from '../support/app.ts';
import { hookRequest, zolgensmaCase } from '../support/fixtures.ts';
import { isOperationOutcomeBody, listen } from './helpers.ts';

/**
 * 5xx found by the fuzzer outside the FHIR-reading code: request bodies that do not decompress, and
 * route parameters that are not valid percent-encoding.
 */

describe('compressed bodies through the app', () => {
  const { app, logs } = testApp();

  for (const [encoding, body] of [
    ['gzip', Buffer.from('not gzip at all')],
    ['deflate', Buffer.from('xx')],
    ['br', Buffer.alloc(0)],
    ['gzip', gzipSync(Buffer.from('{"hook":')).subarray(0, 10)],
  ] as const) {
    test(`Content-Encoding: ${encoding} with a body that does not inflate → 400 OperationOutcome`, async () => {
      const res = await request(app).post(ORDER_SIGN).set('Content-Type', 'application/json').set('Content-Encoding', encoding).send(body);
      assert.equal(res.status, 400, res.text);
      assert.ok(isOperationOutcomeBody(res.body));
    });
  }

  test('a valid gzip body is read and answered', async () => {
    // fetch, because supertest re-encodes a Buffer body sent as JSON.
    const server = await listen(app);
    try {
      const res = await fetch(`${server.url}${ORDER_SIGN}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
        body: gzipSync(JSON.stringify(hookRequest(zolgensmaCase()))),
      });
      assert.equal(res.status, 200, await res.text());
    } finally {
      await server.close();
    }
  });

  test('an unknown encoding → 415 OperationOutcome', async () => {
    const res = await request(app).post(ORDER_SIGN).set('Content-Type', 'application/json').set('Content-Encoding', 'compress').send('{}');
    assert.equal(res.status, 415);
    assert.ok(isOperationOutcomeBody(res.body));
    assert.ok(!logs.text.includes('unhandled error'));
  });
});

describe('clientErrorHandler', () => {
  function mini() {
    const app = express();
    app.get('/things/:id', (req, res) => {
      res.json({ id: req.params.id });
    });
    app.get('/own', () => {
      throw new HttpError(409, { code: 'conflict', diagnostics: 'ours' });
    });
    app.get('/bug', () => {
      throw new TypeError('a bug');
    });
    app.use(clientErrorHandler);
    app.use((err: unknown, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
      res.status(err instanceof HttpError ? err.status : 500).json({ handledBy: 'final' });
    });
    return app;
  }

  test('a route parameter that is not valid percent-encoding → 400 OperationOutcome', async () => {
    const res = await request(mini()).get('/things/%E0%A4%A');
    assert.equal(res.status, 400);
    assert.ok(isOperationOutcomeBody(res.body));
  });

  test('the service\'s own HttpError and real bugs go on to the final handler', async () => {
    assert.deepEqual((await request(mini()).get('/own')).body, { handledBy: 'final' });
    const bug = await request(mini()).get('/bug');
    assert.equal(bug.status, 500);
    assert.deepEqual(bug.body, { handledBy: 'final' });
  });
});

describe('malformed percent-encoding through the real app', () => {
  const { app } = testApp();
  test('/policies/{id}: the URIError flows forward to bodyErrorHandler → 400 OperationOutcome', async () => {
    for (const res of [await request(app).get('/policies/%E0%A4%A'), await request(app).post('/policies/%E0%A4%A').send({})]) {
      assert.equal(res.status, 400, res.text);
      assert.ok(isOperationOutcomeBody(res.body));
    }
  });
  for (const path of ['/cds-services/%E0%A4%A', `${ORDER_SIGN}%ZZ`]) {
    test(`POST and GET ${path} → 400 OperationOutcome`, async () => {
      for (const res of [await request(app).get(path), await request(app).post(path).send({})]) {
        assert.equal(res.status, 400, res.text);
        assert.ok(isOperationOutcomeBody(res.body));
      }
    });
  }
});
