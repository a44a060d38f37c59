import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CompiledValueSet, normaliseCode, normaliseNdc, systemKey } from '../../policies/engine/terminology.ts';
import { applyNumericTest, parseTiter, testValue, withComparator } from '../../policies/engine/values.ts';
import { convertUnit, quantityUnit } from '../../policies/engine/ucum.ts';
import { ageInYears, addMonths, describeAge, toDay } from '../../policies/engine/dates.ts';

describe('code systems and codes', () => {
  test('every accepted HCPCS URI maps to one system', () => {
    for (const uri of [
      'https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets',
      'http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets',
      'https://bluebutton.cms.gov/resources/codesystem/hcpcs',
    ]) {
      assert.equal(systemKey(uri), 'hcpcs');
    }
    assert.equal(systemKey('urn:oid:2.16.840.1.113883.3.221.5'), 'sopt');
    assert.equal(systemKey('http://lab.example.org/test-codes'), 'http://lab.example.org/test-codes');
  });

  test('NDC: 4-4-2, 5-3-2 and 5-4-1 hyphenated forms equal the 11-digit 5-4-2 form', () => {
    assert.equal(normaliseNdc('0053-0300-30'), '00053030030');
    assert.equal(normaliseNdc('71894-120-02'), '71894012002');
    assert.equal(normaliseNdc('73554-1111-1'), '73554111101');
    assert.equal(normaliseNdc('73554111101'), '73554111101');
    // A bare 10-digit NDC is ambiguous (which segment to pad?), so it is kept as sent.
    assert.equal(normaliseNdc('7189412002'), '7189412002');
  });

  test('ICD-10-CM dotted and dotless forms are the same code; HCPCS is upper case', () => {
    assert.equal(normaliseCode('icd-10-cm', 'g12.0'), 'G120');
    assert.equal(normaliseCode('icd-10-cm', 'G120'), 'G120');
    assert.equal(normaliseCode('hcpcs', ' j3399 '), 'J3399');
  });

  test('value sets match codes, prefixes, category ranges and exclusions', () => {
    const scd = new CompiledValueSet('scd', {
      title: 'sickle cell disease',
      include: [{ system: 'icd-10-cm', prefixes: ['D57'] }],
      exclude: [{ system: 'icd-10-cm', codes: ['D57.3'] }],
    });
    assert.ok(scd.matchesCoding({ system: 'icd-10-cm', code: 'D5700' }));
    assert.ok(!scd.matchesCoding({ system: 'icd-10-cm', code: 'D573' }), 'sickle-cell trait excluded');
    const infection = new CompiledValueSet('inf', { title: 'infection', include: [{ system: 'icd-10-cm', ranges: [['A00', 'B99'], ['J00', 'J22']] }] });
    for (const code of ['A000', 'B349', 'B99', 'J069', 'J22']) assert.ok(infection.matchesCoding({ system: 'icd-10-cm', code }), code);
    for (const code of ['C349', 'J40', 'J449']) assert.ok(!infection.matchesCoding({ system: 'icd-10-cm', code }), code);
  });

  test('text matching needs every pattern of a group', () => {
    const aav9 = new CompiledValueSet('aav9', { title: 'AAV9', include: [], textMatch: [['aav[- ]?9', 'antibod|titer']] });
    assert.ok(aav9.matches({ text: 'Anti-AAV9 total binding antibody' }));
    assert.ok(aav9.matches({ coding: [{ system: 'x', code: '1', display: 'AAV 9 Titer' }] }));
    assert.ok(!aav9.matches({ text: 'AAV9 vector lot' }));
    assert.ok(!aav9.matches({ text: 'AAV5 antibody' }));
  });
});

describe('titers as strings, ratios and quantities', () => {
  const cases: [unknown, number, string | undefined][] = [
    ['1:25', 25, undefined],
    ['<1:25', 25, '<'],
    ['>1:400', 400, '>'],
    ['≤1:50', 50, '<='],
    ['1/50', 50, undefined],
    ['Negative (<1:25)', 25, '<'],
    [{ numerator: { value: 1 }, denominator: { value: 25 } }, 25, undefined],
    [{ value: 25, comparator: '<', unit: '{titer}' }, 25, '<'],
    [{ value: 0.02 }, 50, undefined],
  ];
  for (const [raw, reciprocal, comparator] of cases) {
    test(`${JSON.stringify(raw)} → ${comparator ?? ''}${reciprocal}`, () => {
      const v = parseTiter(raw);
      assert.ok(v);
      const point = comparator === undefined;
      assert.equal(point ? v.lo : comparator.startsWith('<') ? v.hi : v.lo, reciprocal);
    });
  }
  test('unreadable titers are undefined, never zero', () => {
    for (const raw of ['pending', '', '1:', 'see report', { value: -1 }, null, 42n]) assert.equal(parseTiter(raw), undefined);
  });
});

describe('interval tests', () => {
  test('a comparator result is decided only when the whole interval is on one side', () => {
    assert.equal(testValue(withComparator(25, '<', '<25'), '<=', 50), true);
    assert.equal(testValue(withComparator(400, '>', '>400'), '<=', 50), false);
    assert.equal(testValue(withComparator(25, '>', '>25'), '<=', 50), undefined);
    assert.equal(testValue(withComparator(50, '<=', '≤50'), '<=', 50), true);
    assert.equal(testValue(withComparator(50, '>', '>50'), '<=', 50), false);
  });

  test('UCUM conversion before comparison; a bare number against a unit is undecidable', () => {
    assert.equal(applyNumericTest(withComparator(8400, undefined, '8400 g', 'g'), { comparator: '<=', value: 9, unit: 'kg' }), true);
    assert.equal(applyNumericTest(withComparator(41, undefined, '41', undefined), { comparator: '<=', value: 40, unit: 'kg/m2' }), undefined);
  });
});

describe('units and dates', () => {
  test('weights in kg, g and pounds', () => {
    assert.equal(convertUnit(8400, 'g', 'kg'), 8.4);
    assert.ok(Math.abs(convertUnit(20, '[lb_av]', 'kg')! - 9.0718474) < 1e-6);
    assert.equal(convertUnit(1, 'kg', 'mL'), undefined);
    assert.equal(quantityUnit({ value: 20, unit: 'lbs' }), '[lb_av]');
    assert.equal(quantityUnit({ value: 20, unit: 'pounds', system: 'http://unitsofmeasure.org', code: '[lb_av]' }), '[lb_av]');
  });

  test('ages in completed years, partial dates, month arithmetic', () => {
    assert.equal(ageInYears('2024-11-23', '2026-11-22'), 1);
    assert.equal(ageInYears('2024-11-22', '2026-11-22'), 2);
    assert.equal(describeAge('2026-01-22', '2026-11-22'), '10 months');
    assert.equal(toDay('2026-03'), '2026-03-01');
    assert.equal(toDay('2026-03-04T23:59:59-05:00'), '2026-03-04');
    assert.equal(toDay('not a date'), undefined);
    assert.equal(addMonths('2026-01-31', 1), '2026-02-28');
  });
});
