-- Decision log (CRD §found-37): one row per hook invocation, with its orders, assertion ids,
-- card uuids and the feedback received for its cards.

CREATE TABLE decisions (
  id            uuid PRIMARY KEY,
  received_at   timestamptz NOT NULL,
  responded_at  timestamptz NOT NULL,
  stored_at     timestamptz NOT NULL DEFAULT now(),
  client_iss    text,
  service_id    text NOT NULL,
  hook          text NOT NULL,
  hook_instance text NOT NULL,
  patient_id    text,
  payer_id      text,
  evidence      jsonb,
  response      jsonb NOT NULL
);
-- Retention purges by age.
CREATE INDEX decisions_received_at_idx ON decisions (received_at);

CREATE TABLE decision_orders (
  decision_id        uuid NOT NULL REFERENCES decisions (id) ON DELETE CASCADE,
  ordinal            integer NOT NULL,
  order_reference    text NOT NULL,
  product_id         text,
  policy_id          text,
  policy_version     text,
  coverage_reference text,
  assertion_id       text,
  covered            text,
  pa_needed          text,
  criteria           jsonb,
  PRIMARY KEY (decision_id, ordinal)
);

-- A payer traces a PA request or claim back to our answer by coverage-assertion-id: unique.
CREATE TABLE decision_assertions (
  assertion_id text PRIMARY KEY,
  decision_id  uuid NOT NULL REFERENCES decisions (id) ON DELETE CASCADE,
  ordinal      integer NOT NULL
);
CREATE INDEX decision_assertions_decision_idx ON decision_assertions (decision_id);

CREATE TABLE decision_cards (
  decision_id uuid NOT NULL REFERENCES decisions (id) ON DELETE CASCADE,
  ordinal     integer NOT NULL,
  card_uuid   text NOT NULL,
  PRIMARY KEY (decision_id, ordinal)
);
CREATE INDEX decision_cards_card_idx ON decision_cards (card_uuid);

-- decision_id IS NULL marks feedback whose card matched no stored decision when it arrived
-- (e.g. the decision was still in a spool); it is linked when that decision is stored.
CREATE TABLE feedback (
  id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  decision_id          uuid REFERENCES decisions (id) ON DELETE CASCADE,
  service_id           text NOT NULL,
  client_iss           text,
  card_uuid            text NOT NULL,
  outcome              text NOT NULL CHECK (outcome IN ('accepted', 'overridden')),
  outcome_timestamp    timestamptz NOT NULL,
  accepted_suggestions jsonb,
  override_reason      jsonb,
  received_at          timestamptz NOT NULL DEFAULT now(),
  -- A repeated feedback message is stored once.
  CONSTRAINT feedback_once UNIQUE NULLS NOT DISTINCT (service_id, card_uuid, outcome, outcome_timestamp, client_iss)
);
CREATE INDEX feedback_decision_idx ON feedback (decision_id);
CREATE INDEX feedback_unlinked_idx ON feedback (card_uuid) WHERE decision_id IS NULL;
CREATE INDEX feedback_unlinked_received_idx ON feedback (received_at) WHERE decision_id IS NULL;
