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

-- Takes msg_id for an event unless an event holds it: an id absent or held
-- by an ingest error (one being reprocessed) is taken, and true returned.
CREATE FUNCTION sluice_claim_event_id(p_msg_id text, p_received_at timestamptz)
RETURNS boolean LANGUAGE sql AS $$
    INSERT INTO event_ids AS i (msg_id, received_at) VALUES (p_msg_id, p_received_at)
    ON CONFLICT (msg_id) DO UPDATE SET is_error = false, received_at = EXCLUDED.received_at
    WHERE i.is_error
    RETURNING true
$$;

-- ---------------------------------------------------------------- partitions
-- How each partitioned table is cut: one partition per period (UTC),
-- `ahead` periods created in advance, and partitions entirely older than
-- `retention` dropped (NULL: kept for ever). sluice-setup sets retention
-- and runs sluice_maintain_partitions(); so does each worker when it
-- connects, so partitions exist even where setup is not run daily.
CREATE TABLE sluice_partitioning (
    parent    text     PRIMARY KEY CHECK (parent IN ('events', 'ingest_errors')),
    period    text     NOT NULL DEFAULT 'day' CHECK (period IN ('day', 'week', 'month')),
    ahead     integer  NOT NULL DEFAULT 7 CHECK (ahead BETWEEN 1 AND 366),
    retention interval CHECK (retention > interval '0')
);
INSERT INTO sluice_partitioning (parent) VALUES ('events'), ('ingest_errors');

-- The upper bound of a range partition (NULL for MAXVALUE or not a range).
CREATE FUNCTION sluice_partition_upper(part regclass) RETURNS timestamptz
LANGUAGE sql STABLE AS $$
    SELECT (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \(''([^'']+)''\)'))[1]::timestamptz
    FROM pg_class c WHERE c.oid = part
$$;

-- Creates the partition of `parent` holding `at`, unless one exists.
CREATE FUNCTION sluice_create_partition(p_parent text, p_period text, at timestamptz)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    lo   timestamptz := date_trunc(p_period, at, 'UTC');
    hi   timestamptz := lo + ('1 ' || p_period)::interval;
    name text := p_parent || '_' || to_char(lo AT TIME ZONE 'UTC', 'YYYYMMDD');
BEGIN
    IF to_regclass(name) IS NOT NULL THEN
        RETURN;
    END IF;
    BEGIN
        EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                       name, p_parent, lo, hi);
    EXCEPTION WHEN invalid_object_definition THEN
        -- Overlaps a partition cut with another period (the setting
        -- changed): that one already holds these rows.
        NULL;
    END;
END $$;

-- Creates the partitions due (the previous and current periods and
-- `ahead` more) and
-- drops those entirely older than the retention, with the ids of their
-- events. Returns the number of partitions dropped. Serialised by an
-- advisory lock, so workers and setup may call it at the same time.
CREATE FUNCTION sluice_maintain_partitions() RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    p       record;
    part    record;
    dropped integer := 0;
    cutoff  timestamptz;
BEGIN
    PERFORM pg_advisory_xact_lock(7366002);
    FOR p IN SELECT * FROM sluice_partitioning ORDER BY parent LOOP
        -- From the previous period: a worker whose clock runs a little
        -- behind the database's still finds a partition for its rows.
        FOR i IN -1 .. p.ahead LOOP
            PERFORM sluice_create_partition(p.parent, p.period,
                                            now() + i * ('1 ' || p.period)::interval);
        END LOOP;
        CONTINUE WHEN p.retention IS NULL;
        cutoff := now() - p.retention;
        FOR part IN
            SELECT i.inhrelid::regclass AS rel FROM pg_inherits i
            WHERE i.inhparent = p.parent::regclass
              AND sluice_partition_upper(i.inhrelid) <= cutoff
        LOOP
            EXECUTE format('DROP TABLE %s', part.rel);
            dropped := dropped + 1;
        END LOOP;
        IF p.parent = 'events' THEN
            DELETE FROM event_ids WHERE received_at < cutoff;
        END IF;
    END LOOP;
    RETURN dropped;
END $$;

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

-- Rows received before the current period go into one history partition
-- per table; the current period and those ahead get their own.
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
SELECT sluice_maintain_partitions();

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

-- TRUNCATE events forgets their ids too (the ids of ingest errors stay),
-- so emptying the warehouse by hand does not turn new copies into
-- "duplicates" of rows that are gone.
CREATE FUNCTION sluice_forget_event_ids() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE event_ids;
    INSERT INTO event_ids SELECT msg_id, min(received_at), true FROM ingest_errors GROUP BY msg_id;
    RETURN NULL;
END $$;
CREATE TRIGGER events_truncate AFTER TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION sluice_forget_event_ids();

-- ---------------------------------------------------------------- projections
-- A deployment declares, per source, typed tables ("projections") in its
-- configuration; sluice-setup writes the declarations here and calls
-- sluice_build_projections(), which creates or extends each table and
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

-- Conversions that turn a value of the wrong JSON type (or out of range)
-- into NULL, so one odd event never fails its batch (a text column takes
-- any value: a string as it is, anything else as its JSON text). The common types are
-- written inline into the filling query by sluice_projection_expr (a
-- jsonb_typeof test and a direct cast: a function going through text cost
-- three times as much); the rarer ones are functions.
CREATE FUNCTION sluice_integer(v jsonb) RETURNS integer LANGUAGE sql IMMUTABLE AS
$$ SELECT CASE WHEN jsonb_typeof(v) = 'number' AND v::numeric = trunc(v::numeric)
                    AND v::numeric BETWEEN -2147483648 AND 2147483647
               THEN v::numeric::integer END $$;
CREATE FUNCTION sluice_bigint(v jsonb) RETURNS bigint LANGUAGE sql IMMUTABLE AS
$$ SELECT CASE WHEN jsonb_typeof(v) = 'number' AND v::numeric = trunc(v::numeric)
                    AND v::numeric BETWEEN -9223372036854775808 AND 9223372036854775807
               THEN v::numeric::bigint END $$;
-- A string in ISO 8601 form; anything else, or a date that does not exist,
-- is NULL. The exception block is entered only for strings of that shape.
CREATE FUNCTION sluice_timestamptz(v jsonb) RETURNS timestamptz LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF jsonb_typeof(v) <> 'string' OR NOT (v #>> '{}') ~
       '^\d{4}-\d\d-\d\d([T ]\d\d:\d\d(:\d\d(\.\d{1,6})?)?)?(Z|[+-]\d\d(:?\d\d)?)?$' THEN
        RETURN NULL;
    END IF;
    RETURN (v #>> '{}')::timestamptz;
EXCEPTION WHEN datetime_field_overflow OR invalid_datetime_format THEN
    RETURN NULL;
END $$;

-- A JSON pointer (RFC 6901, "/shipping/country") as a path for #>.
CREATE FUNCTION sluice_pointer_path(p text) RETURNS text[] LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(array_agg(replace(replace(x, '~1', '/'), '~0', '~') ORDER BY n), '{}')
    FROM unnest(string_to_array(substr(p, 2), '/')) WITH ORDINALITY AS t(x, n)
    WHERE p <> ''
$$;

-- The SQL expression of a declared column: its value in `payload` at
-- pointer p, converted to type t, or NULL if the value has another type.
CREATE FUNCTION sluice_projection_expr(t text, p text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE t
        WHEN 'jsonb' THEN v
        -- A string as it is, any other value as its JSON text: one lookup.
        WHEN 'text' THEN vt
        WHEN 'numeric' THEN format('CASE WHEN jsonb_typeof(%1$s) = ''number'' THEN (%1$s)::numeric END', v)
        WHEN 'boolean' THEN format('CASE WHEN jsonb_typeof(%1$s) = ''boolean'' THEN (%1$s)::boolean END', v)
        WHEN 'length' THEN format('CASE WHEN jsonb_typeof(%1$s) = ''array'' THEN jsonb_array_length(%1$s) END', v)
        ELSE format('sluice_%s(%s)', t, v)
    END
    FROM (SELECT format('payload #> %L', sluice_pointer_path(p)) AS v,
                 format('payload #>> %L', sluice_pointer_path(p)) AS vt) s
$$;

CREATE FUNCTION sluice_projection_sql_type(t text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE t WHEN 'length' THEN 'integer' ELSE t END
$$;

-- Creates each declared table (or adds the columns it lacks), its upsert
-- key's unique index, and the trigger function filling them all; what is
-- already as declared is not touched (no lock taken on a busy table). Raises
-- an error naming projection and column if a table has a column of
-- another type than declared (changing a type is left to a person).
CREATE FUNCTION sluice_build_projections() RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    p       record;
    c       record;
    body    text := '';
    cols    text;
    exprs   text;
    sets    text;
    keys    text;
    have    text;
    n       integer := 0;
BEGIN
    FOR p IN SELECT * FROM projections ORDER BY name LOOP
        IF to_regclass(p.name) IS NULL THEN
            EXECUTE format('CREATE TABLE %I (msg_id text NOT NULL, produced_at timestamptz)', p.name);
        END IF;
        IF (SELECT count(*) FROM pg_attribute WHERE attrelid = p.name::regclass
            AND attname IN ('msg_id', 'produced_at') AND NOT attisdropped) < 2 THEN
            EXECUTE format('ALTER TABLE %I ADD COLUMN IF NOT EXISTS msg_id text,'
                           ' ADD COLUMN IF NOT EXISTS produced_at timestamptz', p.name);
        END IF;
        cols := 'msg_id, produced_at';
        exprs := 'msg_id, produced_at';
        sets := 'msg_id = EXCLUDED.msg_id, produced_at = EXCLUDED.produced_at';
        FOR c IN SELECT * FROM projection_columns WHERE projection = p.name ORDER BY position LOOP
            SELECT format_type(a.atttypid, a.atttypmod) INTO have FROM pg_attribute a
            WHERE a.attrelid = p.name::regclass AND a.attname = c.name AND NOT a.attisdropped;
            IF have IS NOT NULL
               AND have <> format_type(to_regtype(sluice_projection_sql_type(c.type)), NULL) THEN
                RAISE EXCEPTION 'projection %: column % is % in the table but declared %',
                    p.name, c.name, have, c.type
                    USING HINT = 'change the declaration, or ALTER the column by hand';
            END IF;
            IF have IS NULL THEN
                EXECUTE format('ALTER TABLE %I ADD COLUMN %I %s', p.name, c.name,
                               sluice_projection_sql_type(c.type));
            END IF;
            cols := cols || format(', %I', c.name);
            sets := sets || format(', %1$I = EXCLUDED.%1$I', c.name);
            exprs := exprs || ', ' || sluice_projection_expr(c.type, c.pointer)
                     || format(' AS %I', c.name);
        END LOOP;
        -- Workers COPY each source's events in a statement of its own, so
        -- a projection's query runs only on statements holding its source.
        body := body || format(E'    IF %1$L BETWEEN lo AND hi THEN\n', p.source);
        IF p.upsert_key IS NULL THEN
            body := body || format(E'    INSERT INTO %I (%s)\n    SELECT %s FROM new_events WHERE source = %L;\n',
                                   p.name, cols, exprs, p.source);
        ELSE
            SELECT string_agg(format('%I', k), ', ') INTO keys FROM unnest(p.upsert_key) AS k;
            IF to_regclass(p.name || '_upsert_key') IS NULL THEN
                EXECUTE format('CREATE UNIQUE INDEX %I ON %I (%s)',
                               p.name || '_upsert_key', p.name, keys);
            END IF;
            body := body || format(
                E'    INSERT INTO %1$I AS t (%2$s)\n'
                '    SELECT DISTINCT ON (%3$s) %2$s FROM (SELECT received_at, %4$s FROM new_events WHERE source = %5$L) s\n'
                '    WHERE (%3$s) IS NOT NULL ORDER BY %3$s, produced_at DESC NULLS LAST, received_at DESC\n'
                '    ON CONFLICT (%3$s) DO UPDATE SET %6$s\n'
                '    WHERE t.produced_at IS NULL OR EXCLUDED.produced_at IS NULL OR EXCLUDED.produced_at >= t.produced_at;\n',
                p.name, cols, keys, exprs, p.source, sets);
        END IF;
        body := body || E'    END IF;\n';
        n := n + 1;
    END LOOP;
    body := E'DECLARE\n    lo text;\n    hi text;\nBEGIN\n'
            || E'    SELECT min(source), max(source) INTO lo, hi FROM new_events;\n'
            || body || E'    RETURN NULL;\nEND';
    -- Replacing the function needs no lock on events; the trigger is
    -- created or dropped only when that changes.
    IF body IS DISTINCT FROM (SELECT prosrc FROM pg_proc
                              WHERE oid = to_regproc('sluice_project_events')) THEN
        EXECUTE 'CREATE OR REPLACE FUNCTION sluice_project_events() RETURNS trigger'
                ' LANGUAGE plpgsql AS ' || quote_literal(body);
    END IF;
    IF n > 0 AND NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = 'events'::regclass
                             AND tgname = 'events_project') THEN
        CREATE TRIGGER events_project AFTER INSERT ON events
            REFERENCING NEW TABLE AS new_events
            FOR EACH STATEMENT EXECUTE FUNCTION sluice_project_events();
    ELSIF n = 0 THEN
        DROP TRIGGER IF EXISTS events_project ON events;
    END IF;
    RETURN n;
END $$;

-- ---------------------------------------------------------------- migration 002's normalisers
-- Their tables and rows stay (declare them as projections to go on
-- filling them: config/projections.conf declares the demo's four); the
-- registry is no longer called. A registry holding normalisers other than
-- the demo's would silently stop working, so the upgrade refuses it.
DELETE FROM source_normalizers
WHERE normalizer::text IN ('normalize_profiles', 'normalize_page_views', 'normalize_orders',
                           'normalize_sensor_readings');
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM source_normalizers) THEN
        RAISE EXCEPTION 'source_normalizers holds normalisers of your own (%); they are no longer called',
            (SELECT string_agg(source || '=' || normalizer::text, ', ') FROM source_normalizers)
            USING HINT = 'declare them as [projection NAME] sections, then DELETE FROM source_normalizers';
    END IF;
END $$;
DROP FUNCTION sluice_apply_normalizers();
DROP TABLE source_normalizers;
DROP FUNCTION normalize_profiles(text), normalize_page_views(text), normalize_orders(text),
              normalize_sensor_readings(text);
-- The demo's tables go if they are empty (a fresh install): the framework
-- holds only the framework. With rows, they stay for their declarations.
DO $$
DECLARE
    t text;
    empty boolean;
BEGIN
    FOREACH t IN ARRAY ARRAY['profiles', 'page_views', 'orders', 'sensor_readings'] LOOP
        EXECUTE format('SELECT NOT EXISTS (SELECT 1 FROM %I)', t) INTO empty;
        IF empty THEN
            EXECUTE format('DROP TABLE %I', t);
        END IF;
    END LOOP;
END $$;
