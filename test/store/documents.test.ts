// The embedded engine's document segments (server/store/documents.ts): the file format and its
// guarantees on their own, then through the PGlite store (rows point into segments; lookups,
// a lost segment, purge).
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { appendFile, copyFile, readdir, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import express from 'express';
import request from 'supertest';
import { createDecisionsRouter } from '../../server/http/decisions.ts';
import { DocumentSegments, type DocumentTexts } from '../../server/store/documents.ts';
import { openDecisionStoreWith } from '../../server/store/index.ts';
import type { SqlDriver } from '../../server/store/sql-driver.ts';
import { makeRecord, silent, tempDir } from './helpers.ts';

const dirs: string[] = [];
after(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function freshDir(): Promise<string> {
  const dir = await tempDir('crd-documents-');
  dirs.push(dir);
  return dir;
}

function texts(overrides: Partial<DocumentTexts> = {}): DocumentTexts {
  return {
    id: randomUUID(),
    evidence: '[{"resourceType":"Observation","valueString":"1:25 ✓ 🧬"}]',
    response: '{"cards":[{"summary":"as sent \\u2713, ✓"}],"systemActions":[]}',
    criteria: ['{"results":[]}', null],
    ...overrides,
  };
}

const DAY = new Date('2026-11-23T10:00:00.000Z');

describe('document segments', () => {
  it('appends one JSON line per decision and reads each back by its byte range', async () => {
    const segments = new DocumentSegments(await freshDir());
    await segments.init();
    const first = [texts(), texts({ evidence: null })];
    const second = [texts({ criteria: [] })];
    const refs = [...segments.append(first, DAY), ...segments.append(second, DAY)];
    assert.deepEqual(
      refs.map((r) => r.segment),
      Array(3).fill('decisions-2026-11-23.jsonl'),
    );
    for (const [i, d] of [...first, ...second].entries()) {
      const ref = refs[i];
      assert.ok(ref);
      const back = await segments.read(ref, d.id);
      assert.deepEqual(back, {
        evidence: d.evidence === null ? null : JSON.parse(d.evidence),
        response: JSON.parse(d.response),
        criteria: d.criteria.map((c) => (c === null ? null : JSON.parse(c))),
      });
    }
    // The file is plain JSON lines, the response text kept exactly as given.
    const file = await readFile(path.join(segments.dir, 'decisions-2026-11-23.jsonl'), 'utf8');
    const lines = file.split('\n').filter((l) => l !== '');
    assert.equal(lines.length, 3);
    assert.ok(lines[0]?.includes(`"response":${first[0]?.response}`));
    segments.close();
  });

  it('refuses a range that holds another decision, or lies past the end of the file', async () => {
    const segments = new DocumentSegments(await freshDir());
    await segments.init();
    const d = texts();
    const [ref] = segments.append([d], DAY);
    assert.ok(ref);
    await assert.rejects(segments.read(ref, randomUUID()), /another decision/);
    await assert.rejects(segments.read({ ...ref, length: ref.length + 100 }, d.id), /ends before/);
    await assert.rejects(segments.read({ ...ref, segment: '../pglite/PG_VERSION' }, d.id), /not a document segment/);
    segments.close();
  });

  it('continues an existing segment after a restart, ending a torn last line first', async () => {
    const dir = await freshDir();
    const before = new DocumentSegments(dir);
    await before.init();
    const kept = texts();
    const [keptRef] = before.append([kept], DAY);
    before.close();
    // A crash cut the next write short: half a line, no newline.
    await appendFile(path.join(dir, 'decisions-2026-11-23.jsonl'), '{"id":"torn","evidence":[{"resou');

    const after = new DocumentSegments(dir);
    await after.init();
    const next = texts();
    const [nextRef] = after.append([next], DAY);
    assert.ok(keptRef && nextRef);
    assert.deepEqual((await after.read(keptRef, kept.id)).response, JSON.parse(kept.response));
    assert.deepEqual((await after.read(nextRef, next.id)).response, JSON.parse(next.response));
    const lines = (await readFile(path.join(dir, 'decisions-2026-11-23.jsonl'), 'utf8')).split('\n');
    assert.ok(lines[1]?.startsWith('{"id":"torn"'), 'the torn line stays alone on its line');
    assert.ok(lines[2]?.startsWith(`{"id":"${next.id}"`), 'the next decision starts a line of its own');
    after.close();
  });

  it('starts a new segment each UTC day', async () => {
    const segments = new DocumentSegments(await freshDir());
    await segments.init();
    const [a] = segments.append([texts()], new Date('2026-11-23T23:59:59.999Z'));
    const [b] = segments.append([texts()], new Date('2026-11-24T00:00:00.000Z'));
    assert.equal(a?.segment, 'decisions-2026-11-23.jsonl');
    assert.deepEqual(b, { segment: 'decisions-2026-11-24.jsonl', offset: 0, length: b?.length });
    segments.close();
  });

  it('purges only segments older than the cutoff day that nothing points into, never today\'s or yesterday\'s', async () => {
    const segments = new DocumentSegments(await freshDir());
    await segments.init();
    for (const day of ['2026-11-20', '2026-11-21', '2026-11-22']) segments.append([texts()], new Date(`${day}T12:00:00.000Z`));
    await writeFile(path.join(segments.dir, 'notes.txt'), 'not a segment');
    const asked: string[] = [];
    const purge = (cutoffDay: string) =>
      segments.purgeBefore(
        cutoffDay,
        async (segment) => {
          asked.push(segment);
          return segment === 'decisions-2026-11-20.jsonl';
        },
        new Date('2026-11-23T12:00:00.000Z'),
      );
    const deleted = await purge('2026-11-24');
    // 2026-11-22 is yesterday: the writer may still be appending to it; not even asked about.
    assert.deepEqual(asked, ['decisions-2026-11-20.jsonl', 'decisions-2026-11-21.jsonl']);
    assert.deepEqual(deleted, ['decisions-2026-11-21.jsonl']);
    assert.deepEqual((await readdir(segments.dir)).sort(), ['decisions-2026-11-20.jsonl', 'decisions-2026-11-22.jsonl', 'notes.txt']);
    segments.close();
  });
});

describe('the embedded store keeps documents in segments', () => {
  async function open() {
    const dataDir = await freshDir();
    let driver: SqlDriver | undefined;
    const store = await openDecisionStoreWith({ dataDir, logger: silent }, (d) => (driver = d));
    assert.ok(driver);
    return { dataDir, store, driver };
  }

  it('writes the documents to a segment and only their place to the row; a lookup reads them back', async () => {
    const { dataDir, store, driver } = await open();
    try {
      const responseJson = '{"cards":[{"summary":"as sent \\u2713, ✓ and 🧬"}],"systemActions":[]}';
      const record = { ...makeRecord(), responseJson };
      await store.save(record);
      const [row] = await driver.query<{ evidence: string | null; response: string | null; documents_segment: string | null }>(
        'SELECT evidence, response, documents_segment FROM decisions WHERE id = $1',
        [record.id],
      );
      assert.equal(row?.evidence, null);
      assert.equal(row?.response, null);
      assert.match(row?.documents_segment ?? '', /^decisions-\d{4}-\d{2}-\d{2}\.jsonl$/);
      const [order] = await driver.query<{ criteria: string | null }>('SELECT criteria FROM decision_orders WHERE decision_id = $1', [record.id]);
      assert.equal(order?.criteria, null);
      // The segment holds the response byte for byte as it was sent.
      const file = await readFile(path.join(dataDir, 'documents', row?.documents_segment ?? ''), 'utf8');
      assert.ok(file.includes(`"response":${responseJson}`));

      const found = await store.findByAssertionId(record.assertionIds[0] ?? '');
      assert.equal(found?.documentsError, undefined);
      assert.deepEqual(found?.response, JSON.parse(responseJson));
      assert.deepEqual(found?.evidence, record.evidence);
      assert.deepEqual(found?.orders[0]?.criteria, record.orders[0]?.criteria);
    } finally {
      await store.close();
    }
  });

  it('a segment that is gone is reported with the decision, not thrown', async () => {
    const { dataDir, store } = await open();
    try {
      const record = makeRecord();
      await store.save(record);
      const segmentsDir = path.join(dataDir, 'documents');
      for (const name of await readdir(segmentsDir)) await unlink(path.join(segmentsDir, name));
      const found = await store.findByAssertionId(record.assertionIds[0] ?? '');
      assert.ok(found);
      assert.equal(found.id, record.id);
      assert.equal(found.orders[0]?.covered, record.orders[0]?.covered);
      assert.equal(found.response, null);
      assert.equal(found.evidence, null);
      assert.match(found.documentsError ?? '', /could not be read from decisions-.*ENOENT/);
      // Through the admin lookup: still a 200 with what is known, never a 5xx.
      const app = express();
      const router = createDecisionsRouter({ store, adminToken: 'admin-secret' });
      assert.ok(router);
      app.use(router);
      const res = await request(app).get(`/decisions/${record.assertionIds[0] ?? ''}`).set('authorization', 'Bearer admin-secret');
      assert.equal(res.status, 200);
      assert.equal(res.body.id, record.id);
      assert.equal(res.body.response, null);
      assert.match(res.body.documentsError, /could not be read/);
    } finally {
      await store.close();
    }
  });

  it('purge deletes old segments once no decision points into them, and keeps those still in use', async () => {
    const { dataDir, store, driver } = await open();
    try {
      const old = makeRecord({ receivedAt: '2026-01-10T08:00:00.000Z', respondedAt: '2026-01-10T08:00:00.100Z' });
      // Received after midnight but written to the day before's segment: a clock set back.
      const skewed = makeRecord({ receivedAt: '2026-01-13T01:00:00.000Z', respondedAt: '2026-01-13T01:00:00.100Z' });
      await store.save(old);
      await store.save(skewed);
      const segmentsDir = path.join(dataDir, 'documents');
      const [today] = await readdir(segmentsDir);
      assert.ok(today);
      for (const [record, day] of [
        [old, '2026-01-10'],
        [skewed, '2026-01-12'],
      ] as const) {
        await copyFile(path.join(segmentsDir, today), path.join(segmentsDir, `decisions-${day}.jsonl`));
        await driver.query('UPDATE decisions SET documents_segment = $2 WHERE id = $1', [record.id, `decisions-${day}.jsonl`]);
      }

      assert.equal(await store.purgeOlderThan(new Date('2026-01-11T00:00:00.000Z')), 1);
      assert.deepEqual((await readdir(segmentsDir)).sort(), ['decisions-2026-01-12.jsonl', today].sort());
      // Older than the cutoff's day, but a kept decision still points into it: stays.
      assert.equal(await store.purgeOlderThan(new Date('2026-01-13T00:00:00.000Z')), 0);
      assert.ok((await readdir(segmentsDir)).includes('decisions-2026-01-12.jsonl'));
      const found = await store.findByAssertionId(skewed.assertionIds[0] ?? '');
      assert.equal(found?.documentsError, undefined);
      assert.deepEqual(found?.evidence, skewed.evidence);

      assert.equal(await store.purgeOlderThan(new Date('2026-01-14T00:00:00.000Z')), 1);
      // The segment being written stays whatever it holds.
      assert.deepEqual(await readdir(segmentsDir), [today]);
    } finally {
      await store.close();
    }
  });
});
