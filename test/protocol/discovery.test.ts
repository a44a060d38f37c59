// GET /cds-services: the discovery document as CDS Hooks 2.0 and CRD 2.2 define it, and its
// prefetch templates checked against what the shipped policies actually read.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import request from 'supertest';
import { loadPolicyRegistry } from '../../policies/registry.ts';
import type { Check } from '../../policies/engine/types.ts';
import { systemKey } from '../../policies/engine/terminology.ts';
import { ORDER_SELECT, ORDER_SIGN, ROOT, testApp } from '../support/app.ts';
import { assertCrdConformant } from '../support/crd-conformance.ts';
import { birthDateMonthsAgo, coding, hookRequest, SOPT, zolgensmaCase } from '../support/fixtures.ts';

type Json = Record<string, unknown>;

interface ConfigurationOption {
  code: string;
  type: string;
  name: string;
  description: string;
  default: unknown;
}

interface Service {
  hook: string;
  id: string;
  title?: string;
  description: string;
  prefetch: Record<string, string>;
  extension: Record<string, unknown>;
}

const { app } = testApp();
const FILE = path.join(ROOT, 'cds-services.json');
const fileText = readFileSync(FILE, 'utf8');

async function discovery(): Promise<{ text: string; services: Service[] }> {
  const res = await request(app).get('/cds-services');
  assert.equal(res.status, 200);
  assert.match(String(res.headers['content-type']), /^application\/json/);
  return { text: res.text, services: (JSON.parse(res.text) as { services: Service[] }).services };
}

/** Every observation code a policy check looks for, per value set, from the loaded registry. */
function observationValueSets(check: Check, out: Set<string>): void {
  switch (check.type) {
    case 'allOf':
    case 'anyOf':
      for (const c of check.checks) observationValueSets(c, out);
      break;
    case 'observation':
      out.add(check.valueSet);
      if (check.narrativeValueSet) out.add(check.narrativeValueSet);
      break;
    case 'correctedGestationalAge':
      out.add(check.gestationalAgeValueSet);
      break;
    case 'dosePerKg':
      out.add(check.weightValueSet);
      break;
    default:
      break;
  }
}

/** The `code` parameter of a search template as a set of "system|code". */
function templateCodes(template: string): Set<string> {
  const query = template.split('?')[1] ?? '';
  const codes = new Set<string>();
  for (const part of query.split('&')) {
    const [name, value] = part.split('=');
    if (name !== 'code' || value === undefined) continue;
    for (const token of value.split(',')) codes.add(token);
  }
  return codes;
}

describe('discovery document', () => {
  it('GET /cds-services serves exactly cds-services.json, compact (CRD §found-40)', async () => {
    const { text } = await discovery();
    assert.equal(text, JSON.stringify(JSON.parse(fileText)));
    assert.ok(!/\n|": /.test(text), 'no non-significant whitespace');
  });

  it('has one order-sign and one order-select service, with the ids the routes use', async () => {
    const { services } = await discovery();
    assert.deepEqual(services.map((s) => s.hook).sort(), ['order-select', 'order-sign']);
    assert.equal(new Set(services.map((s) => s.id)).size, services.length, 'unique ids');
    assert.equal(`/cds-services/${services.find((s) => s.hook === 'order-sign')!.id}`, ORDER_SIGN);
    assert.equal(`/cds-services/${services.find((s) => s.hook === 'order-select')!.id}`, ORDER_SELECT);
    for (const s of services) {
      assert.ok(s.description.length > 0 && (s.title ?? '').length > 0);
      assert.match(s.id, /^[A-Za-z0-9\-.]+$/, 'a URL path segment');
    }
  });

  it('prefetch templates use only CDS Hooks 2.0 tokens and the 2.0 query subset', async () => {
    const { services } = await discovery();
    const allowed = new Set(['context.patientId', 'context.encounterId', 'context.userId', 'userPractitionerId', 'userPractitionerRoleId', 'userPatientId', 'userRelatedPersonId']);
    for (const s of services) {
      assert.ok(Object.keys(s.prefetch).length > 0);
      for (const [key, template] of Object.entries(s.prefetch)) {
        const tokens = [...template.matchAll(/\{\{(.*?)\}\}/g)].map((m) => m[1]!.trim());
        assert.ok(tokens.length > 0, `${key} is patient/user specific`);
        for (const token of tokens) assert.ok(allowed.has(token), `${s.id} ${key}: "${token}" is not a CDS Hooks 2.0 token`);
        assert.ok(!/\{\{[^}]*$|^[^{]*\}\}/.test(template), `${key}: balanced braces`);
        // A relative read ("Type/{{id}}") or a type-level search ("Type?…"), never an absolute URL.
        assert.match(template, /^[A-Z][A-Za-z]+(\/\{\{[^}]+\}\}|\?.+)$/, `${key}: relative read or search`);
        assert.ok(!/resolve\(|ofType\(|%[a-z]/.test(template), `${key}: no FHIRPath (3.0-ballot) tokens`);
      }
      assert.equal(s.prefetch.patient, 'Patient/{{context.patientId}}');
      const coverage = s.prefetch.coverage ?? '';
      assert.match(coverage, /^Coverage\?/);
      assert.ok(coverage.split(/[?&]/).includes('patient={{context.patientId}}'));
      assert.ok(coverage.split(/[?&]/).includes('status=active'), 'active coverage only');
      assert.ok(coverage.split(/[?&]/).includes('_include=Coverage:payor'), 'the payer Organization comes with the coverage');
    }
    // Both hooks ask for the same data: order-select warms what order-sign will need.
    assert.deepEqual(services[0]!.prefetch, services[1]!.prefetch);
  });

  it('declares davinci-crd.version and configuration options as CRD §dev-1…8 require', async () => {
    const { services } = await discovery();
    for (const s of services) {
      const version = s.extension['davinci-crd.version'];
      assert.ok(Array.isArray(version) && version.length > 0 && version.every((v) => typeof v === 'string' && /^\d+\.\d+$/.test(v)), 'major.minor versions');
      assert.ok((version as string[]).includes('2.2'));
      const options = s.extension['davinci-crd.configuration-options'] as ConfigurationOption[];
      assert.ok(Array.isArray(options) && options.length > 0);
      for (const field of ['code', 'name', 'description'] as const) {
        assert.equal(new Set(options.map((o) => o[field])).size, options.length, `unique ${field}s (CRD §dev-8)`);
      }
      for (const o of options) {
        assert.ok(['boolean', 'integer'].includes(o.type), `${o.code}: type`);
        assert.ok(o.name.length > 0 && o.description.length > 0, `${o.code}: name and description`);
        if (o.type === 'boolean') assert.equal(typeof o.default, 'boolean', `${o.code}: default`);
        else assert.ok(Number.isInteger(o.default), `${o.code}: default`);
      }
      const coverageInfo = options.find((o) => o.code === 'coverage-info');
      assert.deepEqual([coverageInfo?.type, coverageInfo?.default], ['boolean', true]);
      const maxCards = options.find((o) => o.code === 'max-cards');
      assert.equal(maxCards?.type, 'integer');
      assert.ok(Number.isInteger(maxCards?.default) && (maxCards?.default as number) > 0);
    }
  });

  it('offers a boolean option for every card type the service emits (CRD §dev-5)', async () => {
    const { services } = await discovery();
    const registry = loadPolicyRegistry(path.join(ROOT, 'policies'));
    const emitted = new Set(['guideline', 'off-guideline']);
    for (const policy of registry.policies) emitted.add(policy.doc.instructionsTopic ?? 'clinical-reminder');
    // And every topic actually seen on responses for the main outcomes.
    const covered = zolgensmaCase();
    const tooOld = zolgensmaCase();
    tooOld.patient.birthDate = birthDateMonthsAgo(36);
    const excluded = zolgensmaCase();
    excluded.coverage.type = { coding: [coding(SOPT, '51')] };
    for (const c of [covered, tooOld, excluded]) {
      for (const hook of ['order-sign', 'order-select'] as const) {
        const body = hookRequest(c, { hook });
        const res = await request(app).post(hook === 'order-sign' ? ORDER_SIGN : ORDER_SELECT).send(body);
        assert.equal(res.status, 200);
        assertCrdConformant(res.body, { request: body, payerName: 'Jefferson Health Plans' });
        for (const card of (res.body as { cards: Json[] }).cards) emitted.add(String(((card.source as Json).topic as Json).code));
      }
    }
    for (const s of services) {
      const options = s.extension['davinci-crd.configuration-options'] as ConfigurationOption[];
      for (const topic of emitted) {
        const option = options.find((o) => o.code === topic);
        assert.ok(option, `${s.id}: no configuration option for card type "${topic}"`);
        assert.equal(option.type, 'boolean');
      }
    }
  });

  it('the observations template lists every LOINC and local code the shipped policies look for (prefetch ≡ fallback query)', async () => {
    const { services } = await discovery();
    const registry = loadPolicyRegistry(path.join(ROOT, 'policies'));
    const wanted = new Map<string, string>();
    for (const policy of registry.policies) {
      const ids = new Set<string>();
      for (const criterion of policy.doc.criteria) observationValueSets(criterion.check, ids);
      for (const id of ids) {
        const valueSet = policy.valueSets.get(id);
        assert.ok(valueSet, `${policy.doc.id}: value set ${id}`);
        for (const { system, code } of valueSet.exactCodes()) {
          // LOINC and local lab codes are searched by code; SNOMED etc. would need their own template.
          if (systemKey(system) === 'loinc' || !/^(http:\/\/snomed\.info|http:\/\/hl7\.org\/fhir\/sid)/.test(system)) wanted.set(`${system}|${code}`, `${policy.doc.id} ${id}`);
        }
      }
    }
    assert.ok(wanted.size >= 15, `the walk found the policies' observation codes (${wanted.size})`);
    assert.ok(wanted.has('http://loinc.org|69548-6') && wanted.has('http://lab.example.org/test-codes|AAV9-AB'), 'SMN1 genetics and the local AAV9 code');
    for (const s of services) {
      const listed = templateCodes(s.prefetch.observations ?? '');
      const absent = [...wanted].filter(([code]) => !listed.has(code)).map(([code, where]) => `${code} (${where})`);
      assert.deepEqual(absent, [], `${s.id}: observation codes the policies read but the template does not fetch`);
    }
  });

  it('the discovery document is public metadata: HEAD works and a POST to it is a clean 4xx', async () => {
    const head = await request(app).head('/cds-services');
    assert.ok(head.status < 500);
    const post = await request(app).post('/cds-services').send({});
    assert.ok(post.status >= 400 && post.status < 500);
    assert.equal((post.body as Json).resourceType, 'OperationOutcome');
  });
});
