-- alerts partitioned by raised_at like events, with the same retention.
--
-- A unique index on a partitioned table must hold the partition key, so
-- alert_id is no longer a unique constraint: the functions that insert an
-- alert (sql/functions/alerts.sql and deliveries.sql) serialise on the id
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

-- Rows of yesterday or later go into a partition per day, named and cut as
-- sluice_create_partition (sql/functions/partitions.sql) does: written out
-- here, as in 005, because the function files are applied after the
-- migrations.
DO $$
DECLARE
    day timestamptz;
BEGIN
    FOR day IN SELECT DISTINCT date_trunc('day', raised_at, 'UTC') FROM alerts_unpartitioned
               WHERE raised_at >= date_trunc('day', now(), 'UTC') - interval '1 day'
    LOOP
        EXECUTE format('CREATE TABLE %I PARTITION OF alerts FOR VALUES FROM (%L) TO (%L)',
                       'alerts_' || to_char(day AT TIME ZONE 'UTC', 'YYYYMMDD'), day,
                       day + interval '1 day');
    END LOOP;
END $$;

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
