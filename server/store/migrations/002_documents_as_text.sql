-- The large documents (the response, the evidence, per-order criteria) are kept as the exact JSON
-- text the service produced: the response is then stored byte for byte as it was sent, which is
-- what a dispute needs (jsonb would reorder keys), and text is several times cheaper to write than
-- jsonb in the embedded engine. Lookups parse it back.
ALTER TABLE decisions ALTER COLUMN evidence TYPE text USING evidence::text;
ALTER TABLE decisions ALTER COLUMN response TYPE text USING response::text;
ALTER TABLE decision_orders ALTER COLUMN criteria TYPE text USING criteria::text;
