-- Projections: the typed tables a deployment declares per source, filled
-- set-based from each INSERT or COPY into events (the declarations' tables
-- are sql/005's; sluice-setup writes them and calls sluice_build_projections).
--
-- A function file, applied by sluice-setup on every run after the pending
-- migrations: the current definition of each function below, and the only
-- one in the tree (broker-setup/migrate.h says the rules).

-- Conversions that turn a value of the wrong JSON type (or out of range)
-- into NULL, so one odd event never fails its batch (a text column takes
-- any value: a string as it is, anything else as its JSON text). The common types are
-- written inline into the filling query by sluice_projection_expr (a
-- jsonb_typeof test and a direct cast: a function going through text cost
-- three times as much); the rarer ones are functions.
CREATE OR REPLACE FUNCTION sluice_integer(v jsonb) RETURNS integer LANGUAGE sql IMMUTABLE AS
$$ SELECT CASE WHEN jsonb_typeof(v) = 'number' AND v::numeric = trunc(v::numeric)
                    AND v::numeric BETWEEN -2147483648 AND 2147483647
               THEN v::numeric::integer END $$;

CREATE OR REPLACE FUNCTION sluice_bigint(v jsonb) RETURNS bigint LANGUAGE sql IMMUTABLE AS
$$ SELECT CASE WHEN jsonb_typeof(v) = 'number' AND v::numeric = trunc(v::numeric)
                    AND v::numeric BETWEEN -9223372036854775808 AND 9223372036854775807
               THEN v::numeric::bigint END $$;

-- A string in ISO 8601 form; anything else, or a date that does not exist,
-- is NULL. The exception block is entered only for strings of that shape.
CREATE OR REPLACE FUNCTION sluice_timestamptz(v jsonb) RETURNS timestamptz
LANGUAGE plpgsql IMMUTABLE AS $$
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
CREATE OR REPLACE FUNCTION sluice_pointer_path(p text) RETURNS text[] LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(array_agg(replace(replace(x, '~1', '/'), '~0', '~') ORDER BY n), '{}')
    FROM unnest(string_to_array(substr(p, 2), '/')) WITH ORDINALITY AS t(x, n)
    WHERE p <> ''
$$;

-- The SQL expression of a declared column: its value in `payload` at
-- pointer p, converted to type t, or NULL if the value has another type.
CREATE OR REPLACE FUNCTION sluice_projection_expr(t text, p text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
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

CREATE OR REPLACE FUNCTION sluice_projection_sql_type(t text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE t WHEN 'length' THEN 'integer' ELSE t END
$$;

-- Creates each declared table (or adds the columns it lacks), its upsert
-- key's unique index, and the trigger function filling them all
-- (sluice_project_events, generated here, so it is in no file); what is
-- already as declared is not touched (no lock taken on a busy table). Raises
-- an error naming projection and column if a table has a column of
-- another type than declared (changing a type is left to a person).
CREATE OR REPLACE FUNCTION sluice_build_projections() RETURNS integer LANGUAGE plpgsql AS $$
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
    -- created or dropped only when that changes. It runs with the owner's
    -- rights, so the writer role stores events without rights of its own
    -- on the typed tables.
    IF body IS DISTINCT FROM (SELECT prosrc FROM pg_proc
                              WHERE oid = to_regproc('sluice_project_events') AND prosecdef) THEN
        EXECUTE 'CREATE OR REPLACE FUNCTION sluice_project_events() RETURNS trigger'
                ' LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS '
                || quote_literal(body);
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
