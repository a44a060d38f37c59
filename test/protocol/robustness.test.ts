// No input may produce a 5xx: a valid Zolgensma order-sign/order-select request, mutated at random
// places (deep inside the draft orders and the prefetched FHIR data too), must get a 200 that passes
// the CRD checker or a 4xx OperationOutcome.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import request from 'supertest';
import { ORDER_SELECT, ORDER_SIGN, testApp } from '../support/app.ts';
import { crdViolations } from '../support/crd-conformance.ts';
import { hookRequest, zolgensmaCase } from '../support/fixtures.ts';

type Json = Record<string, unknown>;

const { app } = testApp();

/** Every path to a value in a JSON document. */
function paths(value: unknown, prefix: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  out.push(prefix);
  if (Array.isArray(value)) value.forEach((v, i) => paths(v, [...prefix, i], out));
  else if (typeof value === 'object' && value !== null) for (const [k, v] of Object.entries(value)) paths(v, [...prefix, k], out);
  return out;
}

type Mutation = { kind: 'delete' } | { kind: 'replace'; value: unknown };

function mutate(doc: unknown, path: (string | number)[], mutation: Mutation): unknown {
  // Values are copied in: a shared constant must never end up inside itself.
  if (path.length === 0) return mutation.kind === 'delete' ? {} : structuredClone(mutation.value);
  let parent = doc as Json | unknown[];
  for (const step of path.slice(0, -1)) parent = (parent as Record<string | number, unknown>)[step] as Json | unknown[];
  const last = path[path.length - 1]!;
  if (mutation.kind === 'delete') {
    if (Array.isArray(parent)) parent.splice(Number(last), 1);
    else delete (parent as Json)[last];
  } else {
    (parent as Record<string | number, unknown>)[last] = structuredClone(mutation.value);
  }
  return doc;
}

const oddValues = fc.oneof(
  fc.constant(null),
  fc.constant(''),
  fc.constant([]),
  fc.constant({}),
  fc.constant('Patient/pat-sma-1'),
  fc.constant('1:25'),
  fc.constant('G12.0'),
  fc.constant({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'exception' }] }),
  fc.constant({ resourceType: 'Bundle', entry: [null, 1, { resource: 'x' }] }),
  fc.constant({ reference: '#missing' }),
  fc.constant({ value: 'NaN', unit: 'kg', system: 'http://unitsofmeasure.org', code: 'kg' }),
  fc.constant('2026-13-45'),
  fc.constant(-1),
  fc.constant(1e308),
  fc.boolean(),
  fc.string({ maxLength: 12 }),
  fc.integer(),
  fc.jsonValue({ maxDepth: 3 }),
);

const mutationArb = fc.array(
  fc.record({
    at: fc.nat(),
    mutation: fc.oneof(fc.constant<Mutation>({ kind: 'delete' }), oddValues.map((value): Mutation => ({ kind: 'replace', value }))),
  }),
  { minLength: 1, maxLength: 4 },
);

async function check(hook: 'order-sign' | 'order-select', mutations: { at: number; mutation: Mutation }[]): Promise<void> {
  let body: unknown = hookRequest(zolgensmaCase(), { hook });
  for (const { at, mutation } of mutations) {
    const all = paths(body);
    body = mutate(body, all[at % all.length]!, mutation);
  }
  const res = await request(app).post(hook === 'order-sign' ? ORDER_SIGN : ORDER_SELECT).set('Content-Type', 'application/json').send(JSON.stringify(body));
  assert.ok(res.status < 500, `${res.status} for ${JSON.stringify(mutations)}: ${res.text.slice(0, 400)}`);
  if (res.status === 200) {
    // A request that still validates must get a conformant answer (any payer name; the card source is checked elsewhere).
    const payerName = String(((((res.body as { cards?: Json[] }).cards ?? [])[0]?.source as Json | undefined)?.label) ?? 'Jefferson Health Plans');
    const violations = crdViolations(res.body, { request: body as Json, payerName });
    assert.deepEqual(violations, [], `for ${JSON.stringify(mutations)}`);
  } else {
    assert.equal((res.body as Json).resourceType, 'OperationOutcome', `${res.status}: ${res.text.slice(0, 200)}`);
  }
}

describe('random mutations of a valid request never produce a 5xx', () => {
  for (const hook of ['order-sign', 'order-select'] as const) {
    it(`${hook}: 250 mutated requests`, async () => {
      await fc.assert(
        fc.asyncProperty(mutationArb, (mutations) => check(hook, mutations)),
        { numRuns: 250, seed: hook === 'order-sign' ? 20261 : 20262 },
      );
    });
  }
});
