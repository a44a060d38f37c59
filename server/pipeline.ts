import { randomUUID } from 'node:crypto';
import type { FhirResource } from 'fhir/r4.js';
import { renderResponse, readConfiguration, type OrderOutcome, type RenderedResponse } from '../cards/render.ts';
import { dayFromDate } from '../policies/engine/dates.ts';
import { evaluateCompanionOrder, evaluatePolicy, serviceDateOf } from '../policies/engine/evaluate.ts';
import { orderProductFacts } from '../policies/engine/products.ts';
import { referenceOf, type OrderResource } from '../policies/engine/record.ts';
import type { MatchedProduct, PolicyDecision } from '../policies/engine/types.ts';
import type { PolicyRegistry } from '../policies/registry.ts';
import type { CompiledPolicy } from '../policies/engine/context.ts';
import { resolveCoverage, type ResolvedCoverage } from './coverage.ts';
import { createFhirSource, type FhirSource } from './gather/fhir-source.ts';
import { gatherRecord, type GatherResult } from './gather/gather.ts';
import { parseJsonText } from './http/json-text.ts';
import { HttpError } from './http/operation-outcome.ts';
import type { Logger } from './logger.ts';
import type { ServiceCatalog } from './protocol/services.ts';
import type { HookRequest, HookResponse } from './protocol/types.ts';
import { HookRequestValidator } from './protocol/validate.ts';
import type { ServiceConfig } from './config.ts';
import { isFhirServerAllowed } from './security/fhir-server-guard.ts';
import { draftOrdersIssue, jsonDepthIssue } from './security/limits.ts';
import type { TrustedClient } from './security/trusted-clients.ts';
import type { DecisionRecord, OrderDecisionRecord } from './store/types.ts';

/**
 * One hook call, as a pipeline: validate → gather data → resolve payer and policy → evaluate
 * criteria → render → (log). Each stage has a small typed interface; this module only wires
 * them and owns the deadline.
 */
export interface PipelineDeps {
  registry: PolicyRegistry;
  services: ServiceCatalog;
  validator: HookRequestValidator;
  logger: Logger;
  baseUrl: string;
  fhirDeadlineMs: number;
  fhirMaxPages: number;
  now: () => Date;
}

export interface Caller {
  /** Verified iss of the CDS client; undefined when authentication is off. */
  iss: string | undefined;
  client: TrustedClient | undefined;
}

export interface HookResult {
  response: HookResponse;
  /** What the decision log keeps about this call. */
  record: DecisionRecord;
}

interface EvaluatedOrder extends OrderOutcome {
  product: MatchedProduct | undefined;
}

function ordersInScope(request: HookRequest, drafts: OrderResource[]): OrderResource[] {
  if (request.hook !== 'order-select') return drafts;
  // order-select: guidance limited to the selections, the other drafts are context (CRD §hook-34).
  const selected = new Set(request.context.selections ?? []);
  return drafts.filter((o) => selected.has(referenceOf(o)));
}

/** A decision that says "we could not evaluate": never a 5xx, never a guess (CRD §resp-42). */
function technicalDecision(policy: CompiledPolicy, product: MatchedProduct, order: OrderResource, today: string): PolicyDecision {
  const doc = policy.doc;
  return {
    policy: { id: doc.id, title: doc.title, policyNumber: doc.policyNumber, version: doc.version, payer: doc.payer },
    product,
    orderReference: referenceOf(order),
    serviceDate: today,
    coverageRules: [],
    results: [],
    determination: {
      covered: 'indeterminate',
      paNeeded: doc.priorAuth === 'always' ? 'auth-needed' : 'indeterminate',
      docNeeded: [],
      infoNeeded: [],
      reasons: [{ code: 'technical', text: 'The order could not be evaluated: the clinical data was not in a readable form' }],
      billingCodes: [],
      routes: [],
    },
    notes: [],
    instructions: [],
  };
}

function evaluateOrder(
  deps: PipelineDeps,
  order: OrderResource,
  gathered: GatherResult,
  coverage: ResolvedCoverage,
  today: string,
): EvaluatedOrder {
  const { registry, logger } = deps;
  const facts = orderProductFacts(order, gathered.index);
  const product = registry.catalog.identify(facts);
  const base = { order: order as FhirResource, orderReference: referenceOf(order), product };
  const serviceDate = serviceDateOf(order, today);
  if (!product) {
    // An order naming no product may still be a service a policy judges with one (e.g. fertility preservation with a CGT).
    const policies = registry.companionPoliciesFor(coverage.payer.id, serviceDate);
    if (policies.length === 0) return { ...base, decisions: [] };
    try {
      return { ...base, decisions: evaluateCompanionOrder({ policies, catalog: registry.catalog, record: gathered.record, index: gathered.index, order, coverage: coverage.coverage, today }) };
    } catch (error) {
      // Malformed FHIR must not take the whole answer down; an unjudged service gets no assertion.
      logger.error({ err: { name: (error as Error).name, message: (error as Error).message } }, 'companion service evaluation failed');
      return { ...base, decisions: [] };
    }
  }
  const decisions: PolicyDecision[] = [];
  for (const policy of registry.policiesFor(coverage.payer.id, product, serviceDate)) {
    try {
      const decision = evaluatePolicy({
        policy,
        catalog: registry.catalog,
        record: gathered.record,
        index: gathered.index,
        order,
        facts,
        product,
        coverage: coverage.coverage,
        memberGroups: coverage.memberGroups,
        today,
      });
      if (decision) decisions.push(decision);
    } catch (error) {
      // Malformed FHIR deep inside a resource must not take the whole answer down.
      logger.error({ policy: policy.doc.id, err: { name: (error as Error).name, message: (error as Error).message } }, 'policy evaluation failed');
      decisions.push(technicalDecision(policy, product, order, today));
    }
  }
  return { ...base, decisions };
}

/** The resources the decision rests on, minimised: evidence references, the coverage, and the patient's age and sex only. */
function evidenceSubset(decisions: PolicyDecision[], gathered: GatherResult, coverage: ResolvedCoverage): FhirResource[] {
  const keys = new Set<string>();
  for (const d of decisions) for (const r of d.results) for (const e of r.evidence) if (e.reference) keys.add(e.reference);
  const out: FhirResource[] = [coverage.coverage];
  const patient = gathered.record.patient;
  if (patient) out.push({ resourceType: 'Patient', ...(patient.id ? { id: patient.id } : {}), ...(patient.birthDate ? { birthDate: patient.birthDate } : {}), ...(patient.gender ? { gender: patient.gender } : {}) });
  for (const key of keys) {
    if (key.startsWith('Patient/')) continue;
    const resource = gathered.index.resolve({ reference: key });
    if (resource && resource.resourceType !== 'Patient') out.push(resource);
  }
  return out;
}

export interface BodyLimits {
  maxJsonDepth: number;
  maxDraftOrders: number;
}

/**
 * The pipeline as the configuration sets it up, built the same way on the service's thread and
 * on each hook thread (which load their own registry, catalog and logger).
 */
export function configuredPipeline(
  config: ServiceConfig,
  parts: { registry: PolicyRegistry; services: ServiceCatalog; logger: Logger; now?: () => Date },
): { pipeline: PipelineDeps; limits: BodyLimits } {
  return {
    pipeline: {
      registry: parts.registry,
      services: parts.services,
      validator: new HookRequestValidator(config.maxDraftOrders),
      logger: parts.logger,
      baseUrl: config.baseUrl,
      fhirDeadlineMs: config.fhirDeadlineMs,
      fhirMaxPages: config.fhirMaxPages,
      now: parts.now ?? (() => new Date()),
    },
    limits: { maxJsonDepth: config.maxJsonDepth, maxDraftOrders: config.maxDraftOrders },
  };
}

/**
 * A hook call from its body as text: parsed as express.json() would, checked against the body
 * limits the other routes get as middleware, then answered. The hook route runs this on the
 * service's thread or on a hook thread; refusals are HttpErrors either way.
 */
export async function answerHookText(deps: PipelineDeps, limits: BodyLimits, serviceId: string, text: string | undefined, caller: Caller): Promise<HookResult> {
  const body = parseJsonText(text);
  const issue = jsonDepthIssue(body, limits.maxJsonDepth) ?? draftOrdersIssue(body, limits.maxDraftOrders);
  if (issue) throw new HttpError(400, issue);
  return answerHook(deps, serviceId, body, caller);
}

export async function answerHook(deps: PipelineDeps, serviceId: string, body: unknown, caller: Caller): Promise<HookResult> {
  const receivedAt = deps.now();
  const started = performance.now();
  const service = deps.services.get(serviceId);
  if (!service) {
    throw new HttpError(404, { code: 'not-found', diagnostics: `No CDS service "${serviceId}" here; see GET /cds-services` });
  }

  // 1. validate
  const request = deps.validator.validate(service.hook, body);

  // 2. gather, under one deadline for every FHIR query of this call
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), deps.fhirDeadlineMs);
  let gathered: GatherResult;
  try {
    let fhir: FhirSource | undefined;
    let noFhirReason: string | undefined;
    if (request.fhirServer) {
      if (isFhirServerAllowed(caller.client, request.fhirServer)) {
        fhir = createFhirSource({
          baseUrl: request.fhirServer,
          ...(request.fhirAuthorization?.access_token ? { accessToken: request.fhirAuthorization.access_token } : {}),
          signal: controller.signal,
        });
      } else {
        deps.logger.warn({ iss: caller.iss }, 'fhirServer is not among the client\'s allowed FHIR servers; it will not be contacted');
        noFhirReason = "the fhirServer is not one of this client's allowed FHIR servers";
      }
    }
    gathered = await gatherRecord(request, service.prefetch, fhir, deps.fhirMaxPages, noFhirReason);
  } finally {
    clearTimeout(timer);
  }
  const gatheredAt = performance.now();

  // 3. resolve payer and coverage
  const coverage = resolveCoverage(gathered.record, gathered.index, deps.registry, request.context.patientId);

  // 4. evaluate each order in scope under the payer's policies
  const today = dayFromDate(receivedAt);
  const evaluated = ordersInScope(request, gathered.record.draftOrders).map((order) => evaluateOrder(deps, order, gathered, coverage, today));

  // 5. render
  const rendered: RenderedResponse = renderResponse(evaluated, {
    hook: service.hook,
    payerName: coverage.payer.name,
    coverageReference: coverage.reference,
    date: today,
    baseUrl: deps.baseUrl,
    configuration: readConfiguration(request.extension),
    instructions: (policyId) => {
      const doc = deps.registry.policy(policyId)?.doc;
      return { topic: doc?.instructionsTopic ?? 'clinical-reminder', summary: doc?.instructionsSummary ?? 'requirements of the payer policy' };
    },
  });
  const finished = performance.now();

  // 6. log (no patient identifiers, no tokens)
  deps.logger.info(
    {
      serviceId,
      hook: service.hook,
      hookInstance: request.hookInstance,
      iss: caller.iss,
      payer: coverage.payer.id,
      orders: evaluated.map((o) => ({
        type: o.order.resourceType,
        product: o.product?.product?.id ?? o.product?.matchedValue,
        decisions: o.decisions.map((d) => ({ policy: d.policy.id, covered: d.determination.covered, pa: d.determination.paNeeded, missing: d.results.reduce((n, r) => n + r.missing.length, 0) })),
      })),
      sources: gathered.sources,
      problems: gathered.problems,
      ms: { gather: Math.round(gatheredAt - started), total: Math.round(finished - started) },
    },
    'hook answered',
  );

  const allDecisions = evaluated.flatMap((o) => o.decisions);
  const orders: OrderDecisionRecord[] = evaluated.flatMap((o): OrderDecisionRecord[] =>
    o.decisions.length === 0
      ? [{ orderReference: o.orderReference, productId: o.product?.product?.id ?? null, policyId: null, policyVersion: null, coverageReference: coverage.reference, assertionId: null, covered: null, paNeeded: null, criteria: [] }]
      : o.decisions.map((d) => ({
          orderReference: o.orderReference,
          productId: d.product.product?.id ?? null,
          policyId: d.policy.id,
          policyVersion: d.policy.version,
          coverageReference: coverage.reference,
          assertionId: rendered.assertionId ?? null,
          covered: d.determination.covered,
          paNeeded: d.determination.paNeeded ?? null,
          criteria: { determination: d.determination, results: d.results, coverageRules: d.coverageRules },
        })),
  );
  const record: DecisionRecord = {
    id: randomUUID(),
    receivedAt: receivedAt.toISOString(),
    respondedAt: deps.now().toISOString(),
    clientIss: caller.iss ?? null,
    serviceId,
    hook: service.hook,
    hookInstance: request.hookInstance,
    patientId: request.context.patientId,
    payerId: coverage.payer.id,
    orders,
    assertionIds: rendered.assertionId ? [rendered.assertionId] : [],
    cardUuids: rendered.cards.map((c) => c.uuid),
    evidence: evidenceSubset(allDecisions, gathered, coverage),
    response: rendered.response,
  };
  return { response: rendered.response, record };
}

