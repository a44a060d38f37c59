import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { createLogger } from '../../server/logger.ts';
import type { SqlDriver } from '../../server/store/sql-driver.ts';
import type { DecisionRecord } from '../../server/store/types.ts';

export const silent = createLogger('silent');

export interface StoreTarget {
  dataDir: string;
  databaseUrl?: string;
  cleanup(): Promise<void>;
}

/** How the shared suite gets a fresh, isolated store location on one engine. */
export interface Engine {
  name: 'pglite' | 'postgres';
  fresh(): Promise<StoreTarget>;
}

export async function tempDir(prefix = 'crd-store-'): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), prefix));
}

export const pgliteEngine: Engine = {
  name: 'pglite',
  async fresh() {
    const dataDir = await tempDir();
    return { dataDir, cleanup: () => rm(dataDir, { recursive: true, force: true }) };
  },
};

/** Adds a search_path to a connection URL, so each test store lives in its own schema. */
export function withSchema(url: string, schema: string): string {
  const u = new URL(url);
  u.searchParams.set('options', `-c search_path=${schema}`);
  return u.toString();
}

export function postgresEngine(baseUrl: string): Engine {
  return {
    name: 'postgres',
    async fresh() {
      const dataDir = await tempDir();
      const schema = `t_${randomUUID().replace(/-/g, '').slice(0, 16)}`;
      const admin = new pg.Client({ connectionString: baseUrl });
      await admin.connect();
      await admin.query(`CREATE SCHEMA ${schema}`);
      await admin.end();
      return {
        dataDir,
        databaseUrl: withSchema(baseUrl, schema),
        async cleanup() {
          const c = new pg.Client({ connectionString: baseUrl });
          await c.connect();
          await c.query(`DROP SCHEMA ${schema} CASCADE`);
          await c.end();
          await rm(dataDir, { recursive: true, force: true });
        },
      };
    },
  };
}

let seq = 0;

/** A realistic record; every id in it is unique. */
export function makeRecord(overrides: Partial<DecisionRecord> = {}): DecisionRecord {
  const n = ++seq;
  const assertionId = `asrt-${randomUUID()}`;
  const card = randomUUID();
  const now = new Date().toISOString();
  return {
    id: randomUUID(),
    receivedAt: now,
    respondedAt: now,
    clientIss: 'https://ehr.example.org',
    serviceId: 'gene-therapy-order-sign',
    hook: 'order-sign',
    hookInstance: randomUUID(),
    patientId: `pat-${n}`,
    payerId: 'payer-a',
    orders: [
      {
        orderReference: `MedicationRequest/mr-${n}`,
        productId: 'onasemnogene-abeparvovec',
        policyId: 'payer-a-zolgensma',
        policyVersion: '2024-03',
        coverageReference: 'Coverage/cov-1',
        assertionId,
        covered: 'conditional',
        paNeeded: 'auth-needed',
        criteria: [
          { id: 'age', result: 'met', evidence: ['Patient/p'] },
          { id: 'aav9-titer', result: 'met', evidence: [`Observation/obs-${n}`] },
        ],
      },
    ],
    assertionIds: [assertionId],
    cardUuids: [card],
    evidence: { resourceType: 'Bundle', type: 'collection', entry: [{ resource: { resourceType: 'Observation', id: `obs-${n}`, status: 'final' } }] },
    response: { cards: [{ uuid: card, summary: 'Prior authorization needed', indicator: 'info', source: { label: 'Payer A' } }], systemActions: [] },
    ...overrides,
  };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls until fn returns a value other than undefined, or fails after timeoutMs. */
export async function eventually<T>(fn: () => Promise<T | undefined>, timeoutMs = 15_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** Switchable faults around a real driver: "down" fails like a refused connection, delayMs stalls. */
export class Faults {
  down = false;
  delayMs = 0;
  /** ids whose insert statement has returned (i.e. committed) */
  readonly committed = new Set<string>();
  insertCalls = 0;

  wrap(driver: SqlDriver): SqlDriver {
    const gate = async (): Promise<void> => {
      if (this.delayMs > 0) await sleep(this.delayMs);
      if (this.down) throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1 (simulated)'), { code: 'ECONNREFUSED' });
    };
    const isInsert = (sql: string): boolean => sql.includes('store_decision(');
    // Each store_decision call's first argument is the record's small fields as JSON.
    const storedIds = (sql: string, params: unknown[] | undefined): string[] =>
      [...sql.matchAll(/store_decision\(\$(\d+)::text::jsonb/g)].map((m) => (JSON.parse(String(params?.[Number(m[1]) - 1])) as { id: string }).id);
    const counted = <R>(sql: string, params: unknown[] | undefined, rows: R[]): R[] => {
      if (isInsert(sql)) {
        this.insertCalls++;
        for (const id of storedIds(sql, params)) this.committed.add(id);
      }
      return rows;
    };
    const storeWithDocuments = driver.storeWithDocuments?.bind(driver);
    return {
      engine: driver.engine,
      query: async <R>(sql: string, params?: unknown[]) => {
        await gate();
        return counted(sql, params, await driver.query<R>(sql, params));
      },
      exec: async (sql) => {
        await gate();
        await driver.exec(sql);
      },
      transaction: async (fn) => {
        await gate();
        return driver.transaction(fn);
      },
      close: () => driver.close(),
      ...(storeWithDocuments
        ? {
            storeWithDocuments: async <R>(documents: Parameters<typeof storeWithDocuments>[0], sql: string, params: unknown[]) => {
              await gate();
              return counted(sql, params, await storeWithDocuments<R>(documents, sql, params));
            },
          }
        : {}),
    };
  }
}
