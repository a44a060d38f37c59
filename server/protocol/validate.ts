import type { ErrorObject, ValidateFunction } from 'ajv';
import { createAjv } from '../../policies/schema/ajv.ts';
import { HttpError, type IssueInput } from '../http/operation-outcome.ts';
import { hookRequestSchema } from './request-schema.ts';
import type { HookRequest } from './types.ts';

export type OrderHook = 'order-sign' | 'order-select';

/** ajv's "/context/draftOrders/entry/0" as the FHIRPath-like "context.draftOrders.entry[0]". */
function location(instancePath: string): string {
  const parts = instancePath.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  let out = '';
  for (const part of parts) out += /^\d+$/.test(part) ? `[${part}]` : out ? `.${part}` : part;
  return out || '(body)';
}

function describe(error: ErrorObject): IssueInput {
  const where = location(error.instancePath);
  const params = error.params as Record<string, unknown>;
  let message = error.message ?? 'is invalid';
  if (error.keyword === 'required') message = `is missing required property "${String(params.missingProperty)}"`;
  if (error.keyword === 'const') message = `must be "${String(params.allowedValue)}"`;
  const dependency = error.keyword === 'dependencies' || error.keyword === 'dependentRequired';
  if (dependency) message = `must have "${String(params.missingProperty)}" when "${String(params.property)}" is present`;
  const field = error.keyword === 'required' || dependency ? `${where === '(body)' ? '' : `${where}.`}${String(params.missingProperty)}` : where;
  return {
    code: error.keyword === 'required' || dependency ? 'required' : error.keyword === 'maxItems' || error.keyword === 'maxProperties' ? 'too-costly' : 'structure',
    diagnostics: `${where} ${message}`,
    expression: [field],
  };
}

/** Compiled validators per hook; built once at startup. */
export class HookRequestValidator {
  private readonly validators: Record<OrderHook, ValidateFunction>;

  constructor(maxDraftOrders: number) {
    const ajv = createAjv({ allErrors: true, strict: false });
    this.validators = {
      'order-sign': ajv.compile(hookRequestSchema('order-sign', maxDraftOrders)),
      'order-select': ajv.compile(hookRequestSchema('order-select', maxDraftOrders)),
    };
  }

  /** Returns the typed request, or throws HttpError 400 naming every problem (up to 10). */
  validate(hook: OrderHook, body: unknown): HookRequest {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw new HttpError(400, { code: 'structure', diagnostics: 'The request body must be a JSON object (CDS Hooks request)' });
    }
    const validate = this.validators[hook];
    if (!validate(body)) {
      const hookError = validate.errors?.find((e) => e.instancePath === '/hook' && e.keyword === 'const');
      const errors = hookError ? [hookError] : (validate.errors ?? []);
      throw new HttpError(400, errors.slice(0, 10).map(describe));
    }
    const request = body as HookRequest;
    if (hook === 'order-select') checkSelections(request);
    return request;
  }
}

/** order-select: every selection must name an order in draftOrders (CDS Hooks library order-select). */
function checkSelections(request: HookRequest): void {
  const present = new Set((request.context.draftOrders.entry ?? []).map((e) => `${e.resource?.resourceType}/${e.resource?.id}`));
  const issues: IssueInput[] = [];
  (request.context.selections ?? []).forEach((selection, i) => {
    if (!present.has(selection)) {
      issues.push({
        code: 'invalid',
        diagnostics: `context.selections[${i}] "${selection}" is not an order in context.draftOrders`,
        expression: [`context.selections[${i}]`],
      });
    }
  });
  if (issues.length > 0) throw new HttpError(400, issues);
}
