// Hook threads (HOOK_THREADS): hook calls answered on worker threads must be answered exactly as
// the service's own thread answers them — refusals included — must be recorded in the decision log
// before they are acknowledged, and must survive a thread dying mid-call.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Express } from 'express';
import request from 'supertest';
import type { DecisionRecorder } from '../../server/app.ts';
import { defaultHookThreads, loadConfig, type ServiceConfig } from '../../server/config.ts';
import { HookThreadPool } from '../../server/hook-threads/pool.ts';
import { createLogger } from '../../server/logger.ts';
import type { HookResponse } from '../../server/protocol/types.ts';
import { openDecisionStore, type DecisionStore, type PreparedDecision } from '../../server/store/index.ts';
import { LogCapture, ORDER_SELECT, ORDER_SIGN, ROOT, testApp } from '../support/app.ts';
import { startFhirServer, type FhirTestServer } from '../support/fhir-server.ts';
import { allResources, hookRequest, zolgensmaCase, type ClinicalCase } from '../support/fixtures.ts';
import { codes, coverageInfo, reasons } from '../support/responses.ts';

const ORDER = 'MedicationRequest/mr-zolgensma';

function covered(body: unknown): string | undefined {
  return codes(coverageInfo(body as HookResponse, ORDER), 'covered')[0];
}

function assertionId(body: unknown): string | undefined {
  return coverageInfo(body as HookResponse, ORDER).get('coverage-assertion-id')?.[0]?.valueString;
}

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g;

/** A response with its random parts (card uuids, coverage-assertion-ids) made comparable. */
function comparable(status: number, text: string): { status: number; body: unknown } {
  return { status, body: JSON.parse(text.replace(UUID, '<uuid>')) as unknown };
}

function withoutTiter(): ClinicalCase {
  const c = zolgensmaCase();
  c.observations = c.observations.filter((o) => o.id !== 'obs-aav9');
  return c;
}

function tooDeep(depth: number): object {
  let value: unknown = {};
  for (let i = 0; i < depth; i++) value = { a: value };
  return { hook: 'order-sign', hookInstance: 'x', context: value };
}

interface Call {
  name: string;
  path: string;
  body: string | object | undefined;
  contentType?: string;
}

function calls(fhir: FhirTestServer): Call[] {
  const c = zolgensmaCase();
  const many = zolgensmaCase();
  many.orders = Array.from({ length: 51 }, (_, i) => ({ ...many.orders[0]!, id: `mr-${i}` }));
  return [
    { name: 'order-sign, every criterion met', path: ORDER_SIGN, body: hookRequest(c) },
    { name: 'order-select, limited to the selection', path: ORDER_SELECT, body: hookRequest(c, { hook: 'order-select' }) },
    { name: 'order-sign, documentation missing', path: ORDER_SIGN, body: hookRequest(withoutTiter()) },
    { name: 'card types switched off by davinci-crd.configuration', path: ORDER_SIGN, body: hookRequest(c, { extension: { 'davinci-crd.configuration': { 'coverage-info': false } } }) },
    { name: 'nothing prefetched: everything from the FHIR server', path: ORDER_SIGN, body: hookRequest(c, { prefetch: 'none', fhirServer: fhir.baseUrl }) },
    { name: 'nothing prefetched and no FHIR server: 412', path: ORDER_SIGN, body: hookRequest(c, { prefetch: 'none' }) },
    { name: 'invalid request: 400 naming the field', path: ORDER_SIGN, body: { ...hookRequest(c), hookInstance: 17 } },
    { name: 'wrong hook for the service: 400', path: ORDER_SELECT, body: hookRequest(c) },
    { name: 'malformed JSON: 400', path: ORDER_SIGN, body: '{"hook": "order-sign",', contentType: 'application/json' },
    { name: 'empty body: 400', path: ORDER_SIGN, body: '', contentType: 'application/json' },
    { name: 'text/plain: 400', path: ORDER_SIGN, body: '{}', contentType: 'text/plain' },
    { name: 'too deeply nested: 400', path: ORDER_SIGN, body: tooDeep(100) },
    { name: 'too many draft orders: 400', path: ORDER_SIGN, body: hookRequest(many) },
    { name: 'unknown service: 404', path: '/cds-services/no-such-service', body: hookRequest(c) },
  ];
}

async function send(app: Express, call: Call, hookInstance: string): Promise<{ status: number; text: string }> {
  let req = request(app).post(call.path);
  if (call.contentType) req = req.set('Content-Type', call.contentType);
  // The same hookInstance on both sides, so that both answers can be compared whole.
  const body = typeof call.body === 'object' && call.body !== null && 'hookInstance' in call.body && typeof call.body.hookInstance === 'string' ? { ...call.body, hookInstance } : call.body;
  const res = await req.send(body as object);
  return { status: res.status, text: res.text };
}

describe('hook threads', () => {
  let pool: HookThreadPool;
  let fhir: FhirTestServer;
  let config: ServiceConfig;

  before(async () => {
    config = { ...loadConfig({ CDS_BASE_URL: 'http://crd.test', NODE_ENV: 'test' }), logLevel: 'warn' };
    pool = await HookThreadPool.start(2, { config, root: ROOT }, createLogger('silent'), { jobTimeoutMs: 60_000 });
    fhir = await startFhirServer();
    await fhir.seed(allResources(zolgensmaCase()));
  });
  after(async () => {
    await pool.close();
    await fhir.close();
  });

  test('HOOK_THREADS defaults to one thread per core beyond two, at most 4', () => {
    assert.deepEqual([1, 2, 3, 4, 6, 64].map((cores) => defaultHookThreads(cores)), [0, 0, 1, 2, 4, 4]);
    assert.equal(loadConfig({ HOOK_THREADS: '0' }).hookThreads, 0);
    assert.throws(() => loadConfig({ HOOK_THREADS: '-1' }), /HOOK_THREADS/);
  });

  test('every call gets the answer the service thread gives: the same status and the same body', async () => {
    const local = testApp({ logLevel: 'warn' }).app;
    const threaded = testApp({ logLevel: 'warn' }, { hookThreads: pool }).app;
    for (const call of calls(fhir)) {
      const hookInstance = crypto.randomUUID();
      const expected = await send(local, call, hookInstance);
      const actual = await send(threaded, call, hookInstance);
      assert.ok(expected.status < 500, `${call.name}: the service thread gave ${expected.status}`);
      assert.deepEqual(comparable(actual.status, actual.text), comparable(expected.status, expected.text), call.name);
    }
  });

  test('the calls are spread over the threads', async () => {
    const { app } = testApp({ logLevel: 'warn' }, { hookThreads: pool });
    const body = hookRequest(zolgensmaCase());
    const [a, b] = pool.workers;
    const seen = new Set<number>();
    for (const w of [a!, b!]) w.on('message', () => seen.add(w.threadId));
    const answers = await Promise.all(Array.from({ length: 8 }, () => request(app).post(ORDER_SIGN).send({ ...body, hookInstance: crypto.randomUUID() })));
    assert.deepEqual(answers.map((r) => r.status), Array(8).fill(200));
    assert.equal(seen.size, 2);
  });

  test('each answer is recorded before it is acknowledged, with the bytes the EHR received', async () => {
    const kept: PreparedDecision[] = [];
    const events: string[] = [];
    const recorder: DecisionRecorder = {
      record: () => Promise.reject(new Error('the threaded route records prepared decisions')),
      async recordPrepared(decision) {
        events.push('record');
        await new Promise((r) => setTimeout(r, 100));
        kept.push(decision);
        events.push('kept');
      },
      health: async () => ({ ok: true, engine: 'memory', spooled: 0 }),
    };
    const { app } = testApp({ logLevel: 'warn' }, { hookThreads: pool, recorder });
    const res = await request(app).post(ORDER_SIGN).send(hookRequest(zolgensmaCase()));
    events.push('answered');
    assert.equal(res.status, 200);
    assert.deepEqual(events, ['record', 'kept', 'answered']);
    assert.equal(kept.length, 1);
    assert.equal(kept[0]!.response, res.text);
    const id = assertionId(res.body);
    assert.ok(id);
    assert.deepEqual(kept[0]!.fields.assertionIds, [id]);
    assert.equal(kept[0]!.orders[0]!.policyId, 'jefferson-dr005d-zolgensma');
  });

  test('a refused call is not recorded; a recorder that fails turns the answer into an unrecorded one', async () => {
    let calls = 0;
    const failing: DecisionRecorder = {
      record: () => Promise.reject(new Error('unused')),
      recordPrepared: () => {
        calls++;
        return Promise.reject(new Error('database and spool both unavailable'));
      },
      health: async () => ({ ok: false, engine: 'memory', spooled: 0 }),
    };
    const { app, logs } = testApp({ logLevel: 'warn' }, { hookThreads: pool, recorder: failing });
    const refused = await request(app).post(ORDER_SIGN).send({ hook: 'order-sign' });
    assert.equal(refused.status, 400);
    assert.equal(calls, 0);
    const res = await request(app).post(ORDER_SIGN).send(hookRequest(zolgensmaCase()));
    assert.equal(res.status, 200);
    assert.equal(calls, 1);
    const info = coverageInfo(res.body as HookResponse, ORDER);
    assert.deepEqual(codes(info, 'covered'), ['indeterminate']);
    assert.equal(info.get('reason')?.[0]?.valueCodeableConcept?.coding?.[0]?.code, 'technical');
    assert.match(reasons(info).join(' '), /could not be recorded/);
    for (const card of (res.body as HookResponse).cards) assert.match(card.summary, /^Not recorded: /);
    assert.match(logs.text, /decision could not be recorded/);
  });

  test('createApp refuses hook threads with a recorder that cannot take prepared decisions', () => {
    const recorder: DecisionRecorder = { record: async () => undefined, health: async () => ({ ok: true, engine: 'memory', spooled: 0 }) };
    assert.throws(() => testApp({}, { hookThreads: pool, recorder }), /recordPrepared/);
  });

  test('with the embedded store: the decision is committed and found by its coverage-assertion-id', async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'crd-threads-'));
    let store: DecisionStore | undefined;
    try {
      store = await openDecisionStore({ dataDir, logger: createLogger('silent') });
      const opened = store;
      const recorder: DecisionRecorder = { record: (d) => opened.save(d), recordPrepared: (d) => opened.savePrepared(d), health: () => opened.health() };
      const { app } = testApp({ logLevel: 'warn' }, { hookThreads: pool, recorder });
      const res = await request(app).post(ORDER_SIGN).send(hookRequest(zolgensmaCase()));
      assert.equal(res.status, 200);
      const stored = await store.findByAssertionId(assertionId(res.body)!);
      assert.ok(stored, 'decision not found');
      assert.equal(JSON.stringify(stored.response), JSON.stringify(JSON.parse(res.text)));
      assert.equal(stored.orders[0]!.covered, 'covered');
      assert.ok(Array.isArray(stored.evidence) && stored.evidence.length > 0);
    } finally {
      await store?.close();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

describe('a hook thread that dies', () => {
  test('its calls run again on another thread, and it is replaced', async () => {
    const config = { ...loadConfig({ CDS_BASE_URL: 'http://crd.test', NODE_ENV: 'test' }), logLevel: 'warn' };
    const poolLogs = new LogCapture();
    const pool = await HookThreadPool.start(2, { config, root: ROOT }, createLogger('info', poolLogs), { jobTimeoutMs: 60_000 });
    try {
      const { app } = testApp({ logLevel: 'warn' }, { hookThreads: pool });
      const body = hookRequest(zolgensmaCase());
      const victim = pool.workers[0]!;
      const inFlight = Array.from({ length: 6 }, () => request(app).post(ORDER_SIGN).send({ ...body, hookInstance: crypto.randomUUID() }).then((r) => r));
      // Kill a thread while calls are queued on it.
      while (pool.jobsOn(victim) < 2) await new Promise((r) => setImmediate(r));
      const orphaned = pool.jobsOn(victim);
      await victim.terminate();
      const answers = await Promise.all(inFlight);
      assert.deepEqual(answers.map((r) => r.status), Array(6).fill(200));
      for (const r of answers) assert.equal(covered(r.body), 'covered');
      const deadline = Date.now() + 30_000;
      while ((pool.workers.length < 2 || pool.workers.includes(victim)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      assert.equal(pool.workers.length, 2);
      assert.ok(!pool.workers.includes(victim));
      assert.deepEqual((await request(app).get('/health').expect(200)).body.hookThreads, { configured: 2, running: 2 });
      const exit = poolLogs.lines.map((l) => JSON.parse(l) as { msg: string; jobs?: number }).find((l) => l.msg.startsWith('hook thread exited'));
      assert.equal(exit?.jobs, orphaned);
      assert.match(poolLogs.text, /hook thread started again/);
    } finally {
      await pool.close();
    }
  });

  test('with no thread left, the service thread answers', async () => {
    const config = { ...loadConfig({ CDS_BASE_URL: 'http://crd.test', NODE_ENV: 'test' }), logLevel: 'warn' };
    const pool = await HookThreadPool.start(1, { config, root: ROOT }, createLogger('silent'), { jobTimeoutMs: 60_000 });
    const { app, logs } = testApp({}, { hookThreads: pool });
    await pool.close();
    assert.deepEqual((await request(app).get('/health').expect(200)).body.hookThreads, { configured: 1, running: 0 });
    const res = await request(app).post(ORDER_SIGN).send(hookRequest(zolgensmaCase()));
    assert.equal(res.status, 200);
    assert.equal(covered(res.body), 'covered');
    assert.match(logs.text, /answered on the service thread/);
  });

  test('a call that holds its thread past the job timeout: the thread is replaced, the call gets a 408, and is not run again', async () => {
    const config = { ...loadConfig({ CDS_BASE_URL: 'http://crd.test', NODE_ENV: 'test' }), logLevel: 'warn' };
    const poolLogs = new LogCapture();
    const pool = await HookThreadPool.start(2, { config, root: ROOT }, createLogger('info', poolLogs), { jobTimeoutMs: 300 });
    const slow = await startFhirServer();
    try {
      const c = zolgensmaCase();
      await slow.seed(allResources(c));
      slow.setBehaviour({ delayMs: 1500 });
      const { app } = testApp({ logLevel: 'warn' }, { hookThreads: pool });
      const before = [...pool.workers];
      const res = await request(app).post(ORDER_SIGN).send(hookRequest(c, { prefetch: 'none', fhirServer: slow.baseUrl }));
      assert.equal(res.status, 408);
      assert.equal((res.body as { issue: { code: string }[] }).issue[0]!.code, 'timeout');
      assert.match(poolLogs.text, /held its thread too long/);
      // Had the call been given to the other thread, it would query the FHIR server again at once.
      const queriesAt408 = slow.requests.length;
      const deadline = Date.now() + 30_000;
      while ((pool.workers.length < 2 || before.every((w) => pool.workers.includes(w))) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      assert.equal(pool.workers.length, 2);
      assert.equal(before.filter((w) => pool.workers.includes(w)).length, 1, 'the stuck thread was replaced, the other kept');
      assert.equal(slow.requests.length, queriesAt408, 'the timed-out call was not run again');
      slow.setBehaviour({});
      const after = await request(app).post(ORDER_SIGN).send(hookRequest(c));
      assert.equal(after.status, 200);
      assert.equal(covered(after.body), 'covered');
    } finally {
      await pool.close();
      await slow.close();
    }
  });

  test('a thread that cannot build its pipeline stops the start with the reason', async () => {
    const config = { ...loadConfig({ CDS_BASE_URL: 'http://crd.test', NODE_ENV: 'test' }), policyDir: path.join(ROOT, 'no-such-policies') };
    await assert.rejects(HookThreadPool.start(1, { config, root: ROOT }, createLogger('silent'), { jobTimeoutMs: 60_000 }), /hook thread could not start: .*no-such-policies/);
  });
});
