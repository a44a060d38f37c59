import { randomUUID } from 'node:crypto';
import type { Extension, FhirResource } from 'fhir/r4.js';
import type { PolicyDecision } from '../policies/engine/types.ts';
import type { Action, Card, CrdConfiguration, HookResponse } from '../server/protocol/types.ts';
import { clinicianCard, instructionsCard } from './clinician-card.ts';
import { COVERAGE_INFORMATION_URL, CRD_TEMP_CODES, coverageInformation, withCoverageInformation } from './coverage-information.ts';
import { fitSummary } from './markdown.ts';

/** One order's decisions under the member's coverage, ready to render. */
export interface OrderOutcome {
  order: FhirResource;
  orderReference: string;
  decisions: PolicyDecision[];
}

export interface RenderContext {
  hook: 'order-sign' | 'order-select';
  payerName: string;
  coverageReference: string;
  /** The assertion date (YYYY-MM-DD). */
  date: string;
  /** Public base URL of this service, for links to policy pages. */
  baseUrl: string;
  configuration: CrdConfiguration;
  /** Instructions card settings per policy id. */
  instructions: (policyId: string) => { topic: string; summary: string };
}

export interface RenderedResponse {
  response: HookResponse;
  /** The coverage-assertion-id of this response (one per coverage), when any assertion was made. */
  assertionId: string | undefined;
  /** Card uuids with the order each concerns (for feedback and the decision log). */
  cards: { uuid: string; orderReference: string; topic: string }[];
}

export const DEFAULT_MAX_CARDS = 10;

/** davinci-crd.configuration: known options only; nonsense values are ignored (CRD §dev-6, §dev-17). */
export function readConfiguration(extension: Record<string, unknown> | undefined): CrdConfiguration {
  const raw = extension?.['davinci-crd.configuration'];
  const out: CrdConfiguration = {};
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return out;
  for (const [key, value] of Object.entries(raw)) {
    if (typeof value === 'boolean') out[key] = value;
    else if (key === 'max-cards' && typeof value === 'number' && Number.isInteger(value) && value >= 0) out[key] = value;
  }
  return out;
}

export function policyUrl(baseUrl: string, policyId: string): string {
  return `${baseUrl}/policies/${encodeURIComponent(policyId)}`;
}

/**
 * Renders the hook response: per in-scope order, a system action that records the CRD
 * coverage-information on the order, the clinician's checklist card, and an Instructions card.
 * The client's configuration turns card types and the system action off, and caps the cards.
 */
export function renderResponse(outcomes: OrderOutcome[], ctx: RenderContext): RenderedResponse {
  const wantsCoverageInfo = ctx.configuration['coverage-info'] !== false;
  const allowed = (topicCode: string) => ctx.configuration[topicCode] !== false;
  const assertionId = outcomes.some((o) => o.decisions.length > 0) ? randomUUID() : undefined;

  const systemActions: Action[] = [];
  const primaryCards: Card[] = [];
  const secondaryCards: Card[] = [];
  for (const outcome of outcomes) {
    if (outcome.decisions.length === 0) continue;
    const extensions: Extension[] = outcome.decisions.map((decision) =>
      coverageInformation(decision, {
        coverageReference: ctx.coverageReference,
        assertionId: assertionId!,
        date: ctx.date,
        allowDocumentationRequests: ctx.hook === 'order-sign',
        policyUrl: policyUrl(ctx.baseUrl, decision.policy.id),
      }),
    );
    if (wantsCoverageInfo) {
      const names = outcome.decisions.map((d) => d.product.product?.name ?? d.product.matchedValue);
      systemActions.push({
        type: 'update',
        description: `Record coverage information for ${[...new Set(names)].join(', ')} (${outcome.decisions.map((d) => d.policy.policyNumber).join(', ')})`,
        resource: withCoverageInformation(outcome.order, extensions, ctx.coverageReference),
      });
    }
    for (const decision of outcome.decisions) {
      const cardCtx = { payerName: ctx.payerName, hook: ctx.hook, policyUrl: policyUrl(ctx.baseUrl, decision.policy.id) };
      primaryCards.push(clinicianCard(decision, cardCtx));
      const settings = ctx.instructions(decision.policy.id);
      const instructions = instructionsCard(decision, cardCtx, settings.topic, settings.summary);
      if (instructions) secondaryCards.push(instructions);
    }
  }
  const maxCards = typeof ctx.configuration['max-cards'] === 'number' ? ctx.configuration['max-cards'] : DEFAULT_MAX_CARDS;
  // Checklists first: when the client caps the cards, the coverage guidance is what survives.
  const cards = [...primaryCards, ...secondaryCards].filter((c) => allowed(c.source.topic.code)).slice(0, maxCards);
  return {
    // CDS Hooks 2.0 §JSON: an optional array without values is omitted, never sent empty.
    response: { cards, ...(systemActions.length > 0 ? { systemActions } : {}) },
    assertionId,
    cards: cards.map((c) => ({
      uuid: c.uuid,
      orderReference: (c.extension?.['davinci-crd.associated-resource'] as { reference: string }[] | undefined)?.[0]?.reference ?? '',
      topic: c.source.topic.code,
    })),
  };
}

/**
 * The answer when its decision record could not be kept anywhere (database and local spool both
 * failed): the clinician still gets the guidance, but nothing is asserted that the payer could not
 * later trace — every coverage-information becomes indeterminate with a technical reason.
 */
export function unrecordedResponse(response: HookResponse): HookResponse {
  const note = 'This answer could not be recorded in the decision log, so it is not a coverage assertion; ask again before relying on it.';
  const systemActions = (response.systemActions ?? []).map((action) => {
    const resource = action.resource as (FhirResource & { extension?: Extension[] }) | undefined;
    if (!resource) return action;
    const extension = (resource.extension ?? []).map((ext) => {
      if (ext.url !== COVERAGE_INFORMATION_URL) return ext;
      const keep = new Set(['coverage', 'date', 'coverage-assertion-id']);
      const parts = (ext.extension ?? []).filter((sub) => keep.has(sub.url));
      const coverage = parts.filter((p) => p.url === 'coverage');
      const rest = parts.filter((p) => p.url !== 'coverage');
      return {
        ...ext,
        extension: [
          ...coverage,
          { url: 'covered', valueCode: 'indeterminate' },
          { url: 'pa-needed', valueCode: 'indeterminate' },
          { url: 'reason', valueCodeableConcept: { coding: [{ system: CRD_TEMP_CODES, code: 'technical', display: 'Technical issue' }], text: note } },
          ...rest,
        ],
      };
    });
    return { ...action, resource: { ...resource, extension } as FhirResource };
  });
  const cards = response.cards.map((card) => ({
    ...card,
    indicator: 'warning' as const,
    summary: card.summary.startsWith('Not recorded: ') ? card.summary : fitSummary(`Not recorded: ${card.summary}`),
    detail: `**${note}**\n\n${card.detail ?? ''}`,
  }));
  return { cards, ...(response.systemActions ? { systemActions } : {}) };
}
