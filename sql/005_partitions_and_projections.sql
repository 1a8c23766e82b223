-- The warehouse at volume: events and ingest_errors partitioned by time
-- with retention, one table of message ids that keeps storing idempotent
-- across partitions, and typed projections filled set-based by a
-- statement-level trigger instead of per-source normaliser functions.
--
-- An existing warehouse upgrades in place: its events, ingest errors and
-- typed rows are kept (rows received before the current period go into
-- one "history" partition that retention drops once it is old enough).

-- ---------------------------------------------------------------- ids
-- Every msg_id the warehouse has taken, stored as an event or recorded as
-- an ingest error. Its primary key is what makes a redelivered or
-- republished message a no-op, whatever partition the first copy went to:
-- a unique index on a partitioned table must contain the partition key,
-- so events themselves cannot hold a unique msg_id. Retention deletes the
-- ids of events older than it, together with their partitions.
CREATE TABLE event_ids (
    msg_id      text        COLLATE "C" PRIMARY KEY, -- bytewise: the cheapest comparison
    received_at timestamptz NOT NULL,
    is_error    boolean     NOT NULL DEFAULT false      -- taken by an ingest error, not an event
);
CREATE INDEX event_ids_received_at ON event_ids USING brin (received_at);
COMMENT ON TABLE event_ids IS
    'msg_id of every event stored and every ingest error recorded: storing one twice is impossible';

-- ---------------------------------------------------------------- partitions
-- How each partitioned table is cut: one partition per period (UTC),
-- `ahead` periods created in advance, and partitions entirely older than
-- `retention` dropped (NULL: kept for ever). sluice-setup sets retention
-- and runs sluice_maintain_partitions() (sql/functions/partitions.sql);
-- so does each worker when it connects, so partitions exist even where
-- setup is not run daily.
CREATE TABLE sluice_partitioning (
    parent    text     PRIMARY KEY CHECK (parent IN ('events', 'ingest_errors')),
    period    text     NOT NULL DEFAULT 'day' CHECK (period IN ('day', 'week', 'month')),
    ahead     integer  NOT NULL DEFAULT 7 CHECK (ahead BETWEEN 1 AND 366),
    retention interval CHECK (retention > interval '0')
);
INSERT INTO sluice_partitioning (parent) VALUES ('events'), ('ingest_errors');

-- ---------------------------------------------------------------- events
-- Partitioned by received_at: always known, set by the worker's clock, so
-- no event is refused for a producer's clock being off. Idempotency does
-- not depend on it (event_ids does that). No index: partitions prune by
-- time, and every index costs each stored event a B-tree insert. Nor a
-- CHECK on source: the workers take source names only from their
-- configuration (checked there), and a regular expression per row cost
-- PostgreSQL a fifth of the rest of storing an event.
ALTER TABLE events RENAME TO events_unpartitioned;
ALTER INDEX events_pkey RENAME TO events_unpartitioned_pkey;
ALTER INDEX events_source_produced_at RENAME TO events_unpartitioned_source_produced_at;
CREATE TABLE events (
    msg_id      text        NOT NULL,
    source      text        NOT NULL,
    routing_key text        NOT NULL,
    payload     jsonb       NOT NULL CHECK (jsonb_typeof(payload) = 'object'),
    produced_at timestamptz,                       -- x-produced-at-us, else the AMQP timestamp
    received_at timestamptz NOT NULL,              -- when the worker took the delivery
    stored_at   timestamptz NOT NULL DEFAULT now() -- the storing transaction's start
) PARTITION BY RANGE (received_at);
COMMENT ON TABLE events IS
    'One row per event, partitioned by received_at; event_ids makes storing an event twice impossible.';

ALTER TABLE ingest_errors RENAME TO ingest_errors_unpartitioned;
ALTER INDEX ingest_errors_pkey RENAME TO ingest_errors_unpartitioned_pkey;
ALTER INDEX ingest_errors_msg_id_key RENAME TO ingest_errors_unpartitioned_msg_id_key;
ALTER INDEX ingest_errors_source RENAME TO ingest_errors_unpartitioned_source;
CREATE TABLE ingest_errors (
    id          bigint      GENERATED ALWAYS AS IDENTITY,
    msg_id      text        NOT NULL,
    source      text        NOT NULL,
    routing_key text        NOT NULL,
    reason      text        NOT NULL CHECK (reason IN ('too_large', 'invalid_utf8', 'invalid_json',
                                                       'not_an_object', 'nul_character',
                                                       'rejected_by_database')),
    detail      text,
    raw         bytea       NOT NULL,
    received_at timestamptz NOT NULL,
    stored_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (id, received_at)
) PARTITION BY RANGE (received_at);
CREATE INDEX ingest_errors_msg_id ON ingest_errors (msg_id);

-- Rows received before the current day go into one history partition per
-- table; rows of the current day or later into a partition per day, named
-- and cut as sluice_create_partition (sql/functions/partitions.sql) does.
-- Written out here because a migration uses only what it creates itself:
-- the function files are applied after the migrations. sluice-setup then
-- creates the partitions due, as on every run.
DO $$
DECLARE
    start timestamptz := date_trunc('day', now(), 'UTC');
BEGIN
    IF EXISTS (SELECT 1 FROM events_unpartitioned WHERE received_at < start) THEN
        EXECUTE format('CREATE TABLE events_history PARTITION OF events'
                       ' FOR VALUES FROM (MINVALUE) TO (%L)', start);
    END IF;
    IF EXISTS (SELECT 1 FROM ingest_errors_unpartitioned WHERE received_at < start) THEN
        EXECUTE format('CREATE TABLE ingest_errors_history PARTITION OF ingest_errors'
                       ' FOR VALUES FROM (MINVALUE) TO (%L)', start);
    END IF;
END $$;
DO $$
DECLARE
    start timestamptz := date_trunc('day', now(), 'UTC');
    t     text;
    day   timestamptz;
BEGIN
    FOREACH t IN ARRAY ARRAY['events', 'ingest_errors'] LOOP
        FOR day IN EXECUTE format('SELECT DISTINCT date_trunc(''day'', received_at, ''UTC'')'
                                  ' FROM %I WHERE received_at >= %L', t || '_unpartitioned', start)
        LOOP
            EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                           t || '_' || to_char(day AT TIME ZONE 'UTC', 'YYYYMMDD'), t, day,
                           day + interval '1 day');
        END LOOP;
    END LOOP;
END $$;

INSERT INTO events SELECT msg_id, source, routing_key, payload, produced_at, received_at, stored_at
FROM events_unpartitioned;
INSERT INTO ingest_errors (id, msg_id, source, routing_key, reason, detail, raw, received_at,
                           stored_at) OVERRIDING SYSTEM VALUE
SELECT id, msg_id, source, routing_key, reason, detail, raw, received_at, stored_at
FROM ingest_errors_unpartitioned;
SELECT setval(pg_get_serial_sequence('ingest_errors', 'id'),
              coalesce((SELECT max(id) FROM ingest_errors), 0) + 1, false);
INSERT INTO event_ids SELECT msg_id, received_at FROM events_unpartitioned;
INSERT INTO event_ids SELECT msg_id, received_at, true FROM ingest_errors_unpartitioned
ON CONFLICT (msg_id) DO NOTHING;
DROP TABLE events_unpartitioned;
DROP TABLE ingest_errors_unpartitioned;
ALTER TABLE events RENAME CONSTRAINT events_payload_check1 TO events_payload_check;
ALTER TABLE ingest_errors RENAME CONSTRAINT ingest_errors_reason_check1 TO ingest_errors_reason_check;

-- ---------------------------------------------------------------- projections
-- A deployment declares, per source, typed tables ("projections") in its
-- configuration; sluice-setup writes the declarations here and calls
-- sluice_build_projections() (sql/functions/projections.sql), which
-- creates or extends each table and
-- regenerates the one trigger function that fills them all, set-based,
-- from the rows each INSERT or COPY adds to events (its transition table).
-- Only rows really added reach it, so a duplicate never projects twice.
CREATE TABLE projections (
    name       text   PRIMARY KEY CHECK (name ~ '^[a-z_][a-z0-9_]{0,62}$'),
    source     text   NOT NULL CHECK (source ~ '^[a-z0-9_-]{1,64}$'),
    upsert_key text[] -- columns naming an entity: one row each, latest produced_at wins
);
CREATE TABLE projection_columns (
    projection text    NOT NULL REFERENCES projections (name) ON DELETE CASCADE,
    position   integer NOT NULL,
    name       text    NOT NULL CHECK (name ~ '^[a-z_][a-z0-9_]{0,62}$'
                                       AND name NOT IN ('msg_id', 'produced_at')),
    type       text    NOT NULL CHECK (type IN ('text', 'integer', 'bigint', 'numeric', 'boolean',
                                                'timestamptz', 'jsonb', 'length')),
    pointer    text    NOT NULL CHECK (pointer = '' OR pointer LIKE '/%'),
    PRIMARY KEY (projection, name)
);

-- ---------------------------------------------------------------- migration 002's normalisers
-- Only in a warehouse that applied 002 as first released (002 is empty
-- now). Their tables and rows stay (declare them as projections to go on
-- filling them: config/projections.conf declares the demo's four); the
-- registry is no longer called. A registry holding normalisers other than
-- the demo's would silently stop working, so the upgrade refuses it. The
-- demo's tables go if they are empty: the framework holds only the
-- framework. With rows, they stay for their declarations.
DO $$
DECLARE
    t text;
    empty boolean;
BEGIN
    IF to_regclass('source_normalizers') IS NULL THEN
        RETURN;
    END IF;
    DELETE FROM source_normalizers
    WHERE normalizer::text IN ('normalize_profiles', 'normalize_page_views', 'normalize_orders',
                               'normalize_sensor_readings');
    IF EXISTS (SELECT 1 FROM source_normalizers) THEN
        RAISE EXCEPTION 'source_normalizers holds normalisers of your own (%); they are no longer called',
            (SELECT string_agg(source || '=' || normalizer::text, ', ') FROM source_normalizers)
            USING HINT = 'declare them as [projection NAME] sections, then DELETE FROM source_normalizers';
    END IF;
    DROP FUNCTION sluice_apply_normalizers();
    DROP TABLE source_normalizers;
    DROP FUNCTION normalize_profiles(text), normalize_page_views(text), normalize_orders(text),
                  normalize_sensor_readings(text);
    FOREACH t IN ARRAY ARRAY['profiles', 'page_views', 'orders', 'sensor_readings'] LOOP
        EXECUTE format('SELECT NOT EXISTS (SELECT 1 FROM %I)', t) INTO empty;
        IF empty THEN
            EXECUTE format('DROP TABLE %I', t);
        END IF;
    END LOOP;
END $$;
