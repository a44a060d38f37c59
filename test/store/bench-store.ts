// Decision-store throughput: saves/s one at a time (one commit each) and with N concurrent
// callers (group commit), plus main-thread CPU per save, the cost the service itself pays.
//   node --import tsx test/store/bench-store.ts [--pg URL] [--n 4000] [--concurrency 200]
import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { openDecisionStore } from '../../server/store/index.ts';
import { makeRecord, silent, tempDir } from './helpers.ts';

const { values } = parseArgs({ options: { pg: { type: 'string' }, n: { type: 'string', default: '4000' }, concurrency: { type: 'string', default: '200' } } });
const n = Number(values.n);
const concurrency = Number(values.concurrency);

// ~4 KB, like a real record: one order, six criteria, an evidence bundle, a response with one card.
function realistic() {
  const r = makeRecord();
  const card = r.cardUuids[0] ?? randomUUID();
  return {
    ...r,
    evidence: {
      resourceType: 'Bundle',
      type: 'collection',
      entry: Array.from({ length: 8 }, (_, i) => ({
        resource: { resourceType: 'Observation', id: `o${i}`, status: 'final', code: { coding: [{ system: 'http://loinc.org', code: '1234-5', display: 'A laboratory test' }] }, valueQuantity: { value: 12.5, unit: 'mg/dL' } },
      })),
    },
    response: {
      cards: [{ uuid: card, summary: 'Prior authorization required', indicator: 'info', source: { label: 'Payer A' }, detail: 'x'.repeat(600) }],
      systemActions: [{ type: 'update', resource: { resourceType: 'MedicationRequest', id: 'mr', extension: [{ url: 'http://hl7.org/fhir/us/davinci-crd/StructureDefinition/ext-coverage-information', extension: Array.from({ length: 6 }, (_, i) => ({ url: `k${i}`, valueString: 'v'.repeat(40) })) }] } }],
    },
  };
}

const dataDir = await tempDir('crd-bench-');
const store = await openDecisionStore({ dataDir, databaseUrl: values.pg, logger: silent });
console.log(`engine ${store.engine}, record ${JSON.stringify(realistic()).length} bytes`);

// Warm up (JIT, prepared plans).
await Promise.all(Array.from({ length: 200 }, () => store.save(realistic())));

const single = Math.min(n, 500);
let t = performance.now();
for (let i = 0; i < single; i++) await store.save(realistic());
console.log(`one at a time:      ${Math.round((single * 1000) / (performance.now() - t))} saves/s`);

const records = Array.from({ length: n }, realistic);
let next = 0;
const cpu0 = process.cpuUsage();
const elu0 = performance.eventLoopUtilization();
t = performance.now();
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
console.log(`${concurrency} concurrent:     ${Math.round((n * 1000) / ms)} saves/s (group commit)`);
// process.cpuUsage counts every thread of the process, PGlite's worker included.
console.log(`process CPU per save: ${((cpu.user + cpu.system) / 1000 / n).toFixed(3)} ms`);
// What the service's own thread pays: its event loop's busy time per save.
console.log(`main-thread busy per save: ${(elu.active / n).toFixed(3)} ms`);

await store.close();
await rm(dataDir, { recursive: true, force: true });
