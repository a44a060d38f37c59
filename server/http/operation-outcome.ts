import type { OperationOutcome, OperationOutcomeIssue } from 'fhir/r4.js';

/** The FHIR issue types this service reports. */
export type IssueCode = OperationOutcomeIssue['code'];

export interface IssueInput {
  code: IssueCode;
  diagnostics: string;
  severity?: OperationOutcomeIssue['severity'];
  /** FHIRPath-ish or JSON-pointer location(s) of the problem in the request. */
  expression?: string[];
}

export function operationOutcome(issues: IssueInput[]): OperationOutcome {
  return {
    resourceType: 'OperationOutcome',
    issue: issues.map((issue) => ({
      severity: issue.severity ?? 'error',
      code: issue.code,
      diagnostics: issue.diagnostics,
      ...(issue.expression && issue.expression.length > 0 ? { expression: issue.expression } : {}),
    })),
  };
}

/**
 * An error that the HTTP layer turns into a response with an OperationOutcome body.
 * Thrown by any pipeline stage that decides the whole request cannot be answered.
 */
export class HttpError extends Error {
  readonly status: number;
  readonly outcome: OperationOutcome;

  constructor(status: number, issues: IssueInput[] | IssueInput) {
    const list = Array.isArray(issues) ? issues : [issues];
    super(list.map((i) => i.diagnostics).join('; '));
    this.name = 'HttpError';
    this.status = status;
    this.outcome = operationOutcome(list);
  }

  /** The same error again from its status and outcome (e.g. as a hook thread reported it). */
  static fromOutcome(status: number, outcome: OperationOutcome): HttpError {
    return new HttpError(
      status,
      outcome.issue.map((i) => ({ code: i.code, diagnostics: i.diagnostics ?? '', severity: i.severity, ...(i.expression ? { expression: i.expression } : {}) })),
    );
  }
}

export function isOperationOutcome(value: unknown): value is OperationOutcome {
  return typeof value === 'object' && value !== null && (value as { resourceType?: unknown }).resourceType === 'OperationOutcome';
}
