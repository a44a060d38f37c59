// The policy data itself: every shipped version loads, cites its sections, and is listed in the
// README with its dates; the loader rejects data that would be ambiguous or dangling.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import request from 'supertest';
import { PolicyDataError } from '../../policies/registry.ts';
import { ROOT, shippedRegistry, testApp } from '../support/app.ts';
import { editedPolicies, editJson } from './helpers.ts';

type Json = Record<string, unknown>;

describe('shipped policy data', () => {
  const registry = shippedRegistry();

  it('the five seed policies load, in eight versions', () => {
    const numbers = registry.policies.map((p) => `${p.doc.payer} ${p.doc.policyNumber} ${p.doc.version}`).sort();
    assert.deepEqual(numbers, [
      'bcbsms L.5.01.594 2023-07-01',
      'bcbsms L.5.01.594 2025-01-15',
      'bcbsms L.5.01.594 2025-12-02',
      'bcbsms L.5.01.628 2025-11-01',
      'bcbsms L.5.01.628 2026-01-01',
      'cigna 1701 2024-07-01',
      'jefferson-health-plans DR.005.D D',
      'wellcare-nc WNC.CP.299 2025-01',
    ]);
  });

  it('every criterion, rule, note, instruction, companion service and definition cites a section of its source', () => {
    for (const { doc } of registry.policies) {
      const entries = [...doc.criteria, ...doc.coverageRules, ...(doc.notes ?? []), ...(doc.instructions ?? []), ...(doc.companionServices ?? []), ...(doc.definitions ?? [])];
      for (const entry of entries) assert.ok(entry.section.trim().length > 0, `${doc.id}: ${JSON.stringify(entry).slice(0, 80)}`);
      assert.match(doc.source.document, /^\.\.\/shared\/seeds\/00[0-4]_/);
    }
  });

  it('the README table lists every version with its file id and effective range', () => {
    const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    for (const { doc } of registry.policies) {
      const row = readme.split('\n').find((l) => l.includes(`\`${doc.id}\``));
      assert.ok(row, `README row for ${doc.id}`);
      const range = `${doc.effective.start} → ${doc.effective.end ?? ''}`.trimEnd();
      assert.ok(row.includes(range), `${doc.id}: README says ${row}, data says ${range}`);
      assert.ok(row.includes(doc.policyNumber), `${doc.id}: policy number`);
    }
  });

  it('every version has a policy page (the card link) showing its criteria with their sections, and its definitions', async () => {
    const app = testApp().app;
    for (const { doc } of registry.policies) {
      const page = await request(app).get(`/policies/${doc.id}`).set('Accept', 'text/html');
      assert.equal(page.status, 200, doc.id);
      for (const criterion of doc.criteria) assert.ok(page.text.includes(criterion.section.replace(/&/g, '&amp;')), `${doc.id}: ${criterion.section}`);
      for (const definition of doc.definitions ?? []) assert.ok(page.text.includes(`<dt>${definition.term.replace(/&/g, '&amp;')}`), `${doc.id}: ${definition.term}`);
      for (const companion of doc.companionServices ?? []) assert.ok(page.text.includes(companion.label), `${doc.id}: ${companion.label}`);
    }
  });

  it('every cell or gene therapy in the catalog has FDA label facts with a source and a status', () => {
    for (const product of registry.catalog.all().filter((p) => p.categories.includes('cell-gene-therapy'))) {
      assert.ok(product.label, product.id);
      assert.ok(product.label.source.length > 0, product.id);
      assert.ok(['V', 'S', 'UNVERIFIED'].includes(product.label.status), product.id);
      assert.notEqual(product.label.medicaidDrugRebate, undefined, `${product.id}: rebate program fact stated (true, false or UNVERIFIED)`);
    }
  });
});

describe('the loader rejects ambiguous or dangling policy data', () => {
  const policy = (dir: string, id: string) => path.join(dir, 'data', `${id}.json`);

  it('two versions of one policy in effect on the same day', () => {
    assert.throws(
      () => editedPolicies((dir) => editJson(policy(dir, 'bcbsms-l501628-zevaskyn-2026-01-01'), (d) => ((d.effective as Json).start = '2025-12-15'))),
      (error: Error) => error instanceof PolicyDataError && /field \/effective overlaps version 2025-11-01 of L\.5\.01\.628/.test(error.message),
    );
  });

  it('a treatment-site check naming an unknown registry, or a registry of another payer', () => {
    const setRegistry = (value: string) => (dir: string) =>
      editJson(policy(dir, 'wellcare-nc-wnc-cp-299-2025-01'), (d) => {
        const qtc = (d.criteria as Json[]).find((c) => c.id === 'qualified-treatment-center')!;
        (qtc.check as Json).registry = value;
      });
    assert.throws(() => editedPolicies(setRegistry('no-such-registry')), /names unknown treatment-site registry "no-such-registry"/);
    assert.throws(
      () =>
        editedPolicies((dir) => {
          editJson(path.join(dir, 'treatment-centers.json'), (d) => ((d.registries as Json[])[0]!.payer = 'cigna'));
        }),
      /names registry "wellcare-nc-qtc" of another payer \(cigna\)/,
    );
  });

  it('a companion service naming an unknown value set', () => {
    assert.throws(
      () => editedPolicies((dir) => editJson(policy(dir, 'wellcare-nc-wnc-cp-299-2025-01'), (d) => ((d.companionServices as Json[])[0]!.orderCodes = 'no-such-codes'))),
      /field \/companionServices\/0\/orderCodes names unknown value set "no-such-codes"/,
    );
  });

  it('an advisory coverage rule that is not conditional', () => {
    assert.throws(
      () => editedPolicies((dir) => editJson(policy(dir, 'bcbsms-l501594-hemophilia-b-2025-12-02'), (d) => ((d.coverageRules as Json[])[0]!.effect = 'note'))),
      /field \/coverageRules\/0\/criteriaAdvisory is only meaningful for a conditional rule/,
    );
  });

  it('a note restricted to an unknown product, and an unknown check type', () => {
    assert.throws(
      () => editedPolicies((dir) => editJson(policy(dir, 'cigna-1701-2024-07-01'), (d) => ((d.notes as Json[])[3]!.products = ['no-such-product']))),
      /field \/notes\/3\/products names unknown product "no-such-product"/,
    );
    assert.throws(
      () => editedPolicies((dir) => editJson(policy(dir, 'cigna-1701-2024-07-01'), (d) => ((d.criteria as Json[])[0]!.check = { type: 'guess' }))),
      (error: Error) => error instanceof PolicyDataError && /cigna-1701-2024-07-01\.json/.test(error.message),
    );
  });
});
