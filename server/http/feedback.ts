import { Ajv, type ErrorObject } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { Router, type Request, type Response } from 'express';
import type { Logger } from '../logger.ts';
import { describeError, isDataError } from '../store/errors.ts';
import type { DecisionStore, FeedbackItem } from '../store/types.ts';
import { HttpError, operationOutcome, type IssueInput } from './operation-outcome.ts';

type FormatsPlugin = (ajv: Ajv) => Ajv;
const addFormats = ((addFormatsModule as unknown as { default?: FormatsPlugin }).default ??
  (addFormatsModule as unknown as FormatsPlugin)) as FormatsPlugin;

/** Bounds one request so a client cannot make a single call hold the store for long. */
const MAX_ITEMS = 100;

const coding = {
  type: 'object',
  required: ['code', 'system'],
  properties: {
    code: { type: 'string', minLength: 1, maxLength: 256 },
    system: { type: 'string', minLength: 1, maxLength: 1024 },
    display: { type: 'string', maxLength: 1024 },
  },
};

// CDS Hooks 2.0 §Feedback. Unknown properties are allowed (extensions) and ignored.
const feedbackSchema = {
  type: 'object',
  required: ['feedback'],
  properties: {
    feedback: {
      type: 'array',
      minItems: 1,
      maxItems: MAX_ITEMS,
      items: {
        type: 'object',
        required: ['card', 'outcome', 'outcomeTimestamp'],
        properties: {
          card: { type: 'string', minLength: 1, maxLength: 256 },
          outcome: { type: 'string', enum: ['accepted', 'overridden'] },
          acceptedSuggestions: {
            type: 'array',
            minItems: 1,
            maxItems: MAX_ITEMS,
            items: { type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1, maxLength: 256 } } },
          },
          overrideReason: {
            type: 'object',
            properties: { reason: coding, userComment: { type: 'string', maxLength: 4000 } },
          },
          outcomeTimestamp: { type: 'string', format: 'date-time' },
        },
      },
    },
  },
};

const ajv = new Ajv({ allErrors: true, strict: true });
addFormats(ajv);
const validateShape = ajv.compile<{ feedback: FeedbackItem[] }>(feedbackSchema);

/** JSON pointer → FHIRPath-like location, e.g. /feedback/0/outcome → feedback[0].outcome */
function location(pointer: string, extra?: string): string {
  const parts = pointer.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (extra !== undefined) parts.push(extra);
  return parts.reduce((acc, part) => (/^\d+$/.test(part) ? `${acc}[${part}]` : acc ? `${acc}.${part}` : part), '');
}

function issueFor(error: ErrorObject): IssueInput {
  const missing = error.keyword === 'required' ? (error.params as { missingProperty?: string }).missingProperty : undefined;
  const where = location(error.instancePath, missing) || 'body';
  const detail =
    error.keyword === 'enum' ? `must be one of ${(error.params as { allowedValues: unknown[] }).allowedValues.join(', ')}` : (error.message ?? 'is invalid');
  return { code: missing ? 'required' : 'invalid', diagnostics: missing ? `${where} is required` : `${where} ${detail}`, expression: [where] };
}

/** Rules the schema states poorly: which optional parts go with which outcome. */
function outcomeIssues(items: FeedbackItem[]): IssueInput[] {
  const issues: IssueInput[] = [];
  items.forEach((item, i) => {
    const at = `feedback[${i}]`;
    if (item.outcome === 'accepted' && item.acceptedSuggestions === undefined) {
      issues.push({ code: 'required', diagnostics: `${at}.acceptedSuggestions is required when outcome is accepted`, expression: [`${at}.acceptedSuggestions`] });
    }
    if (item.outcome === 'accepted' && item.overrideReason !== undefined) {
      issues.push({ code: 'invalid', diagnostics: `${at}.overrideReason is only allowed when outcome is overridden`, expression: [`${at}.overrideReason`] });
    }
    if (item.outcome === 'overridden' && item.acceptedSuggestions !== undefined) {
      issues.push({ code: 'invalid', diagnostics: `${at}.acceptedSuggestions is only allowed when outcome is accepted`, expression: [`${at}.acceptedSuggestions`] });
    }
  });
  return issues;
}

/** Validates a feedback request body; throws HttpError 400 naming every failing field. */
export function parseFeedback(body: unknown): FeedbackItem[] {
  if (!validateShape(body)) {
    const errors = (validateShape.errors ?? []).filter((e) => e.keyword !== 'if');
    throw new HttpError(400, errors.length > 0 ? errors.map(issueFor) : { code: 'invalid', diagnostics: 'invalid feedback body' });
  }
  const issues = outcomeIssues(body.feedback);
  if (issues.length > 0) throw new HttpError(400, issues);
  // Keep only the defined fields: extensions and unknown properties are not stored.
  return body.feedback.map((f) => ({
    card: f.card,
    outcome: f.outcome,
    ...(f.acceptedSuggestions ? { acceptedSuggestions: f.acceptedSuggestions.map((s) => ({ id: s.id })) } : {}),
    ...(f.overrideReason
      ? {
          overrideReason: {
            ...(f.overrideReason.reason
              ? {
                  reason: {
                    code: f.overrideReason.reason.code,
                    system: f.overrideReason.reason.system,
                    ...(f.overrideReason.reason.display !== undefined ? { display: f.overrideReason.reason.display } : {}),
                  },
                }
              : {}),
            ...(f.overrideReason.userComment !== undefined ? { userComment: f.overrideReason.userComment } : {}),
          },
        }
      : {}),
    outcomeTimestamp: f.outcomeTimestamp,
  }));
}

export interface FeedbackRouterDeps {
  store: DecisionStore;
  serviceIds: Set<string>;
  logger: Logger;
}

function sendError(res: Response, err: HttpError): void {
  res.status(err.status).json(err.outcome);
}

/**
 * POST /cds-services/{id}/feedback (CDS Hooks 2.0). Mount after the client authenticator (it
 * sets res.locals.clientIss) and express.json(). Answers 200 with
 * { stored, duplicates, unknownCards } once the feedback is committed; a repeat of the same
 * feedback is a duplicate, not an error. 503 when the store cannot take it now: the client may
 * retry, and a retry is idempotent.
 */
export function createFeedbackRouter(deps: FeedbackRouterDeps): Router {
  const router = Router();
  router.post('/cds-services/:id/feedback', async (req: Request<{ id: string }>, res: Response) => {
    const serviceId = req.params.id;
    if (!deps.serviceIds.has(serviceId)) {
      res.status(404).json(operationOutcome([{ code: 'not-found', diagnostics: `No CDS service "${serviceId}"` }]));
      return;
    }
    let items: FeedbackItem[];
    try {
      items = parseFeedback(req.body);
    } catch (err) {
      if (err instanceof HttpError) return sendError(res, err);
      throw err;
    }
    const iss = res.locals.clientIss;
    try {
      const result = await deps.store.saveFeedback(serviceId, typeof iss === 'string' ? iss : null, items);
      deps.logger.info({ event: 'feedback', serviceId, ...result, unknownCards: result.unknownCards.length }, 'feedback stored');
      res.status(200).json(result);
    } catch (err) {
      deps.logger.warn({ event: 'feedback_failed', serviceId, err: describeError(err) }, 'feedback not stored');
      if (isDataError(err)) {
        sendError(res, new HttpError(400, { code: 'invalid', diagnostics: 'The feedback holds a value that cannot be stored' }));
        return;
      }
      res.setHeader('Retry-After', '5');
      sendError(res, new HttpError(503, { code: 'transient', diagnostics: 'Feedback could not be stored now; retry later' }));
    }
  });
  return router;
}
