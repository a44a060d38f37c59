-- The embedded engine keeps each decision's large documents (evidence, response, criteria) in an
-- append-only segment file under <CDS_DATA_DIR>/documents (server/store/documents.ts) and the
-- decision's row records where: the file and the byte range of its line. Writing ~20 KB of
-- documents per decision through PGlite was about half of the log's CPU. PostgreSQL keeps the
-- documents in these tables as before (the columns below stay NULL there).
ALTER TABLE decisions
  ADD COLUMN documents_segment text,
  ADD COLUMN documents_offset bigint,
  ADD COLUMN documents_length integer;
ALTER TABLE decisions ALTER COLUMN response DROP NOT NULL;
-- Every decision keeps its response somewhere.
ALTER TABLE decisions ADD CONSTRAINT decisions_response_kept
  CHECK (response IS NOT NULL OR (documents_segment IS NOT NULL AND documents_offset >= 0 AND documents_length > 0));

-- As in 003, plus the documents' place when the caller wrote them to a segment
-- (meta.documents = {"segment", "offset", "length"}; the document parameters are then NULL).
CREATE OR REPLACE FUNCTION store_decision(meta jsonb, evidence text, response text, criteria text[], link_feedback boolean)
RETURNS boolean
LANGUAGE plpgsql
AS $fn$
DECLARE
  stored_id uuid;
BEGIN
  INSERT INTO decisions (id, received_at, responded_at, client_iss, service_id, hook, hook_instance, patient_id, payer_id, evidence, response,
    documents_segment, documents_offset, documents_length)
  VALUES ((meta->>'id')::uuid, (meta->>'received_at')::timestamptz, (meta->>'responded_at')::timestamptz, meta->>'client_iss',
    meta->>'service_id', meta->>'hook', meta->>'hook_instance', meta->>'patient_id', meta->>'payer_id', evidence, response,
    meta->'documents'->>'segment', (meta->'documents'->>'offset')::bigint, (meta->'documents'->>'length')::integer)
  ON CONFLICT (id) DO NOTHING
  RETURNING id INTO stored_id;

  IF link_feedback THEN
    UPDATE feedback fb SET decision_id = (meta->>'id')::uuid
    FROM jsonb_array_elements_text(meta->'card_uuids') AS c(v)
    WHERE fb.decision_id IS NULL AND fb.card_uuid = c.v AND fb.service_id = meta->>'service_id';
  END IF;

  IF stored_id IS NULL THEN
    RETURN false;
  END IF;

  INSERT INTO decision_orders (decision_id, ordinal, order_reference, product_id, policy_id, policy_version, coverage_reference,
    assertion_id, covered, pa_needed, criteria)
  SELECT stored_id, o.k - 1, o.v->>'orderReference', o.v->>'productId', o.v->>'policyId', o.v->>'policyVersion',
    o.v->>'coverageReference', o.v->>'assertionId', o.v->>'covered', o.v->>'paNeeded', criteria[o.k]
  FROM jsonb_array_elements(meta->'orders') WITH ORDINALITY AS o(v, k);

  INSERT INTO decision_assertions (assertion_id, decision_id, ordinal)
  SELECT a.v, stored_id, a.n - 1 FROM jsonb_array_elements_text(meta->'assertion_ids') WITH ORDINALITY AS a(v, n);

  INSERT INTO decision_cards (decision_id, ordinal, card_uuid)
  SELECT stored_id, c.n - 1, c.v FROM jsonb_array_elements_text(meta->'card_uuids') WITH ORDINALITY AS c(v, n);

  RETURN true;
END
$fn$;
