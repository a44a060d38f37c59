import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { hookRequest, zolgensmaCase } from '../support/fixtures.ts';
import { ORDER_SIGN } from '../support/app.ts';
import { startService } from '../support/service-process.ts';

/**
 * CRD §found-37: a 200 is sent only after its decision record is committed. Drive concurrent
 * order-sign calls at the real service, SIGKILL it mid-load, restart it on the same store, and
 * check that every coverage-assertion-id received with a 200 can be looked up. Runs on the
 * embedded PGlite store and, when the test run provides one, on PostgreSQL.
 */

const ADMIN = 'durability-admin-token';
const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function assertionIdOf(body: { systemActions?: { resource?: { extension?: { url: string; extension?: { url: string; valueString?: string }[] }[] } }[] }): string | undefined {
  for (const action of body.systemActions ?? []) {
    for (const ext of action.resource?.extension ?? []) {
      const id = ext.extension?.find((e) => e.url === 'coverage-assertion-id')?.valueString;
      if (id) return id;
    }
  }
  return undefined;
}

async function killUnderLoad(env: Record<string, string>): Promise<void> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'crd-durability-'));
  dirs.push(dataDir);
  const serviceEnv = { CDS_DATA_DIR: dataDir, CDS_ADMIN_TOKEN: ADMIN, ...env };
  const first = await startService(serviceEnv);
  const acknowledged: string[] = [];
  let stop = false;
  const body = JSON.stringify(hookRequest(zolgensmaCase()));
  const worker = async () => {
    while (!stop) {
      try {
        const res = await fetch(`${first.baseUrl}${ORDER_SIGN}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
        if (res.status !== 200) continue;
        const id = assertionIdOf((await res.json()) as Parameters<typeof assertionIdOf>[0]);
        if (id) acknowledged.push(id);
      } catch {
        // the process was killed mid-request: that answer was never acknowledged
      }
    }
  };
  const workers = Array.from({ length: 12 }, () => worker());
  // Kill once a good number of answers were acknowledged, while requests are still in flight.
  const started = Date.now();
  while (acknowledged.length < 150 && Date.now() - started < 60_000) await new Promise((r) => setTimeout(r, 20));
  await first.kill9();
  stop = true;
  await Promise.all(workers);
  assert.ok(acknowledged.length >= 50, `enough acknowledged answers before the kill (${acknowledged.length})`);

  const second = await startService(serviceEnv);
  try {
    const missing: string[] = [];
    for (const id of acknowledged) {
      const res = await fetch(`${second.baseUrl}/decisions/${id}`, { headers: { authorization: `Bearer ${ADMIN}` } });
      if (res.status !== 200) missing.push(id);
      else {
        const stored = (await res.json()) as {
          assertionIds: string[];
          orders: { covered: string; criteria: unknown }[];
          response: Parameters<typeof assertionIdOf>[0];
          evidence: unknown;
          documentsError?: string;
        };
        assert.ok(stored.assertionIds.includes(id));
        assert.equal(stored.orders[0]?.covered, 'covered');
        // The documents survived with the row (the embedded engine keeps them in a segment file).
        assert.equal(stored.documentsError, undefined);
        assert.equal(assertionIdOf(stored.response), id);
        assert.ok(Array.isArray(stored.evidence) && stored.evidence.length > 0, 'evidence kept');
        assert.ok(stored.orders[0]?.criteria, 'criteria kept');
      }
    }
    assert.deepEqual(missing, [], `${missing.length} of ${acknowledged.length} acknowledged decisions were lost`);
  } finally {
    await second.stop();
  }
}

describe('no acknowledged decision is lost when the process is killed', { timeout: 300_000 }, () => {
  test('embedded PGlite store', async () => {
    await killUnderLoad({ HOOK_THREADS: '0' });
  });

  test('embedded PGlite store, calls answered on hook threads', async () => {
    await killUnderLoad({ HOOK_THREADS: '2' });
  });

  test('PostgreSQL store', { skip: process.env.SKIP_POSTGRES ? 'SKIP_POSTGRES set' : false }, async () => {
    const url = process.env.TEST_DATABASE_URL;
    assert.ok(url, 'npm test provides TEST_DATABASE_URL (scripts/run-tests.mjs starts a throwaway PostgreSQL)');
    await killUnderLoad({ DATABASE_URL: url });
  });
});
