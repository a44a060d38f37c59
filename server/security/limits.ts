import type { ErrorRequestHandler, Request, RequestHandler } from 'express';
import { HttpError, operationOutcome, type IssueInput } from '../http/operation-outcome.ts';

/**
 * Request limits: JSON nesting depth, number of draft orders, body-parser failures as
 * OperationOutcomes, and a last-resort response timeout. Body size itself is express.json's `limit`.
 */

/**
 * Whether `value` nests objects/arrays deeper than `maxDepth` (`{}` is depth 1, a scalar 0).
 * Recursive but bounded: it never descends more than `maxDepth + 1` levels, so hostile input
 * cannot overflow the call stack; and it allocates nothing, because it runs on every request body.
 */
export function jsonDepthExceeds(value: unknown, maxDepth: number): boolean {
  return typeof value === 'object' && value !== null && deeperThan(value, 1, maxDepth);
}

function deeperThan(node: object, depth: number, maxDepth: number): boolean {
  if (depth > maxDepth) return true;
  if (Array.isArray(node)) {
    for (let i = 0; i < node.length; i++) {
      const child: unknown = node[i];
      if (typeof child === 'object' && child !== null && deeperThan(child, depth + 1, maxDepth)) return true;
    }
    return false;
  }
  // No hasOwn filter: JSON.parse makes only own properties, and an inherited enumerable one
  // (a polluted prototype) would only be counted too, never skipped; the filter doubled the cost.
  for (const key in node) {
    const child: unknown = (node as Record<string, unknown>)[key];
    if (typeof child === 'object' && child !== null && deeperThan(child, depth + 1, maxDepth)) return true;
  }
  return false;
}

/** The problem with a body nested deeper than `maxDepth`, if it is. */
export function jsonDepthIssue(body: unknown, maxDepth: number): IssueInput | undefined {
  return jsonDepthExceeds(body, maxDepth) ? { code: 'too-costly', diagnostics: `JSON nesting deeper than ${maxDepth} levels` } : undefined;
}

/** Mount right after express.json(): rejects too-deep bodies before validators or FHIRPath recurse into them. */
export function createJsonDepthLimit(maxDepth: number): RequestHandler {
  return (req, res, next) => {
    const issue = jsonDepthIssue(req.body as unknown, maxDepth);
    if (issue) {
      res.status(400).json(operationOutcome([issue]));
      return;
    }
    next();
  };
}

function entryCount(bundle: unknown): number {
  if (typeof bundle !== 'object' || bundle === null) return 0;
  const entry: unknown = (bundle as { entry?: unknown }).entry;
  return Array.isArray(entry) ? entry.length : 0;
}

/** Number of entries in `context.draftOrders` of a hook request body (0 when absent or malformed). */
export function draftOrderCount(body: unknown): number {
  if (typeof body !== 'object' || body === null) return 0;
  const context: unknown = (body as { context?: unknown }).context;
  if (typeof context !== 'object' || context === null) return 0;
  return entryCount((context as { draftOrders?: unknown }).draftOrders);
}

/** The problem with a hook request carrying more than `max` draft orders, if it does. */
export function draftOrdersIssue(body: unknown, max: number): IssueInput | undefined {
  const count = draftOrderCount(body);
  return count > max ? { code: 'too-costly', diagnostics: `${count} draft orders; at most ${max} are accepted`, expression: ['context.draftOrders'] } : undefined;
}

/** Rejects hook requests with more than `max` draft orders (each may trigger FHIR queries). */
export function createDraftOrdersLimit(max: number): RequestHandler {
  return (req, res, next) => {
    const issue = draftOrdersIssue(req.body as unknown, max);
    if (issue) {
      res.status(400).json(operationOutcome([issue]));
      return;
    }
    next();
  };
}

/**
 * Turns express.json()/body-parser failures (malformed JSON, too large, bad charset) into 4xx
 * OperationOutcomes instead of Express's default HTML page; other errors go on to `next`.
 */
export const bodyErrorHandler: ErrorRequestHandler = (err: unknown, _req, res, next) => {
  const e = err as { type?: unknown; status?: unknown; statusCode?: unknown } | null;
  const status = typeof e?.status === 'number' ? e.status : typeof e?.statusCode === 'number' ? e.statusCode : undefined;
  // No `type` check: body-parser wraps stream and decompression failures (a gzip or br body that
  // does not inflate) as a bare http-error 400 without one. Mounted right after the parser, any
  // 4xx error here is about reading the body.
  // The service's own HttpErrors (the hook route, mounted before this handler, throws them) carry
  // their OperationOutcome to the final handler.
  if (err instanceof HttpError || status === undefined || status < 400 || status > 499 || res.headersSent) {
    next(err);
    return;
  }
  const type = e?.type;
  if (type === 'entity.too.large') {
    res.status(413).json(operationOutcome([{ code: 'too-costly', diagnostics: 'Request body too large' }]));
  } else if (type === 'entity.parse.failed') {
    res.status(400).json(operationOutcome([{ code: 'structure', diagnostics: 'Request body is not valid JSON' }]));
  } else if (type === 'charset.unsupported' || type === 'encoding.unsupported') {
    res.status(415).json(operationOutcome([{ code: 'not-supported', diagnostics: 'Unsupported request body encoding' }]));
  } else {
    // Client errors from the router can flow here too (errors travel forward to the next error handler).
    res.status(status).json(operationOutcome([{ code: 'invalid', diagnostics: err instanceof URIError ? URL_NOT_DECODABLE : 'Request body could not be read' }]));
  }
};

const URL_NOT_DECODABLE = 'The request URL is not valid percent-encoding';

/**
 * Mount just before the app's final error handler. Express and its router mark some failures as the
 * client's fault with an http-errors style 4xx `status` (e.g. a route parameter that is not valid
 * percent-encoding: `/policies/%E0` makes router throw a URIError with status 400). Without this
 * they reach the final handler as unknown errors and become 500s. The service's own HttpError is
 * left to the final handler, which knows its OperationOutcome.
 */
export const clientErrorHandler: ErrorRequestHandler = (err: unknown, _req, res, next) => {
  const e = err as { status?: unknown; statusCode?: unknown } | null;
  const status = typeof e?.status === 'number' ? e.status : typeof e?.statusCode === 'number' ? e.statusCode : undefined;
  if (err instanceof HttpError || status === undefined || !Number.isInteger(status) || status < 400 || status > 499 || res.headersSent) {
    next(err);
    return;
  }
  const diagnostics = err instanceof URIError ? URL_NOT_DECODABLE : 'The request could not be processed';
  res.status(status).json(operationOutcome([{ code: status === 413 ? 'too-costly' : 'invalid', diagnostics }]));
};

/**
 * Last-resort guard: if nothing has responded after `ms`, answer with `status` and either `body(req)`
 * or an OperationOutcome (code `timeout`), and set `res.locals.timedOut` so late handlers can stop.
 * 5xx statuses are refused because the service must never produce one. The default 408 tells the
 * client the request was not processed; for hook endpoints, whose pipeline answers within its own
 * FHIR deadline, a caller may prefer `200` with `() => ({ cards: [], systemActions: [] })`.
 * Handlers (and the final error handler) must check `res.headersSent` before writing.
 */
export function requestTimeout(ms: number, status = 408, body?: (req: Request) => unknown): RequestHandler {
  if (!Number.isInteger(status) || status < 200 || status > 499) {
    throw new TypeError(`requestTimeout: status must be 2xx-4xx, got ${status}`);
  }
  return (req, res, next) => {
    const timer = setTimeout(() => {
      if (res.headersSent) return;
      res.locals.timedOut = true;
      if (status === 408) res.set('Connection', 'close');
      res
        .status(status)
        .json(body ? body(req) : operationOutcome([{ code: 'timeout', diagnostics: `No response within ${ms} ms` }]));
    }, ms);
    const clear = (): void => clearTimeout(timer);
    res.once('finish', clear);
    res.once('close', clear);
    next();
  };
}
