// Decision-store cost with the records the service really writes: saves/s and CPU per save at
// several concurrencies (1: every save its own commit; more: group commit), for the whole process
// (PGlite's worker included) and for the service's own thread.
//   node --import tsx test/store/bench-store.ts [--pg URL] [--n 1200] [--concurrency 1,16,64]
import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import request from 'supertest';
import { benchBody, HOOK_INSTANCE_PLACEHOLDER } from '../../bench/body.ts';
import { openDecisionStore } from '../../server/store/index.ts';
import type { DecisionRecord } from '../../server/store/types.ts';
import { ORDER_SIGN, testApp } from '../support/app.ts';
import { silent, tempDir } from './helpers.ts';

const { values } = parseArgs({
  options: { pg: { type: 'string' }, n: { type: 'string', default: '1200' }, concurrency: { type: 'string', default: '1,16,64' }, rounds: { type: 'string', default: '3' } },
});
const n = Number(values.n);
const rounds = Number(values.rounds);
const concurrencies = (values.concurrency ?? '1').split(',').map(Number);

/** The record the hook route hands to the store for the bench's 74 KiB Zolgensma order-sign. */
async function serviceRecord(): Promise<DecisionRecord> {
  let captured: DecisionRecord | undefined;
  const { app } = testApp({}, {
    recorder: {
      record: async (r) => {
        captured = r;
      },
      health: async () => ({ ok: true, engine: 'capture', spooled: 0 }),
    },
  });
  const body = benchBody('order-sign').replace(HOOK_INSTANCE_PLACEHOLDER, randomUUID());
  const res = await request(app).post(ORDER_SIGN).set('content-type', 'application/json').send(body);
  if (res.status !== 200 || !captured) throw new Error(`the service did not answer the bench request (${res.status})`);
  return captured;
}

const template = await serviceRecord();
/** A fresh copy with its own ids, as each hook call has. */
function record(): DecisionRecord {
  const assertionId = randomUUID();
  return {
    ...template,
    id: randomUUID(),
    assertionIds: template.assertionIds.map(() => assertionId),
    cardUuids: template.cardUuids.map(() => randomUUID()),
    orders: template.orders.map((o) => ({ ...o, assertionId: o.assertionId ? assertionId : null })),
  };
}

const dataDir = await tempDir('crd-bench-');
const store = await openDecisionStore({ dataDir, databaseUrl: values.pg, logger: silent });
const bytes = JSON.stringify(template).length;
console.log(`engine ${store.engine}; record as the service writes it: ${(bytes / 1024).toFixed(1)} KiB (evidence, response, criteria)`);

// Warm up (JIT, the session's cached plans).
await Promise.all(Array.from({ length: 300 }, () => store.save(record())));

for (const concurrency of concurrencies) {
  // The least disturbed of a few rounds: this machine is shared.
  let best: { cpu: number; main: number; rate: number } | undefined;
  for (let round = 0; round < rounds; round++) {
    const records = Array.from({ length: n }, record);
    let next = 0;
    const cpu0 = process.cpuUsage();
    const elu0 = performance.eventLoopUtilization();
    const t = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < records.length) {
          const r = records[next++];
          if (r) await store.save(r);
        }
      }),
    );
    const ms = performance.now() - t;
    const cpu = process.cpuUsage(cpu0);
    const elu = performance.eventLoopUtilization(elu0);
    // process.cpuUsage counts every thread of the process, PGlite's worker included; the event
    // loop's busy time is what the service's own thread pays.
    const sample = { cpu: (cpu.user + cpu.system) / 1000 / n, main: elu.active / n, rate: (n * 1000) / ms };
    if (!best || sample.cpu < best.cpu) best = sample;
  }
  if (best) {
    console.log(
      `concurrency ${String(concurrency).padStart(3)}: ${best.rate.toFixed(0).padStart(5)} saves/s, ` +
        `process CPU ${best.cpu.toFixed(2)} ms/save, service thread ${best.main.toFixed(2)} ms/save`,
    );
  }
}

await store.close();
await rm(dataDir, { recursive: true, force: true });
