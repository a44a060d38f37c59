// Card and coverage-information conformance (CDS Hooks 2.0, CRD 2.2 cards.md, crd-ci-q1…q9) over
// every kind of outcome the Zolgensma policy produces, for both hooks, through the HTTP API.
// The checker itself (test/support/crd-conformance.ts) is first shown to catch each violation.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { Extension, MedicationRequest } from 'fhir/r4.js';
import request from 'supertest';
import { ORDER_SELECT, ORDER_SIGN, testApp } from '../support/app.ts';
import {
  cardsFor,
  coverageInformationByOrder,
  coverageInformationOf,
  coverageInformationViolations,
  criterionStatuses,
  crdViolations,
  assertCrdConformant,
  summariseCoverageInformation,
  CARD_TYPE_SYSTEM,
  COVERAGE_INFORMATION_URL,
  CRD_TEMP_CODES,
} from '../support/crd-conformance.ts';
import {
  birthDateMonthsAgo,
  coding,
  condition,
  daysAgo,
  fullPrefetch,
  hookRequest,
  ICD10,
  LOINC,
  observation,
  quantity,
  SOPT,
  today,
  zolgensmaCase,
  zolgensmaOrder,
  type ClinicalCase,
  type RequestOptions,
} from '../support/fixtures.ts';

const { app } = testApp();
const PAYER = 'Jefferson Health Plans';
const ZOLGENSMA = 'MedicationRequest/mr-zolgensma';
const EXAMPLES = path.join(import.meta.dirname, 'examples');

type Hook = 'order-sign' | 'order-select';
type Json = Record<string, unknown>;

/** Every coverage-assertion-id seen in this file: each response must issue new ones. */
const seenAssertionIds = new Set<string>();

async function call(c: ClinicalCase, hook: Hook, options: RequestOptions = {}): Promise<{ body: Json; response: Json }> {
  const body = hookRequest(c, { hook, ...options });
  const res = await request(app).post(hook === 'order-sign' ? ORDER_SIGN : ORDER_SELECT).send(body);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  const response = res.body as Json;
  assertCrdConformant(response, { request: body, payerName: PAYER, seenAssertionIds, requireCoverageInformation: true });
  return { body, response };
}

function ciOf(response: Json, order = ZOLGENSMA) {
  const list = coverageInformationByOrder(response).get(order);
  assert.ok(list && list.length === 1, `one coverage-information on ${order}`);
  return list[0]!;
}

function checklistCard(response: Json, order = ZOLGENSMA): Json {
  const card = cardsFor(response, order).find((c) => ['guideline', 'off-guideline'].includes(String((c.source as Json).topic && ((c.source as Json).topic as Json).code)));
  assert.ok(card, `a checklist card for ${order}`);
  return card;
}

function topicCodes(response: Json): string[] {
  return (response.cards as Json[]).map((c) => String(((c.source as Json).topic as Json).code));
}

/** The case variants that produce each kind of outcome. */
const variants: Record<string, (c: ClinicalCase) => void> = {
  'all criteria met': () => {},
  'missing documentation (no AAV9 titer)': (c) => {
    c.observations = c.observations.filter((o) => o.id !== 'obs-aav9');
  },
  'not covered (3 years old)': (c) => {
    c.patient.birthDate = birthDateMonthsAgo(36);
  },
  'benefit exclusion (ACA product line)': (c) => {
    c.coverage.type = { coding: [coding(SOPT, '51')] };
  },
  'conditional review (ventilator dependence Z99.11)': (c) => {
    c.conditions.push(condition('cond-vent', c.patient.id!, coding(ICD10, 'Z99.11', 'Dependence on respirator [ventilator] status'), { onset: daysAgo(40) }));
  },
  'deferred (active infection)': (c) => {
    c.conditions.push(condition('cond-uri', c.patient.id!, coding(ICD10, 'J06.9', 'Acute upper respiratory infection'), { onset: daysAgo(3) }));
  },
  'deferred (born at 30 weeks, 2 months old)': (c) => {
    c.patient.birthDate = birthDateMonthsAgo(2);
    c.observations = c.observations.map((o) =>
      o.id === 'obs-ga' ? observation('obs-ga', c.patient.id!, coding(LOINC, '76516-4', 'Gestational age at birth'), { valueQuantity: quantity(30, 'wk') }, { date: c.patient.birthDate!, category: 'exam' }) : o,
    );
  },
};

describe('coverage-information and cards: every outcome, both hooks, pass the CRD checker', () => {
  for (const [name, modify] of Object.entries(variants)) {
    for (const hook of ['order-sign', 'order-select'] as const) {
      it(`${name} — ${hook}`, async () => {
        const c = zolgensmaCase();
        modify(c);
        const { response } = await call(c, hook);
        const ci = ciOf(response);
        assert.equal(ci.coverage, 'Coverage/cov-1');
        assert.equal(ci.date, today());
        const card = checklistCard(response);
        assert.match(String(card.summary), /^Zolgensma: /);
        const statuses = criterionStatuses(card);
        // A benefit exclusion ends the review before the criteria; otherwise the whole checklist shows.
        const checklist = name.startsWith('benefit exclusion') ? 0 : 12;
        assert.equal(Object.keys(statuses).length, checklist, `11 criteria and the one-time rule: ${JSON.stringify(statuses)}`);

        switch (name) {
          case 'all criteria met':
            assert.deepEqual([ci.covered, ci.paNeeded, ci.docNeeded], ['covered', 'auth-needed', []]);
            assert.ok(Object.values(statuses).every((s) => s === 'met'));
            assert.equal(card.indicator, 'info');
            assert.deepEqual(topicCodes(response), ['guideline', 'clinical-reminder']);
            break;
          case 'missing documentation (no AAV9 titer)':
            assert.equal(ci.covered, 'covered');
            assert.equal(ci.paNeeded, 'auth-needed');
            if (hook === 'order-sign') {
              assert.deepEqual(ci.docNeeded, ['clinical']);
              assert.deepEqual(ci.docPurpose, ['withpa']);
              assert.ok(ci.reasons.some((r) => /AAV9/.test(r.text ?? '')), 'the reason names the missing item');
              assert.match(String(card.summary), /1 item missing/);
            } else {
              // CRD §hook-19: no documentation requests on order-select; the card still guides early.
              assert.deepEqual(ci.docNeeded, []);
              assert.deepEqual(ci.docPurpose, []);
              assert.match(String(card.summary), /1 item not yet documented/);
            }
            assert.equal(statuses['Baseline anti-AAV9 antibody titer ≤ 1:50 by ELISA'], 'missing');
            assert.equal(card.indicator, 'warning');
            break;
          case 'not covered (3 years old)':
          case 'benefit exclusion (ACA product line)':
            assert.equal(ci.covered, 'not-covered');
            assert.equal(ci.paNeeded, undefined);
            assert.equal(ci.reasons.length >= 1, true);
            assert.ok(ci.reasons.every((r) => (r.text ?? '').length > 0));
            assert.match(String(card.summary), /not covered/);
            // The card says why and what route remains (off-label review, or none for an excluded benefit).
            // …as a paragraph of its own, not glued to the last reason bullet (GFM lazy continuation).
            assert.match(String(card.detail), /\n\nRoute: (Off-label requests are evaluated individually|No prior authorization route)/);
            assert.equal(((card.source as Json).topic as Json).code, 'off-guideline');
            if (name.startsWith('not covered')) assert.equal(statuses['Less than 2 years of age'], 'not-met');
            else assert.match(ci.reasons[0]!.text!, /benefit exclusion/);
            break;
          case 'conditional review (ventilator dependence Z99.11)':
            assert.equal(ci.covered, 'conditional');
            assert.ok(ci.infoNeeded.length > 0);
            assert.ok(ci.reasons.some((r) => /Medical Director/.test(r.text ?? '')));
            assert.equal(statuses['No advanced SMA (complete limb paralysis, invasive ventilation)'], 'review');
            break;
          case 'deferred (active infection)':
            assert.equal(ci.covered, 'conditional');
            assert.deepEqual(ci.infoNeeded, ['timeframe']);
            assert.ok(ci.reasons.some((r) => /infection/i.test(r.text ?? '')));
            assert.equal(statuses['No signs or symptoms of infection'], 'deferred');
            break;
          case 'deferred (born at 30 weeks, 2 months old)': {
            assert.equal(ci.covered, 'conditional');
            assert.deepEqual(ci.infoNeeded, ['timeframe']);
            const period = ci.details.find((d) => d.code === 'allowed-period');
            assert.ok(period, 'an allowed-period detail');
            assert.equal(period.category, 'cat-limitation');
            const start = (period.value as { start?: string }).start;
            assert.ok(start && start > today(), `the earliest date lies ahead: ${start}`);
            // 30 weeks + 2 months ≈ 38.7 weeks: full term (40 weeks) is reached in about 9 days.
            const days = (Date.parse(start) - Date.parse(today())) / 86_400_000;
            assert.ok(days > 0 && days < 30, `${days} days`);
            assert.ok(ci.reasons.some((r) => r.text?.includes(start)), 'the reason gives the earliest date');
            assert.equal(statuses['Full-term corrected age reached (if born premature)'], 'deferred');
            break;
          }
          default:
            assert.fail(`no expectation for ${name}`);
        }
      });
    }
  }

  for (const hook of ['order-sign', 'order-select'] as const) {
    it(`indeterminate when only the coverage is prefetched and there is no FHIR server — ${hook}`, async () => {
      const c = zolgensmaCase();
      const { response } = await call(c, hook, { prefetch: { coverage: fullPrefetch(c).coverage } });
      const ci = ciOf(response);
      assert.equal(ci.covered, 'indeterminate');
      const technical = ci.reasons.find((r) => r.codes.includes('technical'));
      assert.ok(technical, 'reason technical (CRD §resp-42)');
      assert.ok(technical.text && technical.text.length > 0, 'with text');
      const statuses = criterionStatuses(checklistCard(response));
      assert.equal(statuses['Less than 2 years of age'], 'unavailable');
      assert.equal(statuses['Baseline anti-AAV9 antibody titer ≤ 1:50 by ELISA'], 'unavailable');
      // The steroid plan is a draft order of this very call, so it can still be judged.
      assert.equal(statuses['Systemic corticosteroids from 1 day before infusion for 30 days'], 'met');
    });
  }

  it('two Zolgensma orders under one coverage share one coverage-assertion-id; the next call issues a new one', async () => {
    const c = zolgensmaCase();
    c.orders.push(zolgensmaOrder('mr-zolgensma-2', c.patient.id!, { kitNdc: '71894-131-06' }));
    const first = await call(c, 'order-sign');
    const byOrder = coverageInformationByOrder(first.response);
    assert.equal(byOrder.size, 2);
    const ids = new Set([...byOrder.values()].flat().map((s) => s.assertionId));
    assert.equal(ids.size, 1, 'same coverage ⇒ same id');
    const second = await call(c, 'order-sign');
    const next = [...coverageInformationByOrder(second.response).values()].flat().map((s) => s.assertionId);
    assert.ok(next.every((id) => id && !ids.has(id)), 'different responses ⇒ different ids');
  });

  it('order-select judges only the selections: the other Zolgensma draft gets neither action nor card', async () => {
    const c = zolgensmaCase();
    c.orders.push(zolgensmaOrder('mr-zolgensma-2', c.patient.id!));
    const { response } = await call(c, 'order-select', { selections: ['MedicationRequest/mr-zolgensma-2'] });
    assert.deepEqual([...coverageInformationByOrder(response).keys()], ['MedicationRequest/mr-zolgensma-2']);
    assert.equal(cardsFor(response, ZOLGENSMA).length, 0);
    assert.ok(cardsFor(response, 'MedicationRequest/mr-zolgensma-2').length > 0);
  });

  it('echoes a draft with its own extensions unchanged, replacing an earlier assertion for the same coverage only', async () => {
    const c = zolgensmaCase();
    const order = c.orders[0] as MedicationRequest;
    const own: Extension = { url: 'http://ehr.example.org/fhir/StructureDefinition/order-source', valueString: 'favorites' };
    const stale = (coverage: string, id: string): Extension => ({
      url: COVERAGE_INFORMATION_URL,
      extension: [
        { url: 'coverage', valueReference: { reference: coverage } },
        { url: 'covered', valueCode: 'conditional' },
        { url: 'info-needed', valueCode: 'OTH' },
        { url: 'reason', valueCodeableConcept: { text: 'earlier answer' } },
        { url: 'date', valueDate: daysAgo(2) },
        { url: 'coverage-assertion-id', valueString: id },
      ],
    });
    order.extension = [own, stale('Coverage/cov-1', 'old-id-same-coverage'), stale('Coverage/other', 'old-id-other-coverage')];
    order.note = [{ text: 'Infuse at the day hospital' }];
    const { response } = await call(c, 'order-sign');
    const resource = ((response.systemActions as Json[])[0]!.resource as MedicationRequest);
    assert.deepEqual(resource.extension?.[0], own, 'other extensions kept in place');
    const infos = coverageInformationOf(resource).map(summariseCoverageInformation);
    assert.deepEqual(infos.map((i) => i.coverage).sort(), ['Coverage/cov-1', 'Coverage/other']);
    assert.equal(infos.find((i) => i.coverage === 'Coverage/other')?.assertionId, 'old-id-other-coverage');
    assert.notEqual(infos.find((i) => i.coverage === 'Coverage/cov-1')?.assertionId, 'old-id-same-coverage');
  });

  it('the card says which order it concerns, in the associated-resource extension and in its detail', async () => {
    const { response } = await call(zolgensmaCase(), 'order-sign');
    for (const card of response.cards as Json[]) {
      assert.deepEqual((card.extension as Json)['davinci-crd.associated-resource'], [{ reference: ZOLGENSMA }]);
      assert.ok(String(card.detail).includes(ZOLGENSMA), 'CRD §dev-24: the detail names the order');
    }
    const links = checklistCard(response).links as Json[];
    assert.ok(links.length > 0 && links.every((l) => l.type === 'absolute' && String(l.url).startsWith('http://crd.test/')));
  });
});

/** A conformant response to mutate: the happy path. */
async function baseline(): Promise<{ body: Json; response: Json }> {
  const c = zolgensmaCase();
  const body = hookRequest(c);
  const res = await request(app).post(ORDER_SIGN).send(body);
  assert.equal(res.status, 200);
  return { body, response: res.body as Json };
}

function subExtensions(response: Json): Extension[] {
  const resource = (response.systemActions as Json[])[0]!.resource as MedicationRequest;
  return coverageInformationOf(resource)[0]!.extension as Extension[];
}

function setSub(response: Json, url: string, value: Partial<Extension> | undefined): void {
  const subs = subExtensions(response);
  const rest = subs.filter((s) => s.url !== url);
  subs.length = 0;
  subs.push(...rest);
  if (value) subs.push({ url, ...value });
}

describe('the CRD checker catches each violation (it is not a rubber stamp)', () => {
  const mutations: [string, (r: Json) => void, RegExp][] = [
    ['summary of 140 characters', (r) => void ((r.cards as Json[])[0]!.summary = 'x'.repeat(140)), /summary has 140 characters/],
    ['indicator outside info|warning|critical', (r) => void ((r.cards as Json[])[0]!.indicator = 'hard-stop'), /indicator/],
    ['card without uuid', (r) => void delete (r.cards as Json[])[0]!.uuid, /uuid/],
    ['source.label not the payer', (r) => void (((r.cards as Json[])[0]!.source as Json).label = 'PBM Inc.'), /not the payer name/],
    ['topic from the CRD 2.0.1 temp system', (r) => void ((((r.cards as Json[])[0]!.source as Json).topic as Json).system = CRD_TEMP_CODES), /topic\.system/],
    ['associated resource not in the request', (r) => void ((r.cards as Json[])[0]!.extension = { 'davinci-crd.associated-resource': [{ reference: 'MedicationRequest/elsewhere' }] }), /names no draft order/],
    ['link with a relative url', (r) => void ((r.cards as Json[])[0]!.links = [{ label: 'x', url: '/policies/x', type: 'absolute' }]), /not an http\(s\) URL/],
    ['link of an unknown type', (r) => void ((r.cards as Json[])[0]!.links = [{ label: 'x', url: 'https://x.example', type: 'iframe' }]), /absolute\|smart/],
    ['empty array in a card', (r) => void ((r.cards as Json[])[0]!.links = []), /empty array/],
    ['system action of type create', (r) => void ((r.systemActions as Json[])[0]!.type = 'create'), /is not update/],
    ['echoed order changed beyond the extension', (r) => void (((r.systemActions as Json[])[0]!.resource as Json).status = 'active'), /differs from the draft order at status/],
    ['action on an order not in the request', (r) => void (((r.systemActions as Json[])[0]!.resource as Json).id = 'mr-other'), /not a draft order/],
    ['no systemActions on order-sign', (r) => void delete r.systemActions, /must carry systemActions/],
    ['date missing', (r) => setSub(r, 'date', undefined), /date must appear exactly once/],
    ['coverage-assertion-id missing', (r) => setSub(r, 'coverage-assertion-id', undefined), /coverage-assertion-id must appear exactly once/],
    ['covered with a 2.0.1-only code', (r) => setSub(r, 'covered', { valueCode: 'maybe' }), /not a coverageInfo code/],
    ['covered as a string', (r) => setSub(r, 'covered', { valueString: 'covered' }), /exactly one valueCode/],
    ['doc-needed "both" (removed after 2.0.1)', (r) => setSub(r, 'doc-needed', { valueCode: 'both' }), /not an AdditionalDocumentation code/],
    ['q1 questionnaire without doc-needed', (r) => setSub(r, 'questionnaire', { valueCanonical: 'http://payer.example/Questionnaire/q' }), /crd-ci-q1/],
    ['q2 pa-needed on not-covered', (r) => setSub(r, 'covered', { valueCode: 'not-covered' }), /crd-ci-q2/],
    ['q3 conditional without info-needed', (r) => setSub(r, 'covered', { valueCode: 'conditional' }), /crd-ci-q3/],
    [
      'q4 withpa with no-auth',
      (r) => {
        setSub(r, 'pa-needed', { valueCode: 'no-auth' });
        setSub(r, 'doc-purpose', { valueCode: 'withpa' });
        setSub(r, 'reason', { valueCodeableConcept: { text: 'r' } });
      },
      /crd-ci-q4/,
    ],
    ['q5 satisfied without satisfied-pa-id', (r) => setSub(r, 'pa-needed', { valueCode: 'satisfied' }), /crd-ci-q5/],
    ['q5 satisfied-pa-id without satisfied', (r) => setSub(r, 'satisfied-pa-id', { valueString: 'PA-1' }), /crd-ci-q5/],
    ['q6 info-needed OTH without reason', (r) => setSub(r, 'info-needed', { valueCode: 'OTH' }), /crd-ci-q6/],
    ['q7 non-standard reason code without text', (r) => setSub(r, 'reason', { valueCodeableConcept: { coding: [{ system: 'http://example.org', code: 'x' }] } }), /crd-ci-q7/],
    ['q8 doc-purpose without reason', (r) => setSub(r, 'doc-purpose', { valueCode: 'withclaim' }), /crd-ci-q8/],
    ['q9 indeterminate without reason', (r) => setSub(r, 'pa-needed', { valueCode: 'indeterminate' }), /crd-ci-q9/],
    ['detail without category', (r) => setSub(r, 'detail', { extension: [{ url: 'code', valueCodeableConcept: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/crd-coverage-detail', code: 'policy-link' }] } }, { url: 'value', valueUrl: 'https://x.example' }] }), /detail needs one category/],
    ['two coverage-assertion-ids for one coverage in one response', (r) => {
      const actions = r.systemActions as Json[];
      const copy = structuredClone(actions[0]!);
      actions.push(copy);
      setSub({ systemActions: [copy] }, 'coverage-assertion-id', { valueString: 'another-id' });
    }, /2 different coverage-assertion-ids/],
  ];
  for (const [name, mutate, expected] of mutations) {
    it(name, async () => {
      const { body, response } = await baseline();
      assert.deepEqual(crdViolations(response, { request: body, payerName: PAYER }), [], 'the baseline is conformant');
      mutate(response);
      const violations = crdViolations(response, { request: body, payerName: PAYER });
      assert.ok(violations.some((v) => expected.test(v)), `expected ${expected} among:\n${violations.join('\n')}`);
    });
  }

  it('reuse of an assertion id from an earlier response is reported', async () => {
    const { body, response } = await baseline();
    const seen = new Set<string>();
    assert.deepEqual(crdViolations(response, { request: body, payerName: PAYER, seenAssertionIds: seen }), []);
    assert.equal(seen.size, 1);
    assert.ok(crdViolations(response, { request: body, payerName: PAYER, seenAssertionIds: seen }).some((v) => /already issued/.test(v)));
  });

  it('order-select with doc-needed clinical is reported (CRD §hook-19)', async () => {
    const c = zolgensmaCase();
    const body = hookRequest(c, { hook: 'order-select' });
    const res = await request(app).post(ORDER_SELECT).send(body);
    const response = res.body as Json;
    setSub(response, 'doc-needed', { valueCode: 'clinical' });
    assert.ok(crdViolations(response, { request: body, payerName: PAYER }).some((v) => /hook-19/.test(v)));
  });

  it('accepts the official CRD 2.2.1 and Inferno coverage-information examples, and flags what only CRD 2.0.1 allowed', () => {
    const load = (file: string) => JSON.parse(readFileSync(path.join(EXAMPLES, file), 'utf8')) as Json;
    const extensionsIn = (doc: Json) => ((doc.systemActions as Json[] | undefined) ?? [doc]).flatMap((a) => coverageInformationOf(a.resource));
    const conformant = [
      'crd-ig/response_cards_and_coverage-info_systemAction_CRDServiceResponse.json',
      'crd-ig/response_coverage-info_only_CRDServiceResponse3.json',
      'inferno/systemAction_coverage-info_covered.json',
    ];
    for (const file of conformant) {
      const exts = extensionsIn(load(file));
      assert.ok(exts.length > 0, file);
      for (const ext of exts) assert.deepEqual(coverageInformationViolations(ext, file), [], file);
    }
    // Inferno's CRD 2.0.1-era response: detail without category and contact as ContactPoint.
    const old = extensionsIn(load('inferno/response_crd_authorization_hook_response.json'));
    const violations = old.flatMap((ext) => coverageInformationViolations(ext, 'inferno 2.0.1'));
    assert.ok(violations.some((v) => /detail needs one category/.test(v)), violations.join('\n'));
    assert.ok(violations.some((v) => /contact must carry exactly one valueContactDetail/.test(v)), violations.join('\n'));
    // Inferno's conditional example gives doc-purpose without a reason: valid in 2.0.1, not under 2.2's crd-ci-q8.
    const conditional = extensionsIn(load('inferno/systemAction_coverage-info_conditional.json'));
    assert.deepEqual(
      conditional.flatMap((ext) => coverageInformationViolations(ext, 'conditional')),
      ['conditional: crd-ci-q8: doc-purpose without reason'],
    );
  });

  it('the card-type system used by our cards is the CRD 2.2 one', async () => {
    const { response } = await baseline();
    for (const card of response.cards as Json[]) assert.equal(((card.source as Json).topic as Json).system, CARD_TYPE_SYSTEM);
  });
});
