import { DecisionRejectedError } from './errors.ts';
import type { DecisionRecord, OrderDecisionRecord } from './types.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function fail(field: string, expected: string): never {
  throw new DecisionRejectedError(`decision record: ${field} must be ${expected}`);
}

function str(value: unknown, field: string): string {
  if (typeof value !== 'string' || value === '') fail(field, 'a non-empty string');
  return value;
}

function optStr(value: unknown, field: string): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string') fail(field, 'a string or null');
  return value;
}

function instant(value: unknown, field: string): string {
  const ms = typeof value === 'string' ? Date.parse(value) : Number.NaN;
  if (Number.isNaN(ms)) fail(field, 'an ISO instant');
  return new Date(ms).toISOString();
}

function jsonText(value: unknown): string {
  if (typeof value !== 'string' || value === '') fail('responseJson', 'JSON text');
  return value;
}

function strings(value: unknown, field: string): string[] {
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string' || v === '')) fail(field, 'an array of non-empty strings');
  return value as string[];
}

function order(value: unknown, i: number): OrderDecisionRecord {
  if (typeof value !== 'object' || value === null) fail(`orders[${i}]`, 'an object');
  const o = value as Record<string, unknown>;
  return {
    orderReference: str(o.orderReference, `orders[${i}].orderReference`),
    productId: optStr(o.productId, `orders[${i}].productId`),
    policyId: optStr(o.policyId, `orders[${i}].policyId`),
    policyVersion: optStr(o.policyVersion, `orders[${i}].policyVersion`),
    coverageReference: optStr(o.coverageReference, `orders[${i}].coverageReference`),
    assertionId: optStr(o.assertionId, `orders[${i}].assertionId`),
    covered: optStr(o.covered, `orders[${i}].covered`),
    paNeeded: optStr(o.paNeeded, `orders[${i}].paNeeded`),
    criteria: o.criteria ?? null,
  };
}

/**
 * Checks a record before it is queued, so a malformed one is refused at once (and never reaches
 * the spool, where it could not be replayed). Returns a normalised copy: lower-case id, instants
 * in UTC ISO form, undefined → null.
 */
export function normalizeRecord(value: unknown): DecisionRecord {
  if (typeof value !== 'object' || value === null) fail('record', 'an object');
  const r = value as Record<string, unknown>;
  const id = str(r.id, 'id');
  if (!UUID.test(id)) fail('id', 'a uuid');
  if (!Array.isArray(r.orders)) fail('orders', 'an array');
  if (r.response === undefined || r.response === null) fail('response', 'present');
  return {
    id: id.toLowerCase(),
    receivedAt: instant(r.receivedAt, 'receivedAt'),
    respondedAt: instant(r.respondedAt, 'respondedAt'),
    clientIss: optStr(r.clientIss, 'clientIss'),
    serviceId: str(r.serviceId, 'serviceId'),
    hook: str(r.hook, 'hook'),
    hookInstance: str(r.hookInstance, 'hookInstance'),
    patientId: optStr(r.patientId, 'patientId'),
    payerId: optStr(r.payerId, 'payerId'),
    orders: (r.orders as unknown[]).map(order),
    assertionIds: strings(r.assertionIds, 'assertionIds'),
    cardUuids: strings(r.cardUuids, 'cardUuids'),
    evidence: r.evidence ?? null,
    response: r.response,
    ...(r.responseJson === undefined ? {} : { responseJson: jsonText(r.responseJson) }),
  };
}
