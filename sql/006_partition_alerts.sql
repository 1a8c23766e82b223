-- alerts partitioned by raised_at like events, with the same retention.
--
-- A unique index on a partitioned table must hold the partition key, so
-- alert_id is no longer a unique constraint: the functions that insert an
-- alert (sluice_raise_alert, sluice_plan_deliveries, sluice_plan_alert) serialise on the id
-- with a transaction-scoped advisory lock and look before inserting, which
-- keeps one row per alert_id. alert_deliveries loses its foreign key
-- (one to a partitioned table would have to name raised_at); retention
-- deletes the deliveries of the alerts it drops. Existing alerts keep their
-- rows and ids.

ALTER TABLE sluice_partitioning DROP CONSTRAINT sluice_partitioning_parent_check;
ALTER TABLE sluice_partitioning ADD CONSTRAINT sluice_partitioning_parent_check
    CHECK (parent IN ('events', 'ingest_errors', 'alerts'));

ALTER TABLE alert_deliveries DROP CONSTRAINT alert_deliveries_alert_id_fkey;
ALTER TABLE alerts RENAME TO alerts_unpartitioned;
ALTER INDEX alerts_pkey RENAME TO alerts_unpartitioned_pkey;
ALTER INDEX alerts_alert_id_key RENAME TO alerts_unpartitioned_alert_id_key;
ALTER INDEX alerts_rule_raised_at RENAME TO alerts_unpartitioned_rule_raised_at;
CREATE TABLE alerts (
    id          bigint      GENERATED ALWAYS AS IDENTITY,
    alert_id    text        NOT NULL,  -- <rule>:<msg_id>; one row each (see above)
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
    updated_at  timestamptz NOT NULL DEFAULT now(),
    dedup_key   text        NOT NULL DEFAULT '',
    routing_key text,
    PRIMARY KEY (id, raised_at)
) PARTITION BY RANGE (raised_at);
CREATE INDEX alerts_alert_id ON alerts (alert_id);
CREATE INDEX alerts_rule_raised_at ON alerts (rule, raised_at);
COMMENT ON COLUMN alerts.alert_id IS '<rule>:<msg_id>: a redelivered event raises the same alert, once';

INSERT INTO sluice_partitioning (parent, retention)
SELECT 'alerts', retention FROM sluice_partitioning WHERE parent = 'events';
DO $$
DECLARE
    start timestamptz := date_trunc('day', now(), 'UTC');
BEGIN
    IF EXISTS (SELECT 1 FROM alerts_unpartitioned WHERE raised_at < start - interval '1 day') THEN
        EXECUTE format('CREATE TABLE alerts_history PARTITION OF alerts'
                       ' FOR VALUES FROM (MINVALUE) TO (%L)', start - interval '1 day');
    END IF;
END $$;

-- Drops, with the partitions of alerts, the deliveries of their alerts.
CREATE OR REPLACE FUNCTION sluice_maintain_partitions() RETURNS integer LANGUAGE plpgsql AS $$
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
SELECT sluice_maintain_partitions();

INSERT INTO alerts (id, alert_id, rule, severity, source, msg_id, message, raised_at, state,
                    attempts, last_error, updated_at, dedup_key, routing_key) OVERRIDING SYSTEM VALUE
SELECT id, alert_id, rule, severity, source, msg_id, message, raised_at, state, attempts,
       last_error, updated_at, dedup_key, routing_key
FROM alerts_unpartitioned;
SELECT setval(pg_get_serial_sequence('alerts', 'id'),
              coalesce((SELECT max(id) FROM alerts), 0) + 1, false);
DROP TABLE alerts_unpartitioned;
ALTER TABLE alerts RENAME CONSTRAINT alerts_severity_check1 TO alerts_severity_check;
ALTER TABLE alerts RENAME CONSTRAINT alerts_state_check1 TO alerts_state_check;

-- As in 003, with the alert's id serialised by an advisory lock instead of
-- a unique constraint.
CREATE OR REPLACE FUNCTION sluice_raise_alert(p_alert_id text, p_rule text, p_severity text,
                                              p_source text, p_msg_id text, p_message text,
                                              p_dedup_key text, p_window_s integer,
                                              p_routing_key text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_state  text;
    v_winner text;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended(p_alert_id, 7366003));
    SELECT state INTO v_state FROM alerts WHERE alert_id = p_alert_id;
    IF FOUND THEN
        RETURN v_state;
    END IF;
    IF p_window_s > 0 THEN
        INSERT INTO alert_windows AS w (rule, dedup_key, alert_id, opened_at, closes_at)
        VALUES (p_rule, p_dedup_key, p_alert_id, now(), now() + make_interval(secs => p_window_s))
        ON CONFLICT (rule, dedup_key) DO UPDATE
            SET alert_id = EXCLUDED.alert_id, opened_at = EXCLUDED.opened_at,
                closes_at = EXCLUDED.closes_at
            WHERE w.closes_at <= now()
        RETURNING alert_id INTO v_winner;
        IF v_winner IS NULL THEN
            UPDATE alert_windows SET suppressed = suppressed + 1
             WHERE rule = p_rule AND dedup_key = p_dedup_key;
            RETURN 'suppressed';
        END IF;
    END IF;
    INSERT INTO alerts (alert_id, rule, severity, source, msg_id, message, dedup_key, routing_key)
    VALUES (p_alert_id, p_rule, p_severity, p_source, p_msg_id, p_message, p_dedup_key,
            p_routing_key);
    RETURN 'raised';
END $$;

CREATE OR REPLACE FUNCTION sluice_plan_deliveries(p_alert_id text, p_rule text, p_severity text,
                                                  p_source text, p_message text, p_channels text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended(p_alert_id, 7366003));
    IF NOT EXISTS (SELECT 1 FROM alerts WHERE alert_id = p_alert_id) THEN
        INSERT INTO alerts (alert_id, rule, severity, source, message)
        VALUES (p_alert_id, p_rule, p_severity, p_source, p_message);
    END IF;
    INSERT INTO alert_deliveries (alert_id, channel)
    SELECT p_alert_id, c FROM unnest(string_to_array(p_channels, ',')) AS c
    ON CONFLICT DO NOTHING;
END $$;

-- As in 004, with the alert's id serialised by the same advisory lock.
CREATE OR REPLACE FUNCTION sluice_plan_alert(p_alert_id text, p_rule text, p_severity text,
                                             p_source text, p_message text, p_channels text,
                                             p_grouped text, p_group_key text)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    v_new integer;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended(p_alert_id, 7366003));
    IF NOT EXISTS (SELECT 1 FROM alerts WHERE alert_id = p_alert_id) THEN
        INSERT INTO alerts (alert_id, rule, severity, source, message)
        VALUES (p_alert_id, p_rule, p_severity, p_source, p_message);
    END IF;
    INSERT INTO alert_deliveries (alert_id, channel, group_key, severity_rank, planned_at)
    SELECT p_alert_id, t.c, CASE WHEN t.g = '1' THEN p_group_key ELSE p_alert_id END,
           CASE p_severity WHEN 'critical' THEN 2 WHEN 'warning' THEN 1 ELSE 0 END,
           clock_timestamp() -- not now(): a batch of alerts planned in one
                             -- transaction keeps its order
      FROM unnest(string_to_array(p_channels, ','), string_to_array(p_grouped, ',')) AS t(c, g)
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS v_new = ROW_COUNT;
    RETURN v_new;
END $$;
