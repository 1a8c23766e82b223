-- Time partitions of events, ingest_errors and alerts: created ahead, dropped
-- after the retention (how each table is cut: the table sluice_partitioning).
--
-- A function file, applied by sluice-setup on every run after the pending
-- migrations: the current definition of each function below, and the only
-- one in the tree (broker-setup/migrate.h says the rules).

-- The upper bound of a range partition (NULL for MAXVALUE or not a range).
CREATE OR REPLACE FUNCTION sluice_partition_upper(part regclass) RETURNS timestamptz
LANGUAGE sql STABLE AS $$
    SELECT (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \(''([^'']+)''\)'))[1]::timestamptz
    FROM pg_class c WHERE c.oid = part
$$;

-- Creates the partition of `parent` holding `at`, unless one exists. Its
-- name is the parent's and the period's first day (events_20261206).
CREATE OR REPLACE FUNCTION sluice_create_partition(p_parent text, p_period text, at timestamptz)
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
-- `ahead` more) and drops those entirely older than the retention, with
-- the ids of their events and the deliveries of their alerts. Returns the
-- number of partitions dropped. Serialised by an advisory lock, so
-- workers (when they connect) and setup may call it at the same time.
-- With the owner's rights (a parent's owner creates its partitions), the
-- search path fixed so that a caller's objects cannot stand in for ours;
-- only the writer role may call it (grants.sql).
CREATE OR REPLACE FUNCTION sluice_maintain_partitions() RETURNS integer LANGUAGE plpgsql
SECURITY DEFINER SET search_path = public, pg_temp AS $$
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
            IF p.parent = 'alerts' THEN
                EXECUTE format('DELETE FROM alert_deliveries d USING %s a'
                               ' WHERE d.alert_id = a.alert_id', part.rel);
            END IF;
            EXECUTE format('DROP TABLE %s', part.rel);
            dropped := dropped + 1;
        END LOOP;
        IF p.parent = 'events' THEN
            DELETE FROM event_ids WHERE received_at < cutoff;
        END IF;
        IF p.parent = 'alerts' THEN
            -- The notifier's messages (sql/004) whose deliveries went with
            -- their alerts.
            DELETE FROM alert_messages m
             WHERE m.created_at < cutoff
               AND NOT EXISTS (SELECT 1 FROM alert_deliveries d WHERE d.message_id = m.id);
        END IF;
    END LOOP;
    RETURN dropped;
END $$;
