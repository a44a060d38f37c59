import { randomUUID } from 'node:crypto';
import type { CriterionResult, CriterionStatus, PolicyDecision } from '../policies/engine/types.ts';
import type { Card, CardLink } from '../server/protocol/types.ts';
import { escapeMarkdown, fitSummary } from './markdown.ts';

export const CARD_TYPE_SYSTEM = 'http://terminology.hl7.org/CodeSystem/cdshooks-card-type';

const CARD_TYPE_DISPLAY: Record<string, string> = {
  guideline: 'Guideline',
  'off-guideline': 'Off Guideline',
  'clinical-reminder': 'Clinical Reminder',
  claim: 'Claim',
  'appropriate-use': 'Appropriate Use',
  limits: 'Limits',
  network: 'Network',
  insurance: 'Insurance',
};

export interface CardContext {
  payerName: string;
  /** order-sign: missing items are requested; order-select: the same guidance, early. */
  hook: 'order-sign' | 'order-select';
  policyUrl: string;
}

const STATUS_MARK: Record<CriterionStatus, string> = {
  met: '✓',
  'not-met': '✗',
  missing: '☐',
  review: '⚠',
  deferred: '⏳',
  unavailable: '?',
};

const STATUS_WORD: Record<CriterionStatus, string> = {
  met: 'met',
  'not-met': 'not met',
  missing: 'missing',
  review: 'needs review',
  deferred: 'not yet',
  unavailable: 'could not be checked',
};

export function topic(code: string): { system: string; code: string; display?: string } {
  const display = CARD_TYPE_DISPLAY[code];
  return { system: CARD_TYPE_SYSTEM, code, ...(display ? { display } : {}) };
}

function productName(decision: PolicyDecision): string {
  return decision.product.product?.name ?? decision.product.display ?? `Product billed as ${decision.product.matchedValue}`;
}

/** The prior-authorization answer in words (pa-needed may be conditional when the member's plan terms govern). */
function paPhrase(code: PolicyDecision['determination']['paNeeded']): string {
  switch (code) {
    case 'auth-needed':
    case 'performpa':
      return 'prior authorization required';
    case 'conditional':
      return 'prior authorization may be required';
    case 'satisfied':
      return 'prior authorization on file';
    case 'indeterminate':
      return 'prior authorization status unknown';
    default:
      return 'no prior authorization required';
  }
}

export function missingItems(decision: PolicyDecision): string[] {
  return [...new Set(decision.results.flatMap((r) => r.missing.map((m) => m.text)))];
}

/** One line that says what the clinician must know: status, and the count of missing items. */
export function summaryOf(decision: PolicyDecision, hook: CardContext['hook']): string {
  const d = decision.determination;
  const name = productName(decision);
  const missing = missingItems(decision).length;
  const missingText = missing > 0 ? `; ${missing} item${missing === 1 ? '' : 's'} ${hook === 'order-sign' ? 'missing' : 'not yet documented'}` : '';
  switch (d.covered) {
    case 'not-covered':
      return fitSummary(`${name}: not covered — ${firstSentence(d.reasons[0]?.text ?? 'criteria not met')}`);
    case 'indeterminate':
      return fitSummary(`${name}: coverage could not be determined — EHR data unavailable${missingText}`);
    case 'conditional': {
      const reason = d.reasons.find((r) => !r.documentation)?.text ?? 'conditions apply';
      return fitSummary(`${name}: ${paPhrase(d.paNeeded)}; ${lowerFirst(firstSentence(reason))}${missingText}`);
    }
    case 'covered':
      if (d.paNeeded === 'auth-needed') {
        return fitSummary(
          missing > 0 ? `${name}: prior authorization required${missingText}` : `${name}: prior authorization required; all criteria documented`,
        );
      }
      return fitSummary(`${name}: covered${missingText}`);
  }
}

function firstSentence(text: string): string {
  const m = /^(.*?[.!?])(\s|$)/.exec(text);
  return (m?.[1] ?? text).replace(/[.]$/, '');
}

function capitalise(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function lowerFirst(text: string): string {
  return text.length > 1 && /^[A-Z][a-z]/.test(text) ? text[0]!.toLowerCase() + text.slice(1) : text;
}

/** The status in one sentence, at the top of the card's detail. */
function headline(decision: PolicyDecision, hook: CardContext['hook']): string {
  const d = decision.determination;
  const missing = missingItems(decision).length;
  const pa = capitalise(paPhrase(d.paNeeded));
  switch (d.covered) {
    case 'not-covered':
      return 'Not covered.';
    case 'indeterminate':
      return `Coverage could not be determined: some EHR data could not be retrieved. ${pa}.`;
    case 'conditional':
      return `Covered only if the conditions below are met. ${pa}.`;
    case 'covered':
      if (missing === 0) return `${pa}; every criterion is documented.`;
      return `${pa}; ${missing} item${missing === 1 ? ' is' : 's are'} ${hook === 'order-sign' ? 'missing' : 'not yet documented'}.`;
  }
}

function criterionLine(result: CriterionResult, hook: CardContext['hook']): string {
  const number = result.number !== undefined ? `${result.number}. ` : '';
  const head = `${STATUS_MARK[result.status]} ${number}**${escapeMarkdown(result.label)}** — ${STATUS_WORD[result.status]}`;
  const facts: string[] = [];
  for (const e of result.evidence) facts.push(escapeMarkdown(e.text) + (e.reference ? ` (${escapeMarkdown(e.reference)})` : ''));
  if (result.status !== 'met') for (const note of result.notes) facts.push(escapeMarkdown(note));
  if (result.status === 'missing' || (result.missing.length > 0 && result.status !== 'met')) {
    const verb = hook === 'order-sign' ? 'Document' : 'Not yet documented';
    for (const m of result.missing) facts.push(`${verb}: ${escapeMarkdown(m.text)}`);
  }
  if (result.earliestDate) facts.push(`Earliest date: ${result.earliestDate}`);
  return facts.length > 0 ? `- ${head}: ${facts.join('; ')}` : `- ${head}`;
}

/**
 * The clinician's card for one order: the coverage status in words, then the policy's checklist
 * with the evidence for each criterion, what is missing, and the route that remains.
 */
export function clinicianCard(decision: PolicyDecision, ctx: CardContext): Card {
  const d = decision.determination;
  const lines: string[] = [];
  const line = decision.productLine ? ` · ${escapeMarkdown(decision.productLine.name)}` : '';
  lines.push(
    `**${escapeMarkdown(productName(decision))}**${decision.product.product ? ` (${escapeMarkdown(decision.product.product.nonproprietaryName)})` : ''} — order ${escapeMarkdown(decision.orderReference)}`,
  );
  lines.push(`${escapeMarkdown(ctx.payerName)} ${escapeMarkdown(decision.policy.policyNumber)} ${escapeMarkdown(decision.policy.title)}, version ${escapeMarkdown(decision.policy.version)}${line}`);
  lines.push('', `**${escapeMarkdown(headline(decision, ctx.hook))}**`);
  for (const reason of d.reasons) {
    if (reason.documentation) continue;
    lines.push(`- ${escapeMarkdown(reason.text)}`);
  }
  // Each its own paragraph: right after the reason list they would be read as part of its last item.
  for (const route of d.routes) lines.push('', `Route: ${escapeMarkdown(route)}`);
  for (const rule of decision.coverageRules.filter((r) => r.effect === 'not-covered' || r.effect === 'conditional')) {
    if (!d.reasons.some((r) => r.text === rule.reason)) lines.push('', `**${escapeMarkdown(rule.reason)}**`);
  }

  const criteria = decision.results.filter((r) => r.kind === 'criterion');
  const rules = decision.results.filter((r) => r.kind !== 'criterion');
  if (criteria.length > 0) {
    const met = criteria.filter((r) => r.status === 'met').length;
    lines.push('', `Criteria (${met} of ${criteria.length} met):`);
    for (const r of criteria) lines.push(criterionLine(r, ctx.hook));
  }
  if (rules.length > 0) {
    lines.push('', 'Rules and exclusions:');
    for (const r of rules) lines.push(criterionLine(r, ctx.hook));
  }
  const missing = missingItems(decision);
  if (missing.length > 0 && d.covered !== 'not-covered') {
    lines.push('', ctx.hook === 'order-sign' ? 'Submit with the prior authorization request:' : 'Will be needed for prior authorization:');
    for (const m of missing) lines.push(`- ${escapeMarkdown(m)}`);
  }
  const facts: string[] = [];
  if (d.billingCodes.length > 0) facts.push(`Bill with ${d.billingCodes.map((c) => `HCPCS ${escapeMarkdown(c.code)}`).join(', ')}`);
  if (d.allowedQuantity) facts.push(`Limit: ${d.allowedQuantity.value} ${escapeMarkdown(d.allowedQuantity.unit)} per ${escapeMarkdown(d.allowedQuantity.per)}`);
  if (d.expiryDate) facts.push(`Authorization up to ${d.expiryDate}`);
  if (d.earliestDate) facts.push(`Earliest date of service: ${d.earliestDate}`);
  if (facts.length > 0) lines.push('', facts.join(' · '));
  for (const note of decision.notes) lines.push('', `_${escapeMarkdown(note)}_`);

  const links: CardLink[] = [{ label: `${decision.policy.policyNumber} criteria`, url: ctx.policyUrl, type: 'absolute' }];
  const notCovered = d.covered === 'not-covered';
  return {
    uuid: randomUUID(),
    summary: summaryOf(decision, ctx.hook),
    detail: lines.join('\n'),
    indicator: d.covered === 'covered' && missing.length === 0 ? 'info' : 'warning',
    source: { label: ctx.payerName, topic: topic(notCovered ? 'off-guideline' : 'guideline') },
    links,
    extension: { 'davinci-crd.associated-resource': [{ reference: decision.orderReference }] },
  };
}

/** The policy's instructions (dosing, premedication, monitoring, claims) as an Instructions card. */
export function instructionsCard(decision: PolicyDecision, ctx: CardContext, topicCode: string, summaryText: string): Card | undefined {
  if (decision.instructions.length === 0 || decision.determination.covered === 'not-covered') return undefined;
  const lines = [
    `**${escapeMarkdown(productName(decision))}** — order ${escapeMarkdown(decision.orderReference)} (${escapeMarkdown(decision.policy.policyNumber)})`,
    '',
    ...decision.instructions.map((i) => `- ${escapeMarkdown(i)}`),
  ];
  return {
    uuid: randomUUID(),
    summary: fitSummary(`${productName(decision)}: ${summaryText}`),
    detail: lines.join('\n'),
    indicator: 'info',
    source: { label: ctx.payerName, topic: topic(topicCode) },
    extension: { 'davinci-crd.associated-resource': [{ reference: decision.orderReference }] },
  };
}
