-- Raising alerts: what the workers call to record the alerts their rules
-- raised on a batch, inside the batch's transaction (sluice_raise_alerts).
--
-- A function file, applied by sluice-setup on every run after the pending
-- migrations: the current definition of each function below, and the only
-- one in the tree (broker-setup/migrate.h says the rules).

-- Why set-based, one statement per batch: done one alert at a time, with a
-- plpgsql loop, an advisory lock, a look-up of the id in every daily
-- partition of alerts and a commit each, an alert came to about 2 ms of
-- server CPU, several times what storing its event costs.
--
-- Why plan_cache_mode = force_generic_plan: alerts is partitioned by
-- raised_at, so a look-up by alert_id cannot prune partitions, and
-- planning each statement over every partition was most of the cost
-- (about 2 ms per call with nine daily partitions, where executing takes
-- tens of microseconds). A generic plan is made once per session and kept
-- (plpgsql functions only: a plain SQL function is planned at every call).

-- Takes, for the rest of the transaction, the advisory lock of each alert
-- id (hashtextextended(id, 7366003): the lock that keeps one row per
-- alert_id, alerts having no unique constraint on it since sql/006), all
-- of them in one order, so two batches sharing ids cannot deadlock on
-- them. sluice_plan_alerts (deliveries.sql) takes the same locks.
CREATE OR REPLACE FUNCTION sluice_lock_alert_ids(p_alert_ids text[])
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(s.h)
       FROM (SELECT DISTINCT hashtextextended(x, 7366003) AS h
               FROM unnest(p_alert_ids) AS x ORDER BY 1) AS s;
END $$;

-- The worker's batch of alerts (parallel arrays, one element per alert, in
-- the order the rules fired) in one statement, as if recorded one after
-- the other in array order: an id already recorded returns its state and
-- changes nothing; of the new ones, the first of a (rule, dedup key) with
-- a window bids for the window (kept in alert_windows, under its row
-- lock) and is 'raised' if it opens it, every other match of the key is
-- 'suppressed' and counted there; alerts without a window are 'raised'. A
-- copy of an id later in the same batch gets the first copy's state.
-- Returns each alert's position (1-based) with its state, in order:
-- 'raised' (publish it), 'suppressed', or the state of the row an earlier
-- copy of the event left (a redelivery). With the owner's rights and a
-- fixed search path: the writer role records alerts only through it
-- (grants.sql).
CREATE OR REPLACE FUNCTION sluice_raise_alerts(p_alert_ids text[], p_rules text[],
                                               p_severities text[], p_sources text[],
                                               p_msg_ids text[], p_messages text[],
                                               p_dedup_keys text[], p_windows_s integer[],
                                               p_routing_keys text[])
RETURNS TABLE (n integer, state text) LANGUAGE plpgsql
SECURITY DEFINER SET search_path = public, pg_temp
SET plan_cache_mode = force_generic_plan AS $$
#variable_conflict use_column
BEGIN
    -- The next statement's snapshot is taken after the locks, so it sees
    -- what an earlier holder committed.
    PERFORM sluice_lock_alert_ids(p_alert_ids);
    RETURN QUERY
    WITH input AS (
        SELECT t.*, min(t.i) OVER (PARTITION BY t.alert_id) AS first
          FROM unnest(p_alert_ids, p_rules, p_severities, p_sources, p_msg_ids, p_messages,
                      p_dedup_keys, p_windows_s, p_routing_keys) WITH ORDINALITY
               AS t(alert_id, rule, severity, source, msg_id, message, dedup_key, window_s,
                    routing_key, i)
    ), known AS (
        SELECT DISTINCT ON (a.alert_id) a.alert_id, a.state
          FROM alerts a WHERE a.alert_id = ANY (p_alert_ids)
    ), fresh AS (
        SELECT f.* FROM input f
         WHERE f.i = f.first AND NOT EXISTS (SELECT 1 FROM known k WHERE k.alert_id = f.alert_id)
    ), bids AS (
        -- One bid per (rule, dedup key): its first match, with how many matched.
        SELECT DISTINCT ON (f.rule, f.dedup_key) f.rule, f.dedup_key, f.alert_id, f.window_s,
               count(*) OVER (PARTITION BY f.rule, f.dedup_key) AS matches
          FROM fresh f WHERE f.window_s > 0
         ORDER BY f.rule, f.dedup_key, f.i
    ), windows AS (
        -- A window closed (or none): the bid opens it, the other matches
        -- are suppressed. Still open: every match is suppressed.
        INSERT INTO alert_windows AS w (rule, dedup_key, alert_id, opened_at, closes_at,
                                        suppressed)
        SELECT b.rule, b.dedup_key, b.alert_id, now(), now() + make_interval(secs => b.window_s),
               b.matches - 1
          FROM bids b
        ON CONFLICT (rule, dedup_key) DO UPDATE
           SET alert_id = CASE WHEN w.closes_at <= now() THEN EXCLUDED.alert_id
                               ELSE w.alert_id END,
               opened_at = CASE WHEN w.closes_at <= now() THEN EXCLUDED.opened_at
                                ELSE w.opened_at END,
               closes_at = CASE WHEN w.closes_at <= now() THEN EXCLUDED.closes_at
                                ELSE w.closes_at END,
               suppressed = w.suppressed + EXCLUDED.suppressed
                            + CASE WHEN w.closes_at <= now() THEN 0 ELSE 1 END
        RETURNING w.rule, w.dedup_key, w.alert_id
    ), raised AS (
        INSERT INTO alerts (alert_id, rule, severity, source, msg_id, message, dedup_key,
                            routing_key)
        SELECT f.alert_id, f.rule, f.severity, f.source, f.msg_id, f.message, f.dedup_key,
               f.routing_key
          FROM fresh f
         WHERE f.window_s <= 0
            OR (f.rule, f.dedup_key, f.alert_id) IN (SELECT * FROM windows)
         ORDER BY f.i
        RETURNING alerts.alert_id
    )
    SELECT f.i::integer,
           COALESCE(k.state, CASE WHEN r.alert_id IS NULL THEN 'suppressed' ELSE 'raised' END)
      FROM input f
      LEFT JOIN known k ON k.alert_id = f.alert_id
      LEFT JOIN raised r ON r.alert_id = f.alert_id
     ORDER BY f.i;
END $$;
