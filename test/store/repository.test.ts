import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { prepareDecision, spoolLine } from '../../server/store/repository.ts';
import { normalizeRecord } from '../../server/store/validate.ts';
import { makeRecord } from './helpers.ts';

/** A save is serialised at once; the spool line is assembled around those texts. */
describe('prepared decisions', () => {
  it('a spool line is the JSON of the record, documents included, and reads back as the same record', () => {
    const record = normalizeRecord(
      makeRecord({
        evidence: { resourceType: 'Bundle', note: 'quotes " and \\ and ✓ and a NUL\u0000' },
        orders: [
          { ...makeRecord().orders[0]!, orderReference: 'MedicationRequest/a', criteria: { results: [{ id: 'x', status: 'met' }] } },
          { ...makeRecord().orders[0]!, orderReference: 'MedicationRequest/b', assertionId: null, criteria: null },
        ],
      }),
    );
    const line = spoolLine(prepareDecision(record));
    assert.ok(!line.includes('\n'), 'one line');
    assert.deepEqual(JSON.parse(line), record);
  });

  it('keeps the response text as sent, and the spool line carries it', () => {
    const sent = '{"cards":[{"summary":"as sent"}],"systemActions":[]}';
    const prepared = prepareDecision(normalizeRecord({ ...makeRecord(), response: { cards: [] }, responseJson: sent }));
    assert.equal(prepared.response, sent);
    assert.deepEqual((JSON.parse(spoolLine(prepared)) as { response: unknown }).response, JSON.parse(sent));
  });

  it('holds only text, not the documents it was given', () => {
    const evidence = { resourceType: 'Bundle', entry: [{ resource: { resourceType: 'Patient', id: 'p' } }] };
    const prepared = prepareDecision(normalizeRecord(makeRecord({ evidence })));
    evidence.entry[0]!.resource.id = 'changed later';
    assert.equal(typeof prepared.evidence, 'string');
    assert.ok(prepared.evidence?.includes('"id":"p"'));
    assert.ok(prepared.criteria.every((c) => c === null || typeof c === 'string'));
  });
});
