import express, { type ErrorRequestHandler, type Express, type RequestHandler } from 'express';
import { policyPage } from '../cards/policy-page.ts';
import { unrecordedResponse } from '../cards/render.ts';
import type { PolicyRegistry } from '../policies/registry.ts';
import { HttpError, operationOutcome } from './http/operation-outcome.ts';
import type { Logger } from './logger.ts';
import { JSON_TYPES, jsonTextBody } from './http/json-text.ts';
import { answerHookText, configuredPipeline } from './pipeline.ts';
import type { ServiceCatalog } from './protocol/services.ts';
import type { HookResponse } from './protocol/types.ts';
import { createClientAuthenticator } from './security/client-auth.ts';
import { createCors } from './security/cors.ts';
import { bodyErrorHandler, clientErrorHandler, createDraftOrdersLimit, createJsonDepthLimit, requestTimeout } from './security/limits.ts';
import { createRateLimiter } from './security/rate-limit.ts';
import type { TrustedClient } from './security/trusted-clients.ts';
import type { DecisionRecord } from './store/types.ts';
import type { PreparedDecision } from './store/repository.ts';
import { reviveError, type ErrorSummary, type HookReply } from './hook-threads/messages.ts';
import { HookThreadsUnavailableError, HookThreadTimeoutError, type HookThreadPool, type NewHookJob } from './hook-threads/pool.ts';
import type { ServiceConfig } from './config.ts';

/** Receives each decision before its response is sent; the response waits for it (issue: decision log). */
export interface DecisionRecorder {
  record(decision: DecisionRecord): Promise<void>;
  /** record() for a decision a hook thread already normalised and serialised; needed with hook threads. */
  recordPrepared?(decision: PreparedDecision): Promise<void>;
  health(): Promise<{ ok: boolean; engine: string; spooled: number }>;
}

export interface AppDeps {
  config: ServiceConfig;
  logger: Logger;
  registry: PolicyRegistry;
  services: ServiceCatalog;
  /** Trusted CDS clients; undefined means authentication is off (development only). */
  clients: TrustedClient[] | undefined;
  recorder?: DecisionRecorder;
  /** Extra routers mounted after the hook routes (feedback, decision lookup). */
  routers?: RequestHandler[];
  now?: () => Date;
  /** Hook threads answering hook calls; without them (or when none is running) this thread answers. */
  hookThreads?: HookThreadPool;
}

export function createApp(deps: AppDeps): Express {
  const { config, logger, registry, services } = deps;
  const { pipeline, limits: bodyLimits } = configuredPipeline(config, { registry, services, logger, ...(deps.now ? { now: deps.now } : {}) });
  const { recorder, hookThreads } = deps;
  if (hookThreads && recorder && !recorder.recordPrepared) throw new Error('hook threads need a decision recorder that takes prepared decisions (recordPrepared)');

  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);

  app.get('/health', async (_req, res) => {
    const store = deps.recorder ? await deps.recorder.health().catch(() => ({ ok: false, engine: 'unknown', spooled: -1 })) : undefined;
    res.json({
      status: 'ok',
      policies: registry.policies.length,
      services: services.document.services.length,
      decisionLog: store ?? { ok: false, engine: 'off', spooled: 0 },
      // Fewer running than configured: a thread died and is being replaced.
      hookThreads: { configured: hookThreads?.size ?? 0, running: hookThreads?.workers.length ?? 0 },
    });
  });
  app.get('/policies/:id', (req, res) => {
    const policy = registry.policy(req.params.id);
    if (!policy) {
      res.status(404).json(operationOutcome([{ code: 'not-found', diagnostics: `No policy "${req.params.id}"` }]));
      return;
    }
    const payer = registry.payer(policy.doc.payer);
    if (req.accepts(['html', 'json']) === 'json') res.json(policy.doc);
    else res.type('html').send(policyPage(policy.doc, payer?.name ?? policy.doc.payer));
  });

  // Order matters: see server/security/README.md.
  app.use(createCors(config.corsOrigins));
  app.use('/cds-services', createClientAuthenticator({ clients: deps.clients, baseUrl: config.baseUrl, logger }));
  app.use(createRateLimiter({ perMinute: config.rateLimitPerMinute }));
  app.use(requestTimeout(config.requestTimeoutMs));
  // The hook route reads its body as text and parses it with the pipeline (server/http/json-text.ts);
  // read failures (size, charset, compression) go on to bodyErrorHandler below.
  app.post<{ id: string }>('/cds-services/:id', jsonTextBody(config.maxBodyBytes), async (req, res) => {
    const text = req.body as string | undefined;
    // Nothing of the request body is needed once it is parsed: let it go before waiting for the commit.
    req.body = undefined;
    const caller = { iss: res.locals.clientIss as string | undefined, client: res.locals.client as TrustedClient | undefined };
    // Serialised once, on whichever thread answered: the record keeps exactly the bytes the EHR receives.
    let body: string;
    let keep: (() => Promise<void>) | undefined;
    const threaded = hookThreads ? await answerOnHookThread(hookThreads, { serviceId: req.params.id, text, caller, prepareDecision: recorder !== undefined }) : undefined;
    if (threaded) {
      body = threaded.body;
      const { decision, unrecordable } = threaded;
      const recordPrepared = recorder?.recordPrepared?.bind(recorder);
      keep = recordPrepared && (() => (decision ? recordPrepared(decision) : Promise.reject(reviveError(unrecordable ?? { name: 'Error', message: 'no decision prepared' }))));
    } else {
      const result = await answerHookText(pipeline, bodyLimits, req.params.id, text, caller);
      const answered = JSON.stringify(result.response);
      body = answered;
      keep = recorder && (() => recorder.record({ ...result.record, responseJson: answered }));
    }
    // CRD §found-37: the answer is acknowledged only once its record is kept (committed, or
    // fsynced to the local spool when the database is down). If even that fails, the EHR still
    // gets the guidance, but as an unrecorded, indeterminate answer rather than an assertion.
    if (keep) {
      try {
        await keep();
      } catch (error) {
        logger.error({ err: { name: (error as Error).name, message: (error as Error).message } }, 'decision could not be recorded; answering unrecorded');
        body = JSON.stringify(unrecordedResponse(JSON.parse(body) as HookResponse));
      }
    }
    if (res.headersSent) return;
    res.type('application/json').send(body);
  });

  /**
   * A hook call answered on a hook thread; undefined when no thread could take it (the route then
   * answers on this thread). Refusals and failures are rethrown here as the route's own would be.
   */
  async function answerOnHookThread(pool: HookThreadPool, job: NewHookJob): Promise<{ body: string; decision?: PreparedDecision; unrecordable?: ErrorSummary } | undefined> {
    let reply: HookReply;
    try {
      reply = await pool.answer(job);
    } catch (err) {
      // A stuck call: the request timeout has normally answered it already.
      if (err instanceof HookThreadTimeoutError) throw new HttpError(408, { code: 'timeout', diagnostics: err.message });
      if (!(err instanceof HookThreadsUnavailableError)) throw err;
      logger.warn({ reason: err.message }, 'hook call answered on the service thread: no hook thread available');
      return undefined;
    }
    if (reply.kind === 'refused') throw HttpError.fromOutcome(reply.status, reply.outcome);
    if (reply.kind === 'failed') throw reviveError(reply.error);
    return reply;
  }
  app.use(express.json({ limit: config.maxBodyBytes, type: JSON_TYPES }));
  app.use(bodyErrorHandler);
  app.use(createJsonDepthLimit(config.maxJsonDepth));
  app.use('/cds-services', createDraftOrdersLimit(config.maxDraftOrders));

  app.get('/cds-services', (_req, res) => {
    res.type('application/json').send(services.json);
  });
  for (const router of deps.routers ?? []) app.use(router);

  app.use((req, res) => {
    res.status(404).json(operationOutcome([{ code: 'not-found', diagnostics: `No route for ${req.method} ${req.path}` }]));
  });
  const errors: ErrorRequestHandler = (err: unknown, req, res, _next) => {
    if (res.headersSent) return;
    if (err instanceof HttpError) {
      // One line per refused call, as for answered ones: status and issue codes, never request data.
      logger.info(
        { status: err.status, issues: err.outcome.issue.map((i) => i.code), path: req.path.slice(0, 120), iss: res.locals.clientIss as string | undefined },
        'hook refused',
      );
      res.status(err.status).json(err.outcome);
      return;
    }
    // A bug, not the caller's fault; logged without request data.
    logger.error({ err: { name: (err as Error)?.name, message: (err as Error)?.message, stack: (err as Error)?.stack } }, 'unhandled error');
    res.status(500).json(operationOutcome([{ code: 'exception', severity: 'fatal', diagnostics: 'Internal error; the request was not processed' }]));
  };
  // Client errors raised by Express itself (e.g. a URIError for malformed percent-encoding in a route param) are 4xx.
  app.use(clientErrorHandler);
  app.use(errors);
  return app;
}
