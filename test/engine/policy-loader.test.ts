import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { loadPolicyRegistry, PolicyDataError } from '../../policies/registry.ts';
import { ROOT } from '../support/app.ts';

/** Bad policy data must stop startup with a message naming the file and the field. */

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function copyOfPolicies(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'policies-'));
  dirs.push(dir);
  const target = path.join(dir, 'policies');
  cpSync(path.join(ROOT, 'policies'), target, { recursive: true, filter: (src) => !src.endsWith('.ts') });
  return target;
}

function editJson(file: string, edit: (doc: Record<string, unknown>) => void): void {
  const doc = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  edit(doc);
  writeFileSync(file, JSON.stringify(doc));
}

const ZOLGENSMA = 'data/jefferson-dr005d-zolgensma.json';

function expectFailure(dir: string, pattern: RegExp): void {
  assert.throws(() => loadPolicyRegistry(dir), (error: unknown) => {
    assert.ok(error instanceof PolicyDataError, String(error));
    assert.match(error.message, pattern);
    return true;
  });
}

describe('policy data validation at startup', () => {
  test('the shipped data loads', () => {
    const registry = loadPolicyRegistry(path.join(ROOT, 'policies'));
    assert.ok(registry.policy('jefferson-dr005d-zolgensma'));
  });

  test('a wrong enum value names the file and the field', () => {
    const dir = copyOfPolicies();
    editJson(path.join(dir, ZOLGENSMA), (doc) => {
      (doc.criteria as { check: { type: string } }[])[4]!.check.type = 'agee';
    });
    expectFailure(dir, /jefferson-dr005d-zolgensma\.json: field \/criteria\/4\/check/);
  });

  test('an unknown value set is named with its location', () => {
    const dir = copyOfPolicies();
    editJson(path.join(dir, ZOLGENSMA), (doc) => {
      (doc.criteria as { check: { valueSet?: string } }[])[0]!.check.valueSet = 'no-such-set';
    });
    expectFailure(dir, /field \/criteria\/0\/check\/valueSet names unknown value set "no-such-set"/);
  });

  test('invalid FHIRPath is caught at load, not at the first request', () => {
    const dir = copyOfPolicies();
    editJson(path.join(dir, ZOLGENSMA), (doc) => {
      const check = (doc.criteria as { check: { checks: { where?: string }[] } }[])[1]!.check;
      check.checks[1]!.where = 'component.where(code = ';
    });
    expectFailure(dir, /field \/criteria\/1\/check\/checks\/1\/where is not valid FHIRPath/);
  });

  test('an unknown payer, a misspelled property, and broken JSON', () => {
    let dir = copyOfPolicies();
    editJson(path.join(dir, ZOLGENSMA), (doc) => {
      doc.payer = 'acme';
    });
    expectFailure(dir, /field \/payer names unknown payer "acme"/);
    dir = copyOfPolicies();
    editJson(path.join(dir, ZOLGENSMA), (doc) => {
      doc.prioAuth = 'always';
    });
    expectFailure(dir, /additional properties "prioAuth"/);
    dir = copyOfPolicies();
    writeFileSync(path.join(dir, 'payers.json'), '{"payers": [');
    expectFailure(dir, /payers\.json: not readable JSON/);
  });
});
