import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { describe, test } from 'node:test';
import express, { type ErrorRequestHandler, type Express } from 'express';
import request from 'supertest';
import { HttpError } from '../../server/http/operation-outcome.ts';
import { JSON_TYPES, jsonTextBody, parseJsonText } from '../../server/http/json-text.ts';
import { bodyErrorHandler } from '../../server/security/limits.ts';

/**
 * The hook route reads its body as text and parses it itself (on the service's thread or a hook
 * thread). Every input must come out exactly as express.json() — which the other routes use —
 * would have made it: the same value, or the same refusal.
 */

const LIMIT = 4096;

function finalHandler(): ErrorRequestHandler {
  return (err: unknown, _req, res, _next) => {
    if (err instanceof HttpError) res.status(err.status).json(err.outcome);
    else res.status(500).json({ unexpected: String(err) });
  };
}

/** What the other routes get: express.json(), then bodyErrorHandler. */
function jsonApp(): Express {
  const app = express();
  app.use(express.json({ limit: LIMIT, type: JSON_TYPES }));
  app.use(bodyErrorHandler);
  app.post('/', (req, res) => {
    res.json({ body: req.body === undefined ? '(none)' : (req.body as unknown) });
  });
  app.use(finalHandler());
  return app;
}

/** What the hook route does: text, then parseJsonText where the answer is computed. */
function textApp(): Express {
  const app = express();
  app.post('/', jsonTextBody(LIMIT), (req, res) => {
    const body = parseJsonText(req.body as string | undefined);
    res.json({ body: body === undefined ? '(none)' : body });
  });
  app.use(bodyErrorHandler);
  app.use(finalHandler());
  return app;
}

interface Case {
  name: string;
  contentType?: string;
  encoding?: string;
  body: string | Buffer;
}

const utf16 = (s: string) => Buffer.from(s, 'utf16le');

const CASES: Case[] = [
  { name: 'an object', contentType: 'application/json', body: '{"a":[1,2,{"b":"é😀"}]}' },
  { name: 'leading whitespace', contentType: 'application/json', body: ' \n\t{"a":1}' },
  { name: 'an array', contentType: 'application/json', body: '[1,2]' },
  { name: 'an empty body', contentType: 'application/json', body: '' },
  { name: 'only whitespace', contentType: 'application/json', body: '   ' },
  { name: 'a bare string', contentType: 'application/json', body: '"text"' },
  { name: 'a number', contentType: 'application/json', body: '42' },
  { name: 'null', contentType: 'application/json', body: 'null' },
  { name: 'true', contentType: 'application/json', body: 'true' },
  { name: 'truncated JSON', contentType: 'application/json', body: '{"a":' },
  { name: 'trailing garbage', contentType: 'application/json', body: '{"a":1} x' },
  { name: 'a byte-order mark', contentType: 'application/json', body: Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"a":1}')]) },
  { name: 'invalid UTF-8', contentType: 'application/json', body: Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d]) },
  { name: 'application/fhir+json', contentType: 'application/fhir+json', body: '{"resourceType":"Patient"}' },
  { name: 'a vendor +json type', contentType: 'application/vnd.example+json', body: '{"a":1}' },
  { name: 'text/plain', contentType: 'text/plain', body: '{"a":1}' },
  { name: 'no content type', body: '{"a":1}' },
  { name: 'an unparseable content type', contentType: 'application/json; charset', body: '{"a":1}' },
  { name: 'charset=utf-8', contentType: 'application/json; charset=utf-8', body: '{"a":1}' },
  { name: 'charset=UTF-8', contentType: 'application/json; charset=UTF-8', body: '{"a":1}' },
  { name: 'charset=utf-16le', contentType: 'application/json; charset=utf-16le', body: utf16('{"a":"ü"}') },
  { name: 'charset=latin1', contentType: 'application/json; charset=latin1', body: '{"a":1}' },
  { name: 'charset=bogus', contentType: 'application/json; charset=bogus', body: '{"a":1}' },
  { name: 'charset=utf-bogus', contentType: 'application/json; charset=utf-bogus', body: '{"a":1}' },
  { name: 'gzip', contentType: 'application/json', encoding: 'gzip', body: gzipSync('{"a":1}') },
  { name: 'gzip that does not inflate', contentType: 'application/json', encoding: 'gzip', body: 'not gzip' },
  { name: 'an unknown content encoding', contentType: 'application/json', encoding: 'x-unknown', body: '{"a":1}' },
  { name: 'over the limit', contentType: 'application/json', body: `{"a":"${'x'.repeat(LIMIT)}"}` },
  { name: 'gzip over the limit once inflated', contentType: 'application/json', encoding: 'gzip', body: gzipSync(`{"a":"${'x'.repeat(LIMIT * 4)}"}`) },
];

async function send(app: Express, c: Case) {
  let req = request(app).post('/');
  if (c.contentType !== undefined) req = req.set('Content-Type', c.contentType);
  if (c.encoding !== undefined) req = req.set('Content-Encoding', c.encoding);
  const res = await req.send(c.body);
  return { status: res.status, body: res.body as unknown };
}

describe('the hook route parses its body exactly as express.json() does', () => {
  for (const c of CASES) {
    test(c.name, async () => {
      const expected = await send(jsonApp(), c);
      const actual = await send(textApp(), c);
      assert.ok(expected.status < 500, `express.json() itself gave ${expected.status}`);
      assert.deepEqual(actual, expected);
    });
  }

  test('the cases cover values, refusals and unread bodies', async () => {
    const statuses = new Set<number>();
    for (const c of CASES) statuses.add((await send(jsonApp(), c)).status);
    assert.deepEqual([...statuses].sort(), [200, 400, 413, 415]);
  });
});
