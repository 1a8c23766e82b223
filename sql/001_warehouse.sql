-- The warehouse's core tables: events, ingest_errors, alerts.
-- Applied once by sluice-setup, which records it in schema_migrations.

-- One row per event. msg_id is the idempotency key: a redelivered or
-- republished message is absorbed by ON CONFLICT (msg_id) DO NOTHING.
CREATE TABLE events (
    msg_id      text        PRIMARY KEY,
    source      text        NOT NULL CHECK (source ~ '^[a-z0-9_-]{1,64}$'),
    routing_key text        NOT NULL,
    payload     jsonb       NOT NULL CHECK (jsonb_typeof(payload) = 'object'),
    produced_at timestamptz,                       -- x-produced-at-us, else the AMQP timestamp
    received_at timestamptz NOT NULL,              -- when the worker took the delivery
    stored_at   timestamptz NOT NULL DEFAULT now() -- the storing transaction's start
);
CREATE INDEX events_source_produced_at ON events (source, produced_at);
COMMENT ON TABLE events IS 'One row per event; msg_id makes storing an event twice impossible.';

-- What could not be stored as an event, kept with its raw bytes so nothing
-- is silently dropped. reason is one of the fixed codes below; detail says
-- more (the parser''s or the database''s message).
CREATE TABLE ingest_errors (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    msg_id      text        NOT NULL UNIQUE,
    source      text        NOT NULL,
    routing_key text        NOT NULL,
    reason      text        NOT NULL CHECK (reason IN ('too_large', 'invalid_utf8', 'invalid_json',
                                                       'not_an_object', 'nul_character',
                                                       'rejected_by_database')),
    detail      text,
    raw         bytea       NOT NULL,
    received_at timestamptz NOT NULL,
    stored_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ingest_errors_source ON ingest_errors (source, received_at);

-- Every alert raised by a rule, and what became of its delivery. The states
-- follow the alert through the notifier: raised (in sluice.q.notifier),
-- sent / failed (final), retrying (the notifier is still trying).
CREATE TABLE alerts (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id    text        NOT NULL UNIQUE,
    rule        text        NOT NULL,
    severity    text        NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    source      text        NOT NULL,
    msg_id      text,
    message     text        NOT NULL,
    raised_at   timestamptz NOT NULL DEFAULT now(),
    state       text        NOT NULL DEFAULT 'raised'
                            CHECK (state IN ('raised', 'retrying', 'sent', 'failed')),
    attempts    integer     NOT NULL DEFAULT 0,
    last_error  text,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alerts_rule_raised_at ON alerts (rule, raised_at);
