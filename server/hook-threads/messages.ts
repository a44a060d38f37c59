import type { OperationOutcome } from 'fhir/r4.js';
import type { ServiceConfig } from '../config.ts';
import type { Caller } from '../pipeline.ts';
import type { PreparedDecision } from '../store/repository.ts';

/** What a hook thread is started with: everything it needs to build the same pipeline as the service's thread. */
export interface HookThreadData {
  config: ServiceConfig;
  /** Directory of cds-services.json. */
  root: string;
}

/** One hook call, as the route received it. */
export interface HookJob {
  id: number;
  serviceId: string;
  /** The body as text (undefined when the request had no JSON body). */
  text: string | undefined;
  caller: Caller;
  /** Whether to return the decision prepared for the log (the service keeps one). */
  prepareDecision: boolean;
}

export interface ErrorSummary {
  name: string;
  message: string;
  stack?: string;
}

export type HookReply =
  | {
      id: number;
      kind: 'answer';
      /** The response, serialised once: the bytes the EHR receives and the log keeps. */
      body: string;
      /** The decision as the store writes it; absent when not asked for or when it could not be prepared. */
      decision?: PreparedDecision;
      /** Why the decision could not be prepared (the answer then goes out unrecorded). */
      unrecordable?: ErrorSummary;
    }
  /** An HttpError of the pipeline: the caller's request is refused with this outcome. */
  | { id: number; kind: 'refused'; status: number; outcome: OperationOutcome }
  /** A bug: the route handles it as it would an exception on its own thread. */
  | { id: number; kind: 'failed'; error: ErrorSummary };

export type ThreadStatus = { kind: 'ready' } | { kind: 'startup-failed'; error: ErrorSummary };

export function summariseError(err: unknown): ErrorSummary {
  const e = err as { name?: unknown; message?: unknown; stack?: unknown } | null;
  return {
    name: typeof e?.name === 'string' ? e.name : 'Error',
    message: typeof e?.message === 'string' ? e.message : String(err),
    ...(typeof e?.stack === 'string' ? { stack: e.stack } : {}),
  };
}

/** An Error standing for one a hook thread reported, for the route's own error handling. */
export function reviveError(summary: ErrorSummary): Error {
  const err = new Error(summary.message);
  err.name = summary.name;
  if (summary.stack) err.stack = summary.stack;
  return err;
}
