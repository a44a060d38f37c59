import assert from 'node:assert/strict';
import type { Extension } from 'fhir/r4.js';
import type { Action, Card, HookResponse } from '../../server/protocol/types.ts';
import { COVERAGE_INFORMATION_URL } from './fixtures.ts';

/** Reads a hook response the way an EHR integrator would: per order, its action and its cards. */

export type StatusMark = '✓' | '✗' | '☐' | '⚠' | '⏳' | '?';

export const STATUS_BY_MARK: Record<StatusMark, string> = {
  '✓': 'met',
  '✗': 'not-met',
  '☐': 'missing',
  '⚠': 'review',
  '⏳': 'deferred',
  '?': 'unavailable',
};

export function actionFor(response: HookResponse, orderReference: string): Action | undefined {
  return (response.systemActions ?? []).find((a) => a.resource && `${a.resource.resourceType}/${a.resource.id}` === orderReference);
}

/** The coverage-information sub-extensions of an order's system action, by url. */
export function coverageInfo(response: HookResponse, orderReference: string): Map<string, Extension[]> {
  const action = actionFor(response, orderReference);
  assert.ok(action, `a system action for ${orderReference}`);
  const ext = ((action.resource as { extension?: Extension[] }).extension ?? []).filter((e) => e.url === COVERAGE_INFORMATION_URL);
  assert.equal(ext.length, 1, `one coverage-information extension on ${orderReference}`);
  const byUrl = new Map<string, Extension[]>();
  for (const sub of ext[0]!.extension ?? []) byUrl.set(sub.url, [...(byUrl.get(sub.url) ?? []), sub]);
  return byUrl;
}

export function codes(info: Map<string, Extension[]>, url: string): string[] {
  return (info.get(url) ?? []).map((e) => e.valueCode ?? '');
}

export function reasons(info: Map<string, Extension[]>): string[] {
  return (info.get('reason') ?? []).map((e) => e.valueCodeableConcept?.text ?? '');
}

export function detailCodes(info: Map<string, Extension[]>): string[] {
  return (info.get('detail') ?? []).map(
    (d) => d.extension?.find((x) => x.url === 'code')?.valueCodeableConcept?.coding?.[0]?.code ?? '',
  );
}

export function detailValue(info: Map<string, Extension[]>, code: string): Extension | undefined {
  const detail = (info.get('detail') ?? []).find(
    (d) => d.extension?.find((x) => x.url === 'code')?.valueCodeableConcept?.coding?.[0]?.code === code,
  );
  return detail?.extension?.find((x) => x.url === 'value');
}

export function cardsFor(response: HookResponse, orderReference: string): Card[] {
  return response.cards.filter((c) =>
    ((c.extension?.['davinci-crd.associated-resource'] as { reference: string }[] | undefined) ?? []).some((r) => r.reference === orderReference),
  );
}

/** The policy checklist card (topic guideline / off-guideline) of an order. */
export function checklistCard(response: HookResponse, orderReference: string): Card {
  const card = cardsFor(response, orderReference).find((c) => c.source.topic.code === 'guideline' || c.source.topic.code === 'off-guideline');
  assert.ok(card, `a checklist card for ${orderReference}`);
  return card;
}

export interface ChecklistLine {
  status: string;
  line: string;
}

/** Criterion number → the status and text the clinician reads on the checklist card. */
export function checklist(card: Card): Map<number, ChecklistLine> {
  const out = new Map<number, ChecklistLine>();
  for (const line of (card.detail ?? '').split('\n')) {
    const m = /^- (✓|✗|☐|⚠|⏳|\?) (\d+)\. /.exec(line);
    if (m) out.set(Number(m[2]), { status: STATUS_BY_MARK[m[1] as StatusMark], line });
  }
  return out;
}

/** Status and text of the un-numbered rules (e.g. one-time only) by their label. */
export function ruleLine(card: Card, labelFragment: string): ChecklistLine | undefined {
  for (const line of (card.detail ?? '').split('\n')) {
    const m = /^- (✓|✗|☐|⚠|⏳|\?) \*\*(.+?)\*\*/.exec(line);
    if (m && !/^\d+\./.test(m[2]!) && m[2]!.includes(labelFragment)) return { status: STATUS_BY_MARK[m[1] as StatusMark], line };
  }
  return undefined;
}
