// Runs PGlite in a worker thread: its WASM backend executes synchronously, and ~0.2 ms of CPU
// per stored record on the service's main thread would cost far more than the 20 % budget.
import { mkdir } from 'node:fs/promises';
import { parentPort, workerData } from 'node:worker_threads';
import { PGlite, types } from '@electric-sql/pglite';
import { DocumentSegments } from './documents.ts';
import type { WorkerReply, WorkerRequest } from './pglite-driver.ts';

const { dir, documentsDir } = workerData as { dir: string; documentsDir: string | undefined };
const segments = documentsDir ? new DocumentSegments(documentsDir) : undefined;
const port = parentPort;
if (!port) throw new Error('pglite-worker must run in a worker thread');

function errorReply(id: number, err: unknown): WorkerReply {
  const e = err as { message?: unknown; code?: unknown; name?: unknown };
  return {
    id,
    ok: false,
    error: {
      message: typeof e?.message === 'string' ? e.message : String(err),
      ...(typeof e?.code === 'string' ? { code: e.code } : {}),
      ...(typeof e?.name === 'string' ? { name: e.name } : {}),
    },
  };
}

const utf8 = new TextEncoder();
/**
 * Text parameters travel as UTF-8 bytes, i.e. in the protocol's binary format, which for `text`
 * is exactly those bytes. PGlite writes a string parameter by counting its UTF-8 length in a
 * JavaScript loop, twice, then encoding it; bytes are copied natively. While the documents
 * (~20 KB per decision) still went through PGlite that loop was the largest single cost of a
 * save; it still applies to each decision's JSON fields and to the documents of stores opened
 * without segments. (PGlite's Serializer type says string; its bind message also takes bytes.)
 */
function textParameter(value: unknown): string {
  return (typeof value === 'string' ? utf8.encode(value) : String(value)) as unknown as string;
}

try {
  await mkdir(dir, { recursive: true });
  await segments?.init();
  const db = await PGlite.create(dir, { serializers: { [types.TEXT]: textParameter } });
  port.on('message', (req: WorkerRequest) => {
    const run = async (): Promise<WorkerReply> => {
      switch (req.kind) {
        case 'query':
          return { id: req.id, ok: true, rows: (await db.query(req.sql, req.params)).rows };
        case 'store': {
          if (!segments) throw new Error('this PGlite worker keeps no document segments');
          // Documents first: a row never points at documents not yet written.
          const places = JSON.stringify(segments.append(req.documents));
          return { id: req.id, ok: true, rows: (await db.query(req.sql, [...req.params, places])).rows };
        }
        case 'exec':
          await db.exec(req.sql);
          return { id: req.id, ok: true, rows: [] };
        case 'close':
          segments?.close();
          await db.close();
          return { id: req.id, ok: true, rows: [] };
      }
    };
    // A reply is posted only after PGlite returned, i.e. after the commit reached the files.
    run().then(
      (reply) => {
        port.postMessage(reply);
        if (req.kind === 'close') port.close();
      },
      (err: unknown) => port.postMessage(errorReply(req.id, err)),
    );
  });
  port.postMessage({ id: 0, ok: true, rows: [] } satisfies WorkerReply);
} catch (err) {
  port.postMessage(errorReply(0, err));
}
