-- Cheaper writes, measured in the embedded engine (the CPU it spends shares the service's cores):
--
-- 1. The documents are stored uncompressed (out of line, no pglz). Compressing ~20 KB of JSON
--    per decision was the largest single cost of a save in PGlite, which has no lz4. On
--    PostgreSQL this trades disk for CPU; an operator who prefers compression can set
--    `SET STORAGE EXTENDED` (and `SET COMPRESSION lz4`) on these three columns: nothing depends
--    on it.
ALTER TABLE decisions ALTER COLUMN evidence SET STORAGE EXTERNAL;
ALTER TABLE decisions ALTER COLUMN response SET STORAGE EXTERNAL;
ALTER TABLE decision_orders ALTER COLUMN criteria SET STORAGE EXTERNAL;

-- 2. One call stores one decision with its orders, assertion ids and card uuids. A PL/pgSQL
--    function plans its statements once per session and reuses the plans, where the former
--    per-batch statement was parsed and planned again for every commit (more than half the cost
--    of a small batch). The small fields travel as one JSON document; the large documents
--    (evidence, response, one criteria document per order, in order) as text, so the database
--    never parses them as JSON. Returns false when the id was already stored (nothing written:
--    replaying the spool is idempotent).
--
--    link_feedback is for spool replays only: feedback can be stored before its decision only
--    when that decision was acknowledged from the spool, so a replay links such feedback, also
--    for a record whose late commit had already landed.
CREATE FUNCTION store_decision(meta jsonb, evidence text, response text, criteria text[], link_feedback boolean)
RETURNS boolean
LANGUAGE plpgsql
AS $fn$
DECLARE
  stored_id uuid;
BEGIN
  INSERT INTO decisions (id, received_at, responded_at, client_iss, service_id, hook, hook_instance, patient_id, payer_id, evidence, response)
  VALUES ((meta->>'id')::uuid, (meta->>'received_at')::timestamptz, (meta->>'responded_at')::timestamptz, meta->>'client_iss',
    meta->>'service_id', meta->>'hook', meta->>'hook_instance', meta->>'patient_id', meta->>'payer_id', evidence, response)
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
