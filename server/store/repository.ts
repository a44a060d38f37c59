import type { SqlDriver, SqlExecutor } from './sql-driver.ts';
import type { DecisionRecord, FeedbackItem, FeedbackResult, StoredDecision, StoredFeedback } from './types.ts';

/**
 * JSON text for a jsonb parameter. PostgreSQL rejects U+0000 in jsonb and text, so it is replaced
 * (only in what goes to the database; the spool keeps the record as given). The lookbehind skips
 * an escaped backslash followed by the letters "u0000".
 */
export function toJsonParam(value: unknown): string {
  const json = JSON.stringify(value) ?? 'null';
  return json.includes('\\u0000') ? json.replace(/(?<!\\)((?:\\\\)*)\\u0000/g, '$1\\ufffd') : json;
}

function uniq(values: Iterable<string>): string[] {
  return [...new Set(values)];
}

/** Every assertion id of a record: the response-level list, then any order's not already in it. */
export function allAssertionIds(record: DecisionRecord): string[] {
  return uniq([...record.assertionIds, ...record.orders.flatMap((o) => (o.assertionId ? [o.assertionId] : []))]);
}

// A batch is one statement: the small fields travel as one JSON document, the large documents
// (evidence, response, each order's criteria) as text parameters of their own — passing them
// inside the JSON document would make the database parse every byte of them as JSON, several
// times the cost of storing text in the embedded engine. One round trip, atomic without an
// explicit transaction. Ids already stored are skipped with their children, so replaying the
// spool is idempotent.
//
// Feedback can only be stored before its decision when that decision was acknowledged from the
// spool (a normal answer is sent after its commit), so only spool replays link such feedback —
// for every replayed record, also one whose late commit already landed (a commit that outlived
// its timeout). Normal commits skip that step: it is a fifth of the embedded engine's cost.
function insertDecisionsSql(records: number, orderDocs: [number, number][], linkFeedback: boolean): string {
  let p = 1;
  const docs = Array.from({ length: records }, (_, rn) => `(${rn}, $${++p}::text, $${++p}::text)`).join(', ');
  const criteria =
    orderDocs.length > 0
      ? `VALUES ${orderDocs.map(([rn, k]) => `(${rn}, ${k}, $${++p}::text)`).join(', ')}`
      : 'SELECT NULL::int, NULL::int, NULL::text WHERE false';
  return `
WITH docs(rn, evidence, response) AS (VALUES ${docs}),
order_docs(rn, k, criteria) AS (${criteria}),
input AS (
  SELECT * FROM jsonb_to_recordset($1::text::jsonb) AS r(rn int, id uuid, received_at timestamptz, responded_at timestamptz,
    client_iss text, service_id text, hook text, hook_instance text, patient_id text, payer_id text,
    orders jsonb, assertion_ids jsonb, card_uuids jsonb)
), inserted AS (
  INSERT INTO decisions (id, received_at, responded_at, client_iss, service_id, hook, hook_instance, patient_id, payer_id, evidence, response)
  SELECT i.id, i.received_at, i.responded_at, i.client_iss, i.service_id, i.hook, i.hook_instance, i.patient_id, i.payer_id, d.evidence, d.response
  FROM input i JOIN docs d USING (rn)
  ON CONFLICT (id) DO NOTHING
  RETURNING id
), fresh AS (
  SELECT input.* FROM input JOIN inserted USING (id)
), orders AS (
  INSERT INTO decision_orders (decision_id, ordinal, order_reference, product_id, policy_id, policy_version, coverage_reference,
    assertion_id, covered, pa_needed, criteria)
  SELECT f.id, o.k - 1, o.v->>'orderReference', o.v->>'productId', o.v->>'policyId', o.v->>'policyVersion',
    o.v->>'coverageReference', o.v->>'assertionId', o.v->>'covered', o.v->>'paNeeded', od.criteria
  FROM fresh f CROSS JOIN jsonb_array_elements(f.orders) WITH ORDINALITY AS o(v, k)
  LEFT JOIN order_docs od ON od.rn = f.rn AND od.k = o.k - 1
), assertions AS (
  INSERT INTO decision_assertions (assertion_id, decision_id, ordinal)
  SELECT a.v, f.id, a.n - 1 FROM fresh f, jsonb_array_elements_text(f.assertion_ids) WITH ORDINALITY AS a(v, n)
), cards AS (
  INSERT INTO decision_cards (decision_id, ordinal, card_uuid)
  SELECT f.id, c.n - 1, c.v FROM fresh f, jsonb_array_elements_text(f.card_uuids) WITH ORDINALITY AS c(v, n)
)${
    linkFeedback
      ? `, linked AS (
  UPDATE feedback fb SET decision_id = i.id
  FROM input i, jsonb_array_elements_text(i.card_uuids) AS c(v)
  WHERE fb.decision_id IS NULL AND fb.card_uuid = c.v AND fb.service_id = i.service_id
)`
      : ''
  }
SELECT id FROM inserted`;
}

/** A document as JSON text, or null when there is none. */
function documentParam(value: unknown): string | null {
  return value === undefined || value === null ? null : toJsonParam(value);
}

/**
 * Stores a batch in one atomic statement; returns the ids inserted now (others were already
 * stored). `linkFeedback` is for spool replays (see above).
 */
export async function insertDecisions(db: SqlExecutor, records: DecisionRecord[], options: { linkFeedback?: boolean } = {}): Promise<Set<string>> {
  const params: (string | null)[] = [];
  const criteriaParams: (string | null)[] = [];
  const orderDocs: [number, number][] = [];
  const rows = records.map((r, rn) => {
    params.push(documentParam(r.evidence), documentParam(r.response));
    r.orders.forEach((o, k) => {
      const criteria = documentParam(o.criteria);
      if (criteria !== null) {
        orderDocs.push([rn, k]);
        criteriaParams.push(criteria);
      }
    });
    return {
      rn,
      id: r.id,
      received_at: r.receivedAt,
      responded_at: r.respondedAt,
      client_iss: r.clientIss,
      service_id: r.serviceId,
      hook: r.hook,
      hook_instance: r.hookInstance,
      patient_id: r.patientId,
      payer_id: r.payerId,
      orders: r.orders.map(({ criteria: _criteria, ...order }) => order),
      assertion_ids: allAssertionIds(r),
      card_uuids: uniq(r.cardUuids),
    };
  });
  const sql = insertDecisionsSql(records.length, orderDocs, options.linkFeedback ?? false);
  const inserted = await db.query<{ id: string }>(sql, [toJsonParam(rows), ...params, ...criteriaParams]);
  return new Set(inserted.map((r) => r.id));
}

/** Documents are stored as JSON text (see migration 002); older rows may still arrive parsed. */
function parseDocument(value: unknown): unknown {
  if (typeof value !== 'string') return value ?? null;
  try {
    return JSON.parse(value) as unknown;
  } catch {
    return value;
  }
}

const KNOWN_CARDS = `
SELECT DISTINCT c.card_uuid FROM decision_cards c JOIN decisions d ON d.id = c.decision_id
WHERE d.service_id = $2 AND c.card_uuid IN (SELECT value FROM jsonb_array_elements_text($1::text::jsonb))`;

const INSERT_FEEDBACK = `
INSERT INTO feedback (decision_id, service_id, client_iss, card_uuid, outcome, outcome_timestamp, accepted_suggestions, override_reason)
SELECT (SELECT c.decision_id FROM decision_cards c JOIN decisions d ON d.id = c.decision_id
         WHERE c.card_uuid = r.card_uuid AND d.service_id = $2 ORDER BY d.received_at LIMIT 1),
       $2, $3, r.card_uuid, r.outcome, r.outcome_timestamp, r.accepted_suggestions, r.override_reason
FROM jsonb_to_recordset($1::text::jsonb) AS r(card_uuid text, outcome text, outcome_timestamp timestamptz,
  accepted_suggestions jsonb, override_reason jsonb)
ON CONFLICT ON CONSTRAINT feedback_once DO NOTHING
RETURNING id`;

export async function insertFeedback(
  driver: SqlDriver,
  serviceId: string,
  clientIss: string | null,
  items: FeedbackItem[],
): Promise<FeedbackResult> {
  if (items.length === 0) return { stored: 0, duplicates: 0, unknownCards: [] };
  const cards = uniq(items.map((i) => i.card));
  const rows = items.map((i) => ({
    card_uuid: i.card,
    outcome: i.outcome,
    outcome_timestamp: i.outcomeTimestamp,
    accepted_suggestions: i.acceptedSuggestions ?? null,
    override_reason: i.overrideReason ?? null,
  }));
  return driver.transaction(async (tx) => {
    const known = new Set((await tx.query<{ card_uuid: string }>(KNOWN_CARDS, [JSON.stringify(cards), serviceId])).map((r) => r.card_uuid));
    const stored = (await tx.query<{ id: string }>(INSERT_FEEDBACK, [toJsonParam(rows), serviceId, clientIss])).length;
    return { stored, duplicates: items.length - stored, unknownCards: cards.filter((c) => !known.has(c)) };
  });
}

function iso(value: unknown): string {
  if (value instanceof Date) return value.toISOString();
  return new Date(String(value)).toISOString();
}

interface DecisionRow {
  id: string;
  received_at: unknown;
  responded_at: unknown;
  client_iss: string | null;
  service_id: string;
  hook: string;
  hook_instance: string;
  patient_id: string | null;
  payer_id: string | null;
  evidence: unknown;
  response: unknown;
}

interface OrderRow {
  order_reference: string;
  product_id: string | null;
  policy_id: string | null;
  policy_version: string | null;
  coverage_reference: string | null;
  assertion_id: string | null;
  covered: string | null;
  pa_needed: string | null;
  criteria: unknown;
}

interface FeedbackRow {
  card_uuid: string;
  outcome: 'accepted' | 'overridden';
  outcome_timestamp: unknown;
  accepted_suggestions: { id: string }[] | null;
  override_reason: FeedbackItem['overrideReason'] | null;
  received_at: unknown;
  client_iss: string | null;
}

export async function findByAssertionId(db: SqlExecutor, assertionId: string): Promise<StoredDecision | undefined> {
  const [d] = await db.query<DecisionRow>(
    `SELECT d.* FROM decision_assertions a JOIN decisions d ON d.id = a.decision_id WHERE a.assertion_id = $1`,
    [assertionId],
  );
  if (!d) return undefined;
  const [orders, assertions, cards, feedback] = await Promise.all([
    db.query<OrderRow>('SELECT * FROM decision_orders WHERE decision_id = $1 ORDER BY ordinal', [d.id]),
    db.query<{ assertion_id: string }>('SELECT assertion_id FROM decision_assertions WHERE decision_id = $1 ORDER BY ordinal', [d.id]),
    db.query<{ card_uuid: string }>('SELECT card_uuid FROM decision_cards WHERE decision_id = $1 ORDER BY ordinal', [d.id]),
    db.query<FeedbackRow>('SELECT * FROM feedback WHERE decision_id = $1 ORDER BY received_at, id', [d.id]),
  ]);
  return {
    id: d.id,
    receivedAt: iso(d.received_at),
    respondedAt: iso(d.responded_at),
    clientIss: d.client_iss,
    serviceId: d.service_id,
    hook: d.hook,
    hookInstance: d.hook_instance,
    patientId: d.patient_id,
    payerId: d.payer_id,
    orders: orders.map((o) => ({
      orderReference: o.order_reference,
      productId: o.product_id,
      policyId: o.policy_id,
      policyVersion: o.policy_version,
      coverageReference: o.coverage_reference,
      assertionId: o.assertion_id,
      covered: o.covered,
      paNeeded: o.pa_needed,
      criteria: parseDocument(o.criteria),
    })),
    assertionIds: assertions.map((a) => a.assertion_id),
    cardUuids: cards.map((c) => c.card_uuid),
    evidence: parseDocument(d.evidence),
    response: parseDocument(d.response),
    feedback: feedback.map((f): StoredFeedback => ({
      card: f.card_uuid,
      outcome: f.outcome,
      ...(f.accepted_suggestions ? { acceptedSuggestions: f.accepted_suggestions } : {}),
      ...(f.override_reason ? { overrideReason: f.override_reason } : {}),
      outcomeTimestamp: iso(f.outcome_timestamp),
      receivedAt: iso(f.received_at),
      clientIss: f.client_iss,
    })),
  };
}

/** Deletes in chunks so a large purge never holds one long transaction against live saves. */
export async function purgeOlderThan(db: SqlExecutor, cutoff: Date, chunk = 2000): Promise<number> {
  const at = cutoff.toISOString();
  let total = 0;
  for (;;) {
    const deleted = await db.query<{ id: string }>(
      `DELETE FROM decisions WHERE id IN (SELECT id FROM decisions WHERE received_at < $1::timestamptz LIMIT ${chunk}) RETURNING id`,
      [at],
    );
    total += deleted.length;
    if (deleted.length < chunk) break;
  }
  await db.query('DELETE FROM feedback WHERE decision_id IS NULL AND received_at < $1::timestamptz', [at]);
  return total;
}
