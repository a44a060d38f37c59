import { outcome } from '../context.ts';
import type { CheckOutcome, CriterionStatus } from '../types.ts';

/** Which status decides when sub-checks disagree: a definite "no" outweighs everything. */
export const SEVERITY: Record<CriterionStatus, number> = {
  met: 0,
  missing: 1,
  unavailable: 2,
  deferred: 3,
  review: 4,
  'not-met': 5,
};

export function worstStatus(statuses: CriterionStatus[]): CriterionStatus {
  return statuses.reduce<CriterionStatus>((worst, s) => (SEVERITY[s] > SEVERITY[worst] ? s : worst), 'met');
}

/** One outcome from several: the given status with every part's evidence, gaps and notes. */
export function mergeOutcomes(status: CriterionStatus, parts: CheckOutcome[]): CheckOutcome {
  const earliest = parts.map((p) => p.earliestDate).filter((d): d is string => d !== undefined).sort().at(-1);
  const evidence = parts.flatMap((p) => p.evidence);
  return outcome(status, {
    // The same fact reached through several branches is stated once.
    evidence: evidence.filter((e, i) => evidence.findIndex((x) => x.text === e.text && x.reference === e.reference) === i),
    missing: parts.flatMap((p) => p.missing),
    notes: [...new Set(parts.flatMap((p) => p.notes))],
    ...(earliest ? { earliestDate: earliest } : {}),
    infoNeeded: [...new Set(parts.flatMap((p) => p.infoNeeded ?? []))],
  });
}

/** All parts must hold: the worst status decides. */
export function allOf(parts: CheckOutcome[]): CheckOutcome {
  return mergeOutcomes(worstStatus(parts.map((p) => p.status)), parts);
}
