-- Per-source normalisation: each source may register a normaliser, a
-- function that turns that source's newly stored events into typed rows.
-- Workers call sluice_apply_normalizers() in the same transaction as the
-- batch, after staging it in the session's temporary table events_stage
-- (msg_id, source, routing_key, payload, produced_at, received_at). So even
-- a unified worker, consuming every source, handles each one its own way.

CREATE TABLE source_normalizers (
    source     text    PRIMARY KEY CHECK (source ~ '^[a-z0-9_-]{1,64}$'),
    normalizer regproc NOT NULL -- called as normalizer(source text)
);

CREATE FUNCTION sluice_apply_normalizers() RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    hook record;
BEGIN
    FOR hook IN
        SELECT n.source, n.normalizer FROM source_normalizers n
        WHERE EXISTS (SELECT 1 FROM events_stage s WHERE s.source = n.source)
    LOOP
        -- regproc prints as a properly quoted function name.
        EXECUTE format('SELECT %s($1)', hook.normalizer) USING hook.source;
    END LOOP;
END $$;

-- Conversions that turn a value of the wrong JSON type into NULL, so one
-- odd event never fails its batch.
CREATE FUNCTION sluice_text(v jsonb) RETURNS text LANGUAGE sql IMMUTABLE AS
$$ SELECT CASE WHEN jsonb_typeof(v) = 'string' THEN v #>> '{}' END $$;
CREATE FUNCTION sluice_number(v jsonb) RETURNS numeric LANGUAGE sql IMMUTABLE AS
$$ SELECT CASE WHEN jsonb_typeof(v) = 'number' THEN v::text::numeric END $$;
CREATE FUNCTION sluice_bool(v jsonb) RETURNS boolean LANGUAGE sql IMMUTABLE AS
$$ SELECT CASE WHEN jsonb_typeof(v) = 'boolean' THEN v::text::boolean END $$;

-- The four simulated sources' typed tables, keyed by msg_id like events so
-- a redelivered event adds nothing.
CREATE TABLE profiles (
    msg_id        text PRIMARY KEY,
    user_id       text,
    name          text,
    age           numeric,
    theme         text,
    newsletter    boolean,
    sessions_30d  numeric,
    churn_risk    numeric,
    produced_at   timestamptz
);
CREATE TABLE page_views (
    msg_id      text PRIMARY KEY,
    session_id  text,
    user_id     text,
    action      text,
    page        text,
    device_type text,
    os          text,
    duration_ms numeric,
    produced_at timestamptz
);
CREATE TABLE orders (
    msg_id      text PRIMARY KEY,
    order_id    text,
    customer_id text,
    currency    text,
    total       numeric,
    item_count  integer,
    country     text,
    express     boolean,
    coupon      text,
    produced_at timestamptz
);
CREATE TABLE sensor_readings (
    msg_id      text PRIMARY KEY,
    device_id   text,
    kind        text,
    value       numeric,
    unit        text,
    battery     numeric,
    produced_at timestamptz
);

CREATE FUNCTION normalize_profiles(src text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO profiles
    SELECT msg_id, sluice_text(payload->'user_id'), sluice_text(payload->'name'),
           sluice_number(payload->'age'), sluice_text(payload->'preferences'->'theme'),
           sluice_bool(payload->'preferences'->'newsletter'),
           sluice_number(payload->'behavior'->'sessions_30d'),
           sluice_number(payload->'behavior'->'churn_risk'), produced_at
    FROM events_stage WHERE source = src
    ON CONFLICT (msg_id) DO NOTHING;
END $$;

CREATE FUNCTION normalize_page_views(src text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO page_views
    SELECT msg_id, sluice_text(payload->'session_id'), sluice_text(payload->'user_id'),
           sluice_text(payload->'action'), sluice_text(payload->'page'),
           sluice_text(payload->'device'->'type'), sluice_text(payload->'device'->'os'),
           sluice_number(payload->'duration_ms'), produced_at
    FROM events_stage WHERE source = src
    ON CONFLICT (msg_id) DO NOTHING;
END $$;

CREATE FUNCTION normalize_orders(src text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO orders
    SELECT msg_id, sluice_text(payload->'order_id'), sluice_text(payload->'customer_id'),
           sluice_text(payload->'currency'), sluice_number(payload->'total'),
           CASE WHEN jsonb_typeof(payload->'items') = 'array'
                THEN jsonb_array_length(payload->'items') END,
           sluice_text(payload->'shipping'->'country'),
           sluice_bool(payload->'shipping'->'express'), sluice_text(payload->'coupon'),
           produced_at
    FROM events_stage WHERE source = src
    ON CONFLICT (msg_id) DO NOTHING;
END $$;

CREATE FUNCTION normalize_sensor_readings(src text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO sensor_readings
    SELECT msg_id, sluice_text(payload->'device_id'), sluice_text(payload->'kind'),
           sluice_number(payload->'value'), sluice_text(payload->'unit'),
           sluice_number(payload->'battery'), produced_at
    FROM events_stage WHERE source = src
    ON CONFLICT (msg_id) DO NOTHING;
END $$;

INSERT INTO source_normalizers (source, normalizer) VALUES
    ('profiles', 'normalize_profiles'),
    ('clickstream', 'normalize_page_views'),
    ('orders', 'normalize_orders'),
    ('sensors', 'normalize_sensor_readings');
