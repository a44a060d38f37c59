import { startTsWorker } from '../ts-worker.ts';
import type { DocumentTexts } from './documents.ts';
import type { SqlDriver, SqlExecutor } from './sql-driver.ts';

export type WorkerRequest =
  | { id: number; kind: 'query'; sql: string; params: unknown[] | undefined }
  | { id: number; kind: 'exec'; sql: string }
  | { id: number; kind: 'store'; documents: DocumentTexts[]; sql: string; params: unknown[] }
  | { id: number; kind: 'close' };

export type WorkerReply =
  | { id: number; ok: true; rows: unknown[] }
  | { id: number; ok: false; error: { message: string; code?: string; name?: string } };

type NewRequest = WorkerRequest extends infer R ? (R extends WorkerRequest ? Omit<R, 'id'> : never) : never;

type Pending = { resolve: (rows: unknown[]) => void; reject: (err: unknown) => void };

/** An error from the worker, keeping the SQLSTATE `code` the store classifies errors by. */
class PgliteError extends Error {
  readonly code: string | undefined;
  constructor(error: { message: string; code?: string; name?: string }) {
    super(error.message);
    this.name = error.name ?? 'PgliteError';
    this.code = error.code;
  }
}

/**
 * Embedded PostgreSQL (PGlite, WASM) on the local filesystem, run in a worker thread. PGlite
 * writes its files with synchronous write(2) calls, so a committed statement is in the kernel
 * when the worker replies and survives SIGKILL of the process. PGlite starts postgres with fsync
 * off, so it does not survive power loss or a kernel crash: use PostgreSQL for that.
 *
 * PGlite has one session, so this side runs one statement at a time and a transaction holds
 * that turn from BEGIN to COMMIT.
 */
export async function openPgliteDriver(dir: string, documentsDir?: string): Promise<SqlDriver> {
  const worker = startTsWorker(new URL('./pglite-worker.ts', import.meta.url), { workerData: { dir, documentsDir } });
  const pending = new Map<number, Pending>();
  let nextId = 1;
  let gone: Error | undefined;

  const failAll = (err: Error): void => {
    gone = err;
    for (const p of pending.values()) p.reject(err);
    pending.clear();
  };
  const ready = new Promise<void>((resolve, reject) => {
    pending.set(0, { resolve: () => resolve(), reject });
  });
  worker.on('message', (reply: WorkerReply) => {
    const p = pending.get(reply.id);
    if (!p) return;
    pending.delete(reply.id);
    if (reply.ok) p.resolve(reply.rows);
    else p.reject(new PgliteError(reply.error));
  });
  worker.on('error', (err) => failAll(new Error(`PGlite worker failed: ${err.message}`)));
  worker.on('exit', (code) => failAll(new Error(`PGlite worker exited (${code})`)));

  const call = (req: NewRequest): Promise<unknown[]> => {
    if (gone) return Promise.reject(gone);
    const id = nextId++;
    return new Promise((resolve, reject) => {
      pending.set(id, { resolve, reject });
      worker.postMessage({ ...req, id });
    });
  };

  // One statement or transaction at a time, in submission order.
  let turn: Promise<unknown> = Promise.resolve();
  const exclusive = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = turn.then(fn, fn);
    turn = run.catch(() => undefined);
    return run;
  };

  const raw: SqlExecutor = {
    query: async <R>(sql: string, params?: unknown[]) => (await call({ kind: 'query', sql, params })) as R[],
    exec: async (sql: string) => {
      await call({ kind: 'exec', sql });
    },
  };

  try {
    await ready;
  } catch (err) {
    await worker.terminate();
    throw err;
  }

  return {
    engine: 'pglite',
    query: (sql, params) => exclusive(() => raw.query(sql, params)),
    exec: (sql) => exclusive(() => raw.exec(sql)),
    ...(documentsDir
      ? { storeWithDocuments: <R>(documents: DocumentTexts[], sql: string, params: unknown[]) => exclusive(async () => (await call({ kind: 'store', documents, sql, params })) as R[]) }
      : {}),
    transaction: (fn) =>
      exclusive(async () => {
        await raw.exec('BEGIN');
        try {
          const result = await fn(raw);
          await raw.exec('COMMIT');
          return result;
        } catch (err) {
          await raw.exec('ROLLBACK').catch(() => undefined);
          throw err;
        }
      }),
    close: () =>
      exclusive(async () => {
        if (gone) return;
        const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
        await call({ kind: 'close' }).catch(() => undefined);
        await exited;
      }),
  };
}
