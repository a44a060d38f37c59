// The decision-store suite, run once per engine (pglite.test.ts, postgres.test.ts).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import express from 'express';
import request from 'supertest';
import { createDecisionsRouter } from '../../server/http/decisions.ts';
import { createFeedbackRouter } from '../../server/http/feedback.ts';
import { DecisionRejectedError, StoreUnavailableError, openDecisionStore, openDecisionStoreWith } from '../../server/store/index.ts';
import { loadMigrations, migrate } from '../../server/store/migrate.ts';
import { openPgDriver } from '../../server/store/pg-driver.ts';
import { openPgliteDriver } from '../../server/store/pglite-driver.ts';
import type { SqlDriver } from '../../server/store/sql-driver.ts';
import type { DecisionRecord, DecisionStore } from '../../server/store/types.ts';
import { type Engine, Faults, type StoreTarget, eventually, makeRecord, silent, sleep } from './helpers.ts';
import { TcpProxy } from './tcp-proxy.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const SERVICE = 'gene-therapy-order-sign';
const NOW = '2025-05-01T10:00:00.000Z';

function expected(record: DecisionRecord): DecisionRecord & { feedback: [] } {
  return { ...record, feedback: [] };
}

function feedbackApp(store: DecisionStore) {
  const app = express();
  app.use(express.json());
  // Stands in for the client authenticator, which sets res.locals.clientIss.
  app.use((req, res, next) => {
    const iss = req.get('x-test-iss');
    if (iss) res.locals.clientIss = iss;
    next();
  });
  app.use(createFeedbackRouter({ store, serviceIds: new Set([SERVICE]), logger: silent }));
  return app;
}

/** Every acknowledged assertion id can be looked up: nothing acknowledged was lost. */
async function assertAllFound(store: DecisionStore, ids: string[]): Promise<void> {
  const missing: string[] = [];
  for (const id of ids) if (!(await store.findByAssertionId(id))) missing.push(id);
  assert.deepEqual(missing, [], `${missing.length} of ${ids.length} acknowledged records lost`);
}

async function spoolText(dataDir: string): Promise<string> {
  return readFile(path.join(dataDir, 'spool', 'decisions.jsonl'), 'utf8').catch(() => '');
}

/** Runs the save-loop child, SIGKILLs it once `killAfter` ids were acknowledged; returns them. */
async function runAndKill(target: StoreTarget, killAfter: number, onProgress?: (ids: number) => void): Promise<string[]> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(import.meta.dirname, 'fixtures', 'save-loop.ts'), target.dataDir, target.databaseUrl ?? ''], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const ids: string[] = [];
  let buffer = '';
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const closed = new Promise<void>((resolve) => child.on('close', () => resolve()));
  const reached = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`child acknowledged only ${ids.length} records; stderr: ${stderr}`)), 60_000);
    child.stdout.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      const lines = buffer.split('\n');
      buffer = lines.pop() ?? '';
      for (const line of lines) if (line.startsWith('saved ')) ids.push(line.slice(6));
      onProgress?.(ids.length);
      if (ids.length >= killAfter) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on('exit', () => {
      clearTimeout(timer);
      if (ids.length < killAfter) reject(new Error(`child exited early; stderr: ${stderr}`));
    });
  });
  try {
    await reached;
  } finally {
    child.kill('SIGKILL');
    await closed; // every line written before the kill has been read by now
  }
  return ids;
}

export function storeSuite(engine: Engine): void {
  describe(`decision store on ${engine.name}`, () => {
    let target: StoreTarget;
    let store: DecisionStore;
    const faults = new Faults();

    before(async () => {
      target = await engine.fresh();
      store = await openDecisionStoreWith({ dataDir: target.dataDir, databaseUrl: target.databaseUrl, logger: silent }, (d) => faults.wrap(d));
      assert.equal(store.engine, engine.name);
    });

    after(async () => {
      await store?.close();
      await target?.cleanup();
    });

    it('applies migrations once, also when two run at the same time, and refuses an edited one', async () => {
      const fresh = await engine.fresh();
      const drivers: SqlDriver[] = [];
      try {
        let first: SqlDriver | undefined;
        const s = await openDecisionStoreWith({ dataDir: fresh.dataDir, databaseUrl: fresh.databaseUrl, logger: silent }, (d) => {
          first = d;
          return d;
        });
        assert.ok(first);
        // Everything applied at open: running again (twice at once) applies nothing.
        const second = fresh.databaseUrl ? openPgDriver({ connectionString: fresh.databaseUrl, logger: silent, connectTimeoutMs: 2000, queryTimeoutMs: 10_000 }) : first;
        if (second !== first) drivers.push(second);
        assert.deepEqual(await Promise.all([migrate(first, silent), migrate(second, silent)]), [[], []]);
        const rows = await first.query<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version');
        assert.deepEqual(
          rows.map((r) => Number(r.version)),
          (await loadMigrations()).map((m) => m.version),
        );
        const edited = (await loadMigrations()).map((m) => ({ ...m, checksum: 'edited' }));
        await assert.rejects(migrate(first, silent, edited), /changed after it was applied/);
        await s.close();
        // Reopening the same store applies nothing and works.
        const again = await openDecisionStore({ dataDir: fresh.dataDir, databaseUrl: fresh.databaseUrl, logger: silent });
        const r = makeRecord();
        await again.save(r);
        assert.equal((await again.findByAssertionId(r.assertionIds[0] ?? ''))?.id, r.id);
        await again.close();
      } finally {
        for (const d of drivers) await d.close();
        await fresh.cleanup();
      }
    });

    it('upgrades a store written before migration 003: its decisions stay readable, new ones are stored beside them', async () => {
      const fresh = await engine.fresh();
      try {
        // A store as version 002 left it, with one decision written the way that version did.
        const raw = fresh.databaseUrl
          ? openPgDriver({ connectionString: fresh.databaseUrl, logger: silent, connectTimeoutMs: 2000, queryTimeoutMs: 10_000 })
          : await openPgliteDriver(path.join(fresh.dataDir, 'pglite'));
        const old = makeRecord({ receivedAt: NOW, respondedAt: NOW, evidence: { resourceType: 'Bundle', type: 'collection' } });
        const order = old.orders[0];
        assert.ok(order);
        try {
          await migrate(raw, silent, (await loadMigrations()).filter((m) => m.version <= 2));
          await raw.transaction(async (tx) => {
            await tx.query(
              `INSERT INTO decisions (id, received_at, responded_at, client_iss, service_id, hook, hook_instance, patient_id, payer_id, evidence, response)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
              [old.id, old.receivedAt, old.respondedAt, old.clientIss, old.serviceId, old.hook, old.hookInstance, old.patientId, old.payerId, JSON.stringify(old.evidence), JSON.stringify(old.response)],
            );
            await tx.query(
              `INSERT INTO decision_orders (decision_id, ordinal, order_reference, product_id, policy_id, policy_version, coverage_reference, assertion_id, covered, pa_needed, criteria)
               VALUES ($1, 0, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
              [old.id, order.orderReference, order.productId, order.policyId, order.policyVersion, order.coverageReference, order.assertionId, order.covered, order.paNeeded, JSON.stringify(order.criteria)],
            );
            await tx.query('INSERT INTO decision_assertions (assertion_id, decision_id, ordinal) VALUES ($1, $2, 0)', [old.assertionIds[0], old.id]);
            await tx.query('INSERT INTO decision_cards (decision_id, ordinal, card_uuid) VALUES ($1, 0, $2)', [old.id, old.cardUuids[0]]);
          });
        } finally {
          await raw.close();
        }
        const upgraded = await openDecisionStore({ dataDir: fresh.dataDir, databaseUrl: fresh.databaseUrl, logger: silent });
        try {
          assert.deepEqual(await upgraded.findByAssertionId(old.assertionIds[0] ?? ''), expected(old));
          const current = makeRecord({ receivedAt: NOW, respondedAt: NOW });
          await upgraded.save(current);
          assert.deepEqual(await upgraded.findByAssertionId(current.assertionIds[0] ?? ''), expected(current));
          // Saving the old decision again (a spool replay of it) stores nothing twice.
          await upgraded.save(old);
          assert.deepEqual(await upgraded.findByAssertionId(old.assertionIds[0] ?? ''), expected(old));
        } finally {
          await upgraded.close();
        }
      } finally {
        await fresh.cleanup();
      }
    });

    it(
      engine.name === 'pglite'
        ? 'refuses a second instance on the same data directory (PGlite is single-process)'
        : 'migrates a new database from two instances starting at once',
      async () => {
      const fresh = await engine.fresh();
      if (engine.name === 'pglite') {
        // The embedded engine's answer to "two instances": exactly one may own a data directory.
        const results = await Promise.allSettled([
          openDecisionStore({ dataDir: fresh.dataDir, logger: silent }),
          openDecisionStore({ dataDir: fresh.dataDir, logger: silent }),
        ]);
        const opened = results.filter((r): r is PromiseFulfilledResult<DecisionStore> => r.status === 'fulfilled');
        const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
        assert.equal(opened.length, 1);
        assert.equal(refused.length, 1);
        assert.match(String((refused[0]!.reason as Error).message), /already open|in use/);
        const r = makeRecord();
        await opened[0]!.value.save(r);
        assert.equal((await opened[0]!.value.findByAssertionId(r.assertionIds[0] ?? ''))?.id, r.id);
        await opened[0]!.value.close();
        await fresh.cleanup();
        return;
      }
      const [a, b] = await Promise.all([
        openDecisionStore({ dataDir: fresh.dataDir, databaseUrl: fresh.databaseUrl, logger: silent }),
        openDecisionStore({ dataDir: `${fresh.dataDir}-b`, databaseUrl: fresh.databaseUrl, logger: silent }),
      ]);
      const r = makeRecord();
      await a.save(r);
      assert.equal((await b.findByAssertionId(r.assertionIds[0] ?? ''))?.id, r.id);
      await a.close();
      await b.close();
      await rm(`${fresh.dataDir}-b`, { recursive: true, force: true });
      await fresh.cleanup();
      },
    );

    it('stores a decision and finds it by any of its coverage-assertion-ids', async () => {
      const base = makeRecord();
      const first = base.orders[0];
      assert.ok(first);
      const second = { ...first, orderReference: 'MedicationRequest/second', assertionId: `asrt-${randomUUID()}`, covered: 'not-covered', criteria: null };
      const record: DecisionRecord = {
        ...base,
        receivedAt: NOW,
        orders: [first, second],
        assertionIds: [first.assertionId ?? '', second.assertionId],
        cardUuids: [randomUUID(), randomUUID()],
        evidence: { note: 'unicode ✓, 🧬 (outside the BMP) and a NUL\u0000 in text', n: [1, 2.5, null, true] },
      };
      await store.save(record);
      const byFirst = await store.findByAssertionId(record.assertionIds[0] ?? '');
      const bySecond = await store.findByAssertionId(second.assertionId);
      const want = expected({ ...record, evidence: { note: 'unicode ✓, 🧬 (outside the BMP) and a NUL\ufffd in text', n: [1, 2.5, null, true] } });
      assert.deepEqual(byFirst, want);
      assert.deepEqual(bySecond, want);
      assert.equal(await store.findByAssertionId('asrt-unknown'), undefined);
      // Saving the same record again (a replay) is not an error and stores nothing twice.
      await store.save(record);
      assert.deepEqual(await store.findByAssertionId(second.assertionId), want);
    });

    it('stores the response text as sent when the caller gives it, instead of serialising the response again', async () => {
      const sent = '{"cards":[{"summary":"as sent \\u2713, ✓ and 🧬"}],"systemActions":[]}';
      const record: DecisionRecord = { ...makeRecord(), response: { cards: [], systemActions: [] }, responseJson: sent };
      await store.save(record);
      const found = await store.findByAssertionId(record.assertionIds[0] ?? '');
      assert.deepEqual(found?.response, JSON.parse(sent));
    });

    it('refuses a malformed record at once', async () => {
      await assert.rejects(store.save({ ...makeRecord(), id: 'not-a-uuid' }), DecisionRejectedError);
      await assert.rejects(store.save({ ...makeRecord(), receivedAt: 'yesterday' }), DecisionRejectedError);
      await assert.rejects(store.save({ ...makeRecord(), response: undefined }), DecisionRejectedError);
    });

    it('group commit: 200 concurrent saves share a few commits, each acknowledged only after its commit', async () => {
      const records = Array.from({ length: 200 }, () => makeRecord());
      const callsBefore = faults.insertCalls;
      const early: string[] = [];
      await Promise.all(
        records.map((r) =>
          store.save(r).then(() => {
            if (!faults.committed.has(r.id)) early.push(r.id);
          }),
        ),
      );
      assert.deepEqual(early, [], 'no save may resolve before its batch committed');
      const commits = faults.insertCalls - callsBefore;
      assert.ok(commits >= 1 && commits <= 10, `expected a few batched commits, got ${commits}`);
      for (const r of records) assert.equal((await store.findByAssertionId(r.assertionIds[0] ?? ''))?.id, r.id);
    });

    it('rejects only the record that conflicts; its batch neighbours are stored', async () => {
      const existing = makeRecord();
      await store.save(existing);
      const clash = makeRecord({ assertionIds: [existing.assertionIds[0] ?? ''] });
      const fine = [makeRecord(), makeRecord()];
      const results = await Promise.allSettled([store.save(fine[0] ?? makeRecord()), store.save(clash), store.save(fine[1] ?? makeRecord())]);
      assert.equal(results[0]?.status, 'fulfilled');
      assert.equal(results[2]?.status, 'fulfilled');
      assert.equal(results[1]?.status, 'rejected');
      assert.ok(results[1]?.status === 'rejected' && results[1].reason instanceof DecisionRejectedError);
      for (const r of fine) assert.equal((await store.findByAssertionId(r.assertionIds[0] ?? ''))?.id, r.id);
      assert.equal((await store.findByAssertionId(existing.assertionIds[0] ?? ''))?.id, existing.id);
    });

    describe('POST /cds-services/{id}/feedback', () => {
      const ts = '2025-05-01T10:05:00Z';
      const bad: [string, unknown, string][] = [
        ['no feedback array', {}, 'feedback'],
        ['empty feedback array', { feedback: [] }, 'feedback'],
        ['body not an object', [], 'body'],
        ['missing card', { feedback: [{ outcome: 'overridden', outcomeTimestamp: ts }] }, 'feedback[0].card'],
        ['unknown outcome', { feedback: [{ card: 'c', outcome: 'rejected', outcomeTimestamp: ts }] }, 'feedback[0].outcome'],
        ['accepted without suggestions', { feedback: [{ card: 'c', outcome: 'accepted', outcomeTimestamp: ts }] }, 'feedback[0].acceptedSuggestions'],
        ['suggestion without id', { feedback: [{ card: 'c', outcome: 'accepted', acceptedSuggestions: [{}], outcomeTimestamp: ts }] }, 'feedback[0].acceptedSuggestions[0].id'],
        ['timestamp not RFC 3339', { feedback: [{ card: 'c', outcome: 'overridden', outcomeTimestamp: '05/01/2025' }] }, 'feedback[0].outcomeTimestamp'],
        ['timestamp without zone', { feedback: [{ card: 'c', outcome: 'overridden', outcomeTimestamp: '2025-05-01T10:05:00' }] }, 'feedback[0].outcomeTimestamp'],
        ['missing timestamp', { feedback: [{ card: 'c', outcome: 'overridden' }] }, 'feedback[0].outcomeTimestamp'],
        [
          'override reason coding without system',
          { feedback: [{ card: 'c', outcome: 'overridden', overrideReason: { reason: { code: 'x' } }, outcomeTimestamp: ts }] },
          'feedback[0].overrideReason.reason.system',
        ],
        [
          'override reason on an accepted card',
          { feedback: [{ card: 'c', outcome: 'accepted', acceptedSuggestions: [{ id: 's' }], overrideReason: { userComment: 'x' }, outcomeTimestamp: ts }] },
          'feedback[0].overrideReason',
        ],
        [
          'accepted suggestions on an overridden card',
          { feedback: [{ card: 'c', outcome: 'overridden', acceptedSuggestions: [{ id: 's' }], outcomeTimestamp: ts }] },
          'feedback[0].acceptedSuggestions',
        ],
        [
          'second item wrong',
          { feedback: [{ card: 'c', outcome: 'overridden', outcomeTimestamp: ts }, { card: 7, outcome: 'overridden', outcomeTimestamp: ts }] },
          'feedback[1].card',
        ],
      ];
      for (const [name, body, field] of bad) {
        it(`400 naming the field: ${name}`, async () => {
          const res = await request(feedbackApp(store)).post(`/cds-services/${SERVICE}/feedback`).send(body as object).expect(400);
          assert.equal(res.body.resourceType, 'OperationOutcome');
          const expressions = (res.body.issue as { expression?: string[] }[]).flatMap((i) => i.expression ?? []);
          assert.ok(expressions.includes(field), `expected ${field} in ${JSON.stringify(expressions)}`);
        });
      }

      it('404 for an unknown service', async () => {
        const res = await request(feedbackApp(store))
          .post('/cds-services/no-such-service/feedback')
          .send({ feedback: [{ card: 'c', outcome: 'overridden', outcomeTimestamp: ts }] })
          .expect(404);
        assert.equal(res.body.resourceType, 'OperationOutcome');
      });

      it('stores feedback linked to the decision, once per client however often it is sent', async () => {
        const record = makeRecord();
        await store.save(record);
        const card = record.cardUuids[0] ?? '';
        const accepted = { card, outcome: 'accepted', acceptedSuggestions: [{ id: 'sugg-1' }], outcomeTimestamp: ts };
        const overridden = {
          card,
          outcome: 'overridden',
          overrideReason: { reason: { code: 'patient-ineligible', system: 'http://example.org/reasons', display: 'Ineligible' }, userComment: 'seen' },
          outcomeTimestamp: '2025-05-01T12:05:00.250+02:00',
        };
        const app = feedbackApp(store);
        const url = `/cds-services/${SERVICE}/feedback`;
        let res = await request(app).post(url).set('x-test-iss', 'https://ehr.example.org').send({ feedback: [accepted, overridden] }).expect(200);
        assert.deepEqual(res.body, { stored: 2, duplicates: 0, unknownCards: [] });
        res = await request(app).post(url).set('x-test-iss', 'https://ehr.example.org').send({ feedback: [accepted] }).expect(200);
        assert.deepEqual(res.body, { stored: 0, duplicates: 1, unknownCards: [] });
        // Same timestamp written differently is still the same feedback.
        res = await request(app).post(url).set('x-test-iss', 'https://ehr.example.org').send({ feedback: [{ ...accepted, outcomeTimestamp: '2025-05-01T10:05:00.000+00:00' }] }).expect(200);
        assert.deepEqual(res.body, { stored: 0, duplicates: 1, unknownCards: [] });
        // Another client's identical feedback is its own.
        res = await request(app).post(url).set('x-test-iss', 'https://other-ehr.example.org').send({ feedback: [accepted] }).expect(200);
        assert.deepEqual(res.body, { stored: 1, duplicates: 0, unknownCards: [] });
        const stored = await store.findByAssertionId(record.assertionIds[0] ?? '');
        assert.ok(stored);
        assert.equal(stored.feedback.length, 3);
        const [first, second] = stored.feedback;
        assert.deepEqual({ ...first, receivedAt: undefined }, { ...accepted, outcomeTimestamp: '2025-05-01T10:05:00.000Z', clientIss: 'https://ehr.example.org', receivedAt: undefined });
        assert.deepEqual(second?.overrideReason, overridden.overrideReason);
        assert.equal(second?.outcomeTimestamp, '2025-05-01T10:05:00.250Z');
        assert.ok(!Number.isNaN(Date.parse(first?.receivedAt ?? '')));
      });

      it('reports an unknown card and keeps the feedback, unlinked, once', async () => {
        const record = makeRecord();
        const card = record.cardUuids[0] ?? '';
        const body = { feedback: [{ card, outcome: 'overridden', outcomeTimestamp: ts }] };
        const app = feedbackApp(store);
        let res = await request(app).post(`/cds-services/${SERVICE}/feedback`).send(body).expect(200);
        assert.deepEqual(res.body, { stored: 1, duplicates: 0, unknownCards: [card] });
        res = await request(app).post(`/cds-services/${SERVICE}/feedback`).send(body).expect(200);
        assert.deepEqual(res.body, { stored: 0, duplicates: 1, unknownCards: [card] });
      });

      it('links feedback that arrived while its decision was still in the spool, when the spool is replayed', async () => {
        // A process answered from its spool and was stopped before replaying; the EHR's feedback
        // on that answer reached the database first. The next start replays the spool.
        const target = await engine.fresh();
        const record = makeRecord();
        const card = record.cardUuids[0] ?? '';
        const first = await openDecisionStore({ dataDir: target.dataDir, databaseUrl: target.databaseUrl, logger: silent });
        const early = await first.saveFeedback(SERVICE, null, [{ card, outcome: 'overridden', outcomeTimestamp: ts }]);
        assert.deepEqual(early.unknownCards, [card]);
        await first.close();
        await mkdir(path.join(target.dataDir, 'spool'), { recursive: true });
        await writeFile(path.join(target.dataDir, 'spool', 'decisions.jsonl'), `${JSON.stringify(record)}\n`);
        const next = await openDecisionStore({ dataDir: target.dataDir, databaseUrl: target.databaseUrl, logger: silent, retryIntervalMs: 100 });
        try {
          const stored = await eventually(() => next.findByAssertionId(record.assertionIds[0] ?? ''), 15_000, 'replayed decision');
          const linked = stored.feedback.length === 1 ? stored : await eventually(async () => {
            const again = await next.findByAssertionId(record.assertionIds[0] ?? '');
            return again && again.feedback.length === 1 ? again : undefined;
          }, 15_000, 'linked feedback');
          assert.equal(linked.feedback[0]?.card, card);
          assert.equal(linked.feedback[0]?.clientIss, null);
        } finally {
          await next.close();
          await target.cleanup();
        }
      });

      it("treats a card of another service's decision as unknown", async () => {
        const record = makeRecord({ serviceId: 'some-other-service' });
        await store.save(record);
        const card = record.cardUuids[0] ?? '';
        const res = await request(feedbackApp(store))
          .post(`/cds-services/${SERVICE}/feedback`)
          .send({ feedback: [{ card, outcome: 'overridden', outcomeTimestamp: ts }] })
          .expect(200);
        assert.deepEqual(res.body.unknownCards, [card]);
        assert.equal((await store.findByAssertionId(record.assertionIds[0] ?? ''))?.feedback.length, 0);
      });
    });

    describe('GET /decisions/{assertionId}', () => {
      const token = 'admin-token-for-tests-0123456789';
      const app = () => {
        const router = createDecisionsRouter({ store, adminToken: token });
        assert.ok(router);
        return express().use(router);
      };

      it('does not exist without an admin token', () => {
        assert.equal(createDecisionsRouter({ store, adminToken: undefined }), null);
        assert.equal(createDecisionsRouter({ store, adminToken: '' }), null);
      });

      it('401 without a token, with a wrong one or another scheme', async () => {
        const r = makeRecord();
        await store.save(r);
        const url = `/decisions/${r.assertionIds[0]}`;
        const none = await request(app()).get(url).expect(401);
        assert.equal(none.body.resourceType, 'OperationOutcome');
        assert.match(String(none.headers['www-authenticate']), /^Bearer/);
        await request(app()).get(url).set('Authorization', `Bearer ${token}x`).expect(401);
        await request(app()).get(url).set('Authorization', 'Bearer short').expect(401);
        await request(app()).get(url).set('Authorization', `Basic ${Buffer.from(`admin:${token}`).toString('base64')}`).expect(401);
        await request(app()).get(url).set('Authorization', token).expect(401);
      });

      it('200 with the stored decision and its criteria for the admin; 404 when unknown', async () => {
        const r = makeRecord({ receivedAt: NOW });
        await store.save(r);
        const res = await request(app()).get(`/decisions/${r.assertionIds[0]}`).set('Authorization', `Bearer ${token}`).expect(200);
        assert.deepEqual(res.body, expected(r));
        assert.equal(res.headers['cache-control'], 'no-store');
        const missing = await request(app()).get('/decisions/asrt-none').set('Authorization', `Bearer ${token}`).expect(404);
        assert.equal(missing.body.resourceType, 'OperationOutcome');
      });
    });

    it('purges decisions received before the cutoff with their orders and feedback', async () => {
      const old = ['1990-01-01T00:00:00.000Z', '1990-06-01T00:00:00.000Z', '1991-12-31T23:59:59.999Z'].map((at) => makeRecord({ receivedAt: at, respondedAt: at }));
      const kept = makeRecord({ receivedAt: '1992-01-01T00:00:00.000Z', respondedAt: '1992-01-01T00:00:00.000Z' });
      for (const r of [...old, kept]) await store.save(r);
      const oldCard = old[0]?.cardUuids[0] ?? '';
      const fb = await store.saveFeedback(SERVICE, null, [{ card: oldCard, outcome: 'overridden', outcomeTimestamp: '1990-01-02T00:00:00Z' }]);
      assert.equal(fb.stored, 1);
      assert.equal(await store.purgeOlderThan(new Date('1992-01-01T00:00:00.000Z')), 3);
      for (const r of old) assert.equal(await store.findByAssertionId(r.assertionIds[0] ?? ''), undefined);
      assert.equal((await store.findByAssertionId(kept.assertionIds[0] ?? ''))?.id, kept.id);
      assert.equal(await store.purgeOlderThan(new Date('1992-01-01T00:00:00.000Z')), 0);
      // The purged card is unknown now: its feedback went with it.
      const again = await store.saveFeedback(SERVICE, null, [{ card: oldCard, outcome: 'overridden', outcomeTimestamp: '1990-01-02T00:00:00Z' }]);
      assert.deepEqual(again, { stored: 1, duplicates: 0, unknownCards: [oldCard] });
    });

    describe('when the database is unavailable', () => {
      let spoolTarget: StoreTarget;
      let spooled: DecisionStore;
      const f = new Faults();
      const COMMIT_TIMEOUT = 400;

      before(async () => {
        spoolTarget = await engine.fresh();
        spooled = await openDecisionStoreWith(
          { dataDir: spoolTarget.dataDir, databaseUrl: spoolTarget.databaseUrl, logger: silent, commitTimeoutMs: COMMIT_TIMEOUT, retryIntervalMs: 100 },
          (d) => f.wrap(d),
        );
      });

      after(async () => {
        f.down = false;
        f.delayMs = 0;
        await spooled?.close();
        await spoolTarget?.cleanup();
      });

      it('answers from the fsynced spool, then replays into the database when it is back', async () => {
        f.down = true;
        const r = makeRecord();
        const t0 = Date.now();
        await spooled.save(r);
        assert.ok(Date.now() - t0 < COMMIT_TIMEOUT + 500, 'save must not hang');
        assert.ok((await spoolText(spoolTarget.dataDir)).includes(r.id), 'the record is in spool/decisions.jsonl');
        const down = await spooled.health();
        assert.equal(down.ok, false);
        assert.ok(down.spooled >= 1);
        // While down, further saves go straight to the spool.
        const more = Array.from({ length: 20 }, () => makeRecord());
        await Promise.all(more.map((m) => spooled.save(m)));
        f.down = false;
        for (const x of [r, ...more]) await eventually(() => spooled.findByAssertionId(x.assertionIds[0] ?? ''), 15_000, 'replay');
        const up = await eventually(async () => {
          const h = await spooled.health();
          return h.ok && h.spooled === 0 ? h : undefined;
        });
        assert.deepEqual(up, { ok: true, engine: engine.name, spooled: 0 });
        assert.equal(await spoolText(spoolTarget.dataDir), '');
      });

      it('answers within the commit timeout when a commit hangs, and stores the record once', async () => {
        f.delayMs = COMMIT_TIMEOUT * 3;
        const r = makeRecord();
        const t0 = Date.now();
        await spooled.save(r);
        const elapsed = Date.now() - t0;
        assert.ok(elapsed < COMMIT_TIMEOUT * 2, `answered after ${elapsed} ms`);
        f.delayMs = 0;
        const found = await eventually(() => spooled.findByAssertionId(r.assertionIds[0] ?? ''), 15_000, 'record');
        assert.deepEqual(found, expected(r));
        await eventually(async () => ((await spooled.health()).spooled === 0 ? true : undefined));
      });

      it('rejects the save when even the spool cannot be written', async () => {
        f.down = true;
        const spoolDir = path.join(spoolTarget.dataDir, 'spool');
        await rm(spoolDir, { recursive: true, force: true });
        await writeFile(spoolDir, 'not a directory');
        try {
          await assert.rejects(spooled.save(makeRecord()), StoreUnavailableError);
        } finally {
          await rm(spoolDir, { force: true });
          await mkdir(spoolDir);
          f.down = false;
        }
        const r = makeRecord();
        await spooled.save(r);
        await eventually(() => spooled.findByAssertionId(r.assertionIds[0] ?? ''));
      });
    });

    it('replays a spool left by a previous run at open and sets a torn last line aside', async () => {
      const fresh = await engine.fresh();
      try {
        const r = makeRecord();
        await mkdir(path.join(fresh.dataDir, 'spool'), { recursive: true });
        await writeFile(path.join(fresh.dataDir, 'spool', 'decisions.jsonl'), `${JSON.stringify(r)}\n{"id":"torn-by-a-cra`);
        const s = await openDecisionStore({ dataDir: fresh.dataDir, databaseUrl: fresh.databaseUrl, logger: silent, retryIntervalMs: 100 });
        try {
          assert.deepEqual(await eventually(() => s.findByAssertionId(r.assertionIds[0] ?? ''), 15_000, 'replay'), expected(r));
          await eventually(async () => ((await s.health()).spooled === 0 ? true : undefined));
          const rejected = await readFile(path.join(fresh.dataDir, 'spool', 'rejected.jsonl'), 'utf8');
          assert.match(rejected, /torn-by-a-cra/);
        } finally {
          await s.close();
        }
      } finally {
        await fresh.cleanup();
      }
    });

    it('loses no acknowledged record when the process is SIGKILLed under load', { timeout: 120_000 }, async () => {
      const fresh = await engine.fresh();
      try {
        const ids = await runAndKill(fresh, 500);
        const s = await openDecisionStore({ dataDir: fresh.dataDir, databaseUrl: fresh.databaseUrl, logger: silent });
        try {
          await assertAllFound(s, ids);
        } finally {
          await s.close();
        }
      } finally {
        await fresh.cleanup();
      }
    });

    if (engine.name === 'postgres') {
      describe('real outages (PostgreSQL behind a TCP proxy)', () => {
        async function proxied(fresh: StoreTarget): Promise<{ proxy: TcpProxy; url: string }> {
          const u = new URL(fresh.databaseUrl ?? '');
          const proxy = new TcpProxy(u.hostname, Number(u.port));
          await proxy.open();
          u.port = String(proxy.port);
          return { proxy, url: u.toString() };
        }

        it('starts while PostgreSQL is unreachable, then survives losing it mid-run', async () => {
          const fresh = await engine.fresh();
          const { proxy, url } = await proxied(fresh);
          await proxy.close();
          const s = await openDecisionStore({ dataDir: fresh.dataDir, databaseUrl: url, logger: silent, commitTimeoutMs: 500, retryIntervalMs: 100 });
          try {
            const r1 = makeRecord();
            await s.save(r1);
            assert.ok((await spoolText(fresh.dataDir)).includes(r1.id));
            await proxy.open(); // migrations run now, then the replay
            await eventually(() => s.findByAssertionId(r1.assertionIds[0] ?? ''), 15_000, 'replay after startup outage');
            const r2 = makeRecord();
            await s.save(r2);
            await proxy.close(); // the database goes away mid-run
            const r3 = makeRecord();
            const t0 = Date.now();
            await s.save(r3);
            assert.ok(Date.now() - t0 < 1500, 'save must not hang');
            await sleep(300);
            await proxy.open();
            for (const r of [r2, r3]) await eventually(() => s.findByAssertionId(r.assertionIds[0] ?? ''), 15_000, 'replay after outage');
          } finally {
            await s.close();
            await proxy.close();
            await fresh.cleanup();
          }
        });

        it('loses no acknowledged record when killed while answering from the spool', { timeout: 120_000 }, async () => {
          const fresh = await engine.fresh();
          const { proxy, url } = await proxied(fresh);
          try {
            let cut = false;
            const ids = await runAndKill({ ...fresh, databaseUrl: url }, 600, (n) => {
              if (n >= 200 && !cut) {
                cut = true;
                void proxy.close(); // from here on the child acknowledges from its spool
              }
            });
            assert.ok(cut);
            assert.ok((await stat(path.join(fresh.dataDir, 'spool'))).isDirectory());
            await proxy.open();
            const s = await openDecisionStore({ dataDir: fresh.dataDir, databaseUrl: url, logger: silent, retryIntervalMs: 100 });
            try {
              await eventually(async () => ((await s.health()).spooled === 0 ? true : undefined), 30_000, 'replay');
              await assertAllFound(s, ids);
            } finally {
              await s.close();
            }
          } finally {
            await proxy.close();
            await fresh.cleanup();
          }
        });
      });
    }
  });
}

