import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Extension } from 'fhir/r4.js';
import request from 'supertest';
import type { Express } from 'express';
import type { Card, HookResponse } from '../../server/protocol/types.ts';
import { loadPolicyRegistry, type PolicyRegistry } from '../../policies/registry.ts';
import { ORDER_SELECT, ORDER_SIGN, ROOT, testApp } from '../support/app.ts';
import { assertCrdConformant } from '../support/crd-conformance.ts';
import { COVERAGE_INFORMATION_URL, hookRequest, type ClinicalCase, type RequestOptions } from '../support/fixtures.ts';

/**
 * Sends cases through the HTTP API as an EHR would and reads the answer per order: the
 * coverage-information sub-extensions of its system action, and its cards.
 */

const apps = new Map<string, Express>();
const registries = new WeakMap<PolicyRegistry, Map<string, Express>>();

/**
 * The app, with its clock set to noon UTC of `day` when given (policy versions and code dates),
 * and with a deployment's own policy data when a registry is given.
 */
function appAt(day: string | undefined, registry: PolicyRegistry | undefined): Express {
  const key = day ?? 'now';
  const cache = registry ? (registries.get(registry) ?? new Map<string, Express>()) : apps;
  if (registry) registries.set(registry, cache);
  let app = cache.get(key);
  if (!app) {
    app = testApp({}, { ...(day ? { now: () => new Date(`${day}T12:00:00Z`) } : {}), ...(registry ? { registry } : {}) }).app;
    cache.set(key, app);
  }
  return app;
}

export interface SendOptions extends RequestOptions {
  /** The service's "today" (YYYY-MM-DD). */
  on?: string;
  /** Policy data other than the shipped configuration. */
  registry?: PolicyRegistry;
}

export async function send(c: ClinicalCase, options: SendOptions = {}): Promise<HookResponse> {
  const { on, registry, ...rest } = options;
  const hook = rest.hook ?? 'order-sign';
  const body = hookRequest(c, { userId: 'PractitionerRole/role-clinician', ...rest });
  const res = await request(appAt(on, registry)).post(hook === 'order-sign' ? ORDER_SIGN : ORDER_SELECT).send(body);
  assert.equal(res.status, 200, `HTTP ${res.status}: ${JSON.stringify(res.body).slice(0, 400)}`);
  // Every assertion must also be valid CRD (coverage-information invariants, card rules), whatever it says.
  // (Whether a response with no assertion carries an empty systemActions array is the protocol's concern.)
  if (((res.body as HookResponse).systemActions ?? []).length > 0) assertCrdConformant(res.body, { request: body as never, payerName: c.payer.name ?? '' });
  return res.body as HookResponse;
}

/** The answer for one order: coverage-information by sub-extension url, and its cards. */
export class OrderAnswer {
  readonly info: Map<string, Extension[]>;
  readonly cards: Card[];

  constructor(response: HookResponse, readonly orderReference: string) {
    const action = (response.systemActions ?? []).find((a) => a.resource && `${a.resource.resourceType}/${a.resource.id}` === orderReference);
    assert.ok(action, `a system action for ${orderReference}`);
    const extensions = ((action.resource as { extension?: Extension[] }).extension ?? []).filter((e) => e.url === COVERAGE_INFORMATION_URL);
    assert.equal(extensions.length, 1, `one coverage-information extension on ${orderReference}`);
    this.info = new Map();
    for (const sub of extensions[0]!.extension ?? []) this.info.set(sub.url, [...(this.info.get(sub.url) ?? []), sub]);
    this.cards = response.cards.filter((c) =>
      ((c.extension?.['davinci-crd.associated-resource'] as { reference: string }[] | undefined) ?? []).some((r) => r.reference === orderReference),
    );
  }

  codes(url: string): string[] {
    return (this.info.get(url) ?? []).map((e) => e.valueCode ?? '');
  }
  get covered(): string {
    return this.codes('covered')[0] ?? '';
  }
  get paNeeded(): string | undefined {
    return this.codes('pa-needed')[0];
  }
  get docNeeded(): string[] {
    return this.codes('doc-needed');
  }
  get infoNeeded(): string[] {
    return this.codes('info-needed');
  }
  get reasons(): string[] {
    return (this.info.get('reason') ?? []).map((e) => e.valueCodeableConcept?.text ?? '');
  }
  get billingCodes(): string[] {
    return (this.info.get('billingCode') ?? []).map((e) => e.valueCoding?.code ?? '');
  }
  get expiryDate(): string | undefined {
    return this.info.get('expiry-date')?.[0]?.valueDate;
  }
  detail(code: string): Extension | undefined {
    const detail = (this.info.get('detail') ?? []).find(
      (d) => d.extension?.find((x) => x.url === 'code')?.valueCodeableConcept?.coding?.[0]?.code === code,
    );
    return detail;
  }
  detailValue(code: string): Extension | undefined {
    return this.detail(code)?.extension?.find((x) => x.url === 'value');
  }
  /** The policy version the assertion rests on (policy-link qualification, e.g. "L.5.01.628 version 2026-01-01"). */
  get policyVersion(): string | undefined {
    return this.detail('policy-link')?.extension?.find((x) => x.url === 'qualification')?.valueString;
  }
  /** The checklist card (guideline / off-guideline). */
  get card(): Card {
    const card = this.cards.find((c) => c.source.topic.code === 'guideline' || c.source.topic.code === 'off-guideline');
    assert.ok(card, `a checklist card for ${this.orderReference}`);
    return card;
  }
  get detailText(): string {
    return this.card.detail ?? '';
  }
  /** The checklist line of a criterion, by the start of its label. */
  line(labelStart: string): string {
    const found = this.detailText.split('\n').find((l) => /^- [✓✗☐⚠⏳?] /.test(l) && l.includes(`**${labelStart}`));
    assert.ok(found, `a checklist line starting "${labelStart}" in:\n${this.detailText}`);
    return found;
  }
  /** met | not-met | missing | review | deferred | unavailable for a checklist line. */
  status(labelStart: string): string {
    const mark = this.line(labelStart).charAt(2);
    return { '✓': 'met', '✗': 'not-met', '☐': 'missing', '⚠': 'review', '⏳': 'deferred', '?': 'unavailable' }[mark] ?? mark;
  }
  instructionsCard(): Card | undefined {
    return this.cards.find((c) => c.source.topic.code !== 'guideline' && c.source.topic.code !== 'off-guideline');
  }
}

export function answer(response: HookResponse, orderReference: string): OrderAnswer {
  return new OrderAnswer(response, orderReference);
}

/** Sends a case and reads one order's answer: each policy suite's `send` for its order. */
export function answerFor(orderReference: string): (c: ClinicalCase, options?: SendOptions) => Promise<OrderAnswer> {
  return async (c, options = {}) => answer(await send(c, options), orderReference);
}

/** No assertion at all for the order (no policy in scope): no action, no card. */
export function assertSilent(response: HookResponse, orderReference: string): void {
  const action = (response.systemActions ?? []).find((a) => a.resource && `${a.resource.resourceType}/${a.resource.id}` === orderReference);
  assert.equal(action, undefined, `no system action for ${orderReference}`);
  const cards = response.cards.filter((c) =>
    ((c.extension?.['davinci-crd.associated-resource'] as { reference: string }[] | undefined) ?? []).some((r) => r.reference === orderReference),
  );
  assert.equal(cards.length, 0, `no card for ${orderReference}`);
}

/**
 * A copy of the shipped policy directory with edits (a deployment's catalog or registry), loaded
 * through the same validating loader.
 */
export function editedPolicies(edit: (dir: string) => void): PolicyRegistry {
  const dir = mkdtempSync(path.join(tmpdir(), 'policies-'));
  cpSync(path.join(ROOT, 'policies'), dir, { recursive: true });
  edit(dir);
  return loadPolicyRegistry(dir);
}

export function editJson(file: string, change: (data: Record<string, unknown>) => void): void {
  const data = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  change(data);
  writeFileSync(file, JSON.stringify(data, null, 2));
}
