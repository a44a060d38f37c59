import type { DocumentRef, DocumentTexts, StoredDocuments } from './documents.ts';
import type { SqlDriver, SqlExecutor } from './sql-driver.ts';
import type { DecisionRecord, FeedbackItem, FeedbackResult, OrderDecisionRecord, StoredDecision, StoredFeedback } from './types.ts';

/**
 * JSON text for a jsonb parameter. PostgreSQL rejects U+0000 in jsonb and text, so it is replaced
 * (only in what goes to the database; the spool keeps the record as given). The lookbehind skips
 * an escaped backslash followed by the letters "u0000".
 */
export function toJsonParam(value: unknown): string {
  return jsonTextParam(JSON.stringify(value) ?? 'null');
}

/** JSON text as produced by JSON.stringify, made storable (see toJsonParam). */
function jsonTextParam(json: string): string {
  return json.includes('\\u0000') ? json.replace(/(?<!\\)((?:\\\\)*)\\u0000/g, '$1\\ufffd') : json;
}

function uniq(values: Iterable<string>): string[] {
  return [...new Set(values)];
}

/** A document as JSON text, or null when there is none. */
function documentText(value: unknown): string | null {
  return value === undefined || value === null ? null : (JSON.stringify(value) ?? null);
}

/**
 * A decision ready to be written: its documents already serialised. A save is prepared at once,
 * so that while it waits for its commit it holds a few strings rather than the object graphs of
 * the evidence and criteria (which would otherwise survive into the old generation and cost the
 * service's thread major garbage collections under load).
 */
export interface PreparedDecision {
  readonly fields: Omit<DecisionRecord, 'orders' | 'evidence' | 'response' | 'responseJson'>;
  readonly orders: Omit<OrderDecisionRecord, 'criteria'>[];
  readonly evidence: string | null;
  /** The response as sent (or as serialised here when the caller did not give the text). */
  readonly response: string;
  /** Each order's criteria document, in order. */
  readonly criteria: (string | null)[];
}

/** The documents of a prepared decision as the segment file keeps them (made storable as in the tables). */
export function documentTexts(d: PreparedDecision): DocumentTexts {
  const storable = (text: string | null) => (text === null ? null : jsonTextParam(text));
  return { id: d.fields.id, evidence: storable(d.evidence), response: jsonTextParam(d.response), criteria: d.criteria.map(storable) };
}

export function prepareDecision(record: DecisionRecord): PreparedDecision {
  const { orders, evidence, response, responseJson, ...fields } = record;
  return {
    fields,
    orders: orders.map(({ criteria: _criteria, ...order }) => order),
    evidence: documentText(evidence),
    response: responseJson ?? JSON.stringify(response),
    criteria: orders.map((o) => documentText(o.criteria)),
  };
}

/**
 * The decision as one line of the spool: the JSON of a DecisionRecord, assembled around the
 * already serialised documents (each is complete JSON text, so the line is too).
 */
export function spoolLine(d: PreparedDecision): string {
  const head = JSON.stringify(d.fields);
  const orders = d.orders.map((o, k) => `${JSON.stringify(o).slice(0, -1)},"criteria":${d.criteria[k] ?? 'null'}}`);
  return `${head.slice(0, -1)},"orders":[${orders.join(',')}],"evidence":${d.evidence ?? 'null'},"response":${d.response}}`;
}

/**
 * Stores a batch in one statement (so one commit, atomic): one `store_decision` call per record
 * (migrations 003, 004), whose own statements are planned once per session. Returns the ids
 * inserted now (others were already stored). `linkFeedback` is for spool replays (see the
 * function). With an engine that keeps documents in segments (`storeWithDocuments`), the rows get
 * no documents but their places, from the parameter the engine adds after writing them.
 */
export async function insertDecisions(
  db: SqlExecutor & Pick<SqlDriver, 'storeWithDocuments'>,
  decisions: PreparedDecision[],
  options: { linkFeedback?: boolean } = {},
): Promise<Set<string>> {
  if (decisions.length === 0) return new Set();
  const storeWithDocuments = db.storeWithDocuments?.bind(db);
  const inSegments = storeWithDocuments !== undefined;
  const link = options.linkFeedback === true ? 'true' : 'false';
  const params: (string | null)[] = [];
  const param = (value: string | null): string => {
    params.push(value === null ? null : jsonTextParam(value));
    return `$${params.length}::text`;
  };
  const document = (text: string | null): string => (inSegments ? 'NULL::text' : param(text));
  const parts = decisions.map((d) => {
    const f = d.fields;
    const meta = {
      id: f.id,
      received_at: f.receivedAt,
      responded_at: f.respondedAt,
      client_iss: f.clientIss,
      service_id: f.serviceId,
      hook: f.hook,
      hook_instance: f.hookInstance,
      patient_id: f.patientId,
      payer_id: f.payerId,
      orders: d.orders,
      assertion_ids: uniq([...f.assertionIds, ...d.orders.flatMap((o) => (o.assertionId ? [o.assertionId] : []))]),
      card_uuids: uniq(f.cardUuids),
    };
    return { meta: param(JSON.stringify(meta)), evidence: document(d.evidence), response: document(d.response), criteria: d.criteria.map(document) };
  });
  // The engine's extra parameter, after all of ours: the documents' places, in record order.
  const places = `$${params.length + 1}::text::jsonb`;
  const calls = parts.map((p, k) => {
    const meta = inSegments ? `${p.meta}::jsonb || jsonb_build_object('documents', ${places} -> ${k})` : `${p.meta}::jsonb`;
    return `store_decision(${meta}, ${p.evidence}, ${p.response}, ARRAY[${p.criteria.join(', ')}]::text[], ${link})`;
  });
  // ARRAY[...] evaluates the calls in order, so a repeated id within a batch is stored once.
  const sql = `SELECT ARRAY[${calls.join(', ')}] AS inserted`;
  const [row] = storeWithDocuments
    ? await storeWithDocuments<{ inserted: boolean[] }>(decisions.map(documentTexts), sql, params)
    : await db.query<{ inserted: boolean[] }>(sql, params);
  const inserted = row?.inserted ?? [];
  return new Set(decisions.filter((_, i) => inserted[i] === true).map((d) => d.fields.id));
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
  documents_segment: string | null;
  documents_offset: unknown;
  documents_length: unknown;
}

/** Reads a decision's documents from where its row says they are. */
export type DocumentReader = (ref: DocumentRef, decisionId: string) => Promise<StoredDocuments>;

/** The documents of a row: in the row itself, or in a segment; a segment that cannot be read is reported, not thrown. */
async function rowDocuments(d: DecisionRow, orders: OrderRow[], read: DocumentReader | undefined): Promise<StoredDocuments & { error?: string }> {
  const inRow = { evidence: parseDocument(d.evidence), response: parseDocument(d.response), criteria: orders.map((o) => parseDocument(o.criteria)) };
  if (d.documents_segment === null) return inRow;
  const ref: DocumentRef = { segment: d.documents_segment, offset: Number(d.documents_offset), length: Number(d.documents_length) };
  if (!read) return { ...inRow, error: `the documents are in ${ref.segment}, which this store cannot read` };
  try {
    return await read(ref, d.id);
  } catch (err) {
    return { ...inRow, error: `the documents could not be read from ${ref.segment}: ${(err as Error).message}` };
  }
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

export async function findByAssertionId(db: SqlExecutor, assertionId: string, readDocuments?: DocumentReader): Promise<StoredDecision | undefined> {
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
  const documents = await rowDocuments(d, orders, readDocuments);
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
    orders: orders.map((o, k) => ({
      orderReference: o.order_reference,
      productId: o.product_id,
      policyId: o.policy_id,
      policyVersion: o.policy_version,
      coverageReference: o.coverage_reference,
      assertionId: o.assertion_id,
      covered: o.covered,
      paNeeded: o.pa_needed,
      criteria: documents.criteria[k] ?? null,
    })),
    assertionIds: assertions.map((a) => a.assertion_id),
    cardUuids: cards.map((c) => c.card_uuid),
    evidence: documents.evidence,
    response: documents.response,
    ...(documents.error ? { documentsError: documents.error } : {}),
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

/**
 * Whether any decision still points into a segment of `day`. Such decisions were received before
 * their documents were written, i.e. by the end of that day; the bound (two days later, for a
 * clock set back) lets the received_at index limit the search to the days around it.
 */
export async function segmentStillReferenced(db: SqlExecutor, segment: string, day: string): Promise<boolean> {
  const bound = new Date(Date.parse(`${day}T00:00:00.000Z`) + 2 * 86_400_000).toISOString();
  const [row] = await db.query<{ used: boolean }>(
    'SELECT EXISTS (SELECT 1 FROM decisions WHERE received_at < $2::timestamptz AND documents_segment = $1) AS used',
    [segment, bound],
  );
  return row?.used === true;
}
