import { createHash, timingSafeEqual } from 'node:crypto';
import { Router, type Request, type Response } from 'express';
import type { DecisionStore } from '../store/types.ts';
import { operationOutcome } from './operation-outcome.ts';

export interface DecisionsRouterDeps {
  store: DecisionStore;
  /** The endpoint exists only when a token is configured (CDS_ADMIN_TOKEN). */
  adminToken: string | undefined;
}

// Hashing first gives equal-length inputs, so timingSafeEqual leaks neither content nor length.
function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

function authorized(header: string | undefined, expected: Buffer): boolean {
  const match = /^Bearer[ ]+(\S+)\s*$/i.exec(header ?? '');
  const given = digest(match?.[1] ?? '');
  return timingSafeEqual(given, expected) && match !== null;
}

/**
 * GET /decisions/{assertionId}: the stored decision with its criteria and feedback, for
 * disputes. Admin only (Authorization: Bearer <adminToken>). Returns null when no token is
 * configured, so the caller mounts nothing and the route does not exist.
 */
export function createDecisionsRouter(deps: DecisionsRouterDeps): Router | null {
  if (!deps.adminToken) return null;
  const expected = digest(deps.adminToken);
  const router = Router();
  router.get('/decisions/:assertionId', async (req: Request<{ assertionId: string }>, res: Response) => {
    // Holds a patient id and clinical evidence: never cached anywhere.
    res.setHeader('Cache-Control', 'no-store');
    if (!authorized(req.get('authorization'), expected)) {
      res.setHeader('WWW-Authenticate', 'Bearer realm="decisions"');
      res.status(401).json(operationOutcome([{ code: 'login', diagnostics: 'A valid admin bearer token is required' }]));
      return;
    }
    const decision = await deps.store.findByAssertionId(req.params.assertionId);
    if (!decision) {
      res.status(404).json(operationOutcome([{ code: 'not-found', diagnostics: 'No decision with this coverage-assertion-id' }]));
      return;
    }
    res.status(200).json(decision);
  });
  return router;
}
