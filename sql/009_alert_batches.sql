-- Alerts recorded, planned, claimed and settled a batch at a time.
--
-- Every alert costs PostgreSQL work at three places: the worker records it
-- (sluice_raise_alerts), the notifier's consuming thread plans its
-- deliveries (sluice_plan_alert), and each destination claims it, sends it
-- and records the outcome (sluice_claim_next, sluice_record_message, which
-- locks the alerts and derives their states). Done one alert at a time,
-- with a plpgsql loop, an advisory lock, a look-up of the id in every daily
-- partition of alerts and a commit each, that came to about 2 ms of server
-- CPU per alert, several times what storing the alert's event costs. The
-- functions below do the same work set-based, one statement for a whole
-- batch: the worker's batch, the notifier's prefetch, a destination's
-- claim. What each guarantees is unchanged: one row per alert_id (the
-- same advisory lock per id, taken for the whole batch in one order), the
-- dedup windows, a delivery planned once, most severe first.

-- Takes, for the rest of the transaction, the advisory lock of each alert
-- id that sluice_raise_alert and sluice_plan_alert (sql/006) take one at a
-- time, all of them in one order, so two batches sharing ids cannot
-- deadlock on them.
CREATE FUNCTION sluice_lock_alert_ids(p_alert_ids text[])
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(s.h)
       FROM (SELECT DISTINCT hashtextextended(x, 7366003) AS h
               FROM unnest(p_alert_ids) AS x ORDER BY 1) AS s;
END $$;

-- The worker's batch of alerts in one statement, as sluice_raise_alert
-- (sql/006) would record them one after the other in array order: an id
-- already recorded returns its state and changes nothing; of the new ones,
-- the first of a (rule, dedup key) with a window bids for the window (kept
-- in alert_windows, under its row lock) and is 'raised' if it opens it,
-- every other match of the key is 'suppressed' and counted there; alerts
-- without a window are 'raised'. A copy of an id later in the same batch
-- gets the first copy's state. Returns each alert's position (1-based)
-- with its state, in order.
CREATE OR REPLACE FUNCTION sluice_raise_alerts(p_alert_ids text[], p_rules text[],
                                               p_severities text[], p_sources text[],
                                               p_msg_ids text[], p_messages text[],
                                               p_dedup_keys text[], p_windows_s integer[],
                                               p_routing_keys text[])
RETURNS TABLE (n integer, state text) LANGUAGE plpgsql
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

-- The notifier's prefetch of alerts in one statement, as sluice_plan_alert
-- (sql/006) would plan them one after the other: each alert recorded if it
-- is not there yet (one published by another client), and a pending
-- delivery for each destination of p_channels[i] (comma-separated), in
-- group p_group_keys[i] where p_grouped[i] says '1' for it, else alone.
-- Returns each alert's position (1-based) with the number of its
-- deliveries that are new: 0 for a copy (planned before, or earlier in
-- this batch).
CREATE FUNCTION sluice_plan_alerts(p_alert_ids text[], p_rules text[], p_severities text[],
                                   p_sources text[], p_messages text[], p_channels text[],
                                   p_grouped text[], p_group_keys text[])
RETURNS TABLE (n integer, fresh integer) LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan AS $$
#variable_conflict use_column
DECLARE
    -- planned_at: the batch keeps its order (a microsecond apart from one
    -- alert to the next), and the next batch, planned after this one
    -- commits, comes later.
    v_at constant timestamptz := clock_timestamp();
BEGIN
    PERFORM sluice_lock_alert_ids(p_alert_ids);
    RETURN QUERY
    WITH input AS (
        SELECT t.*, min(t.i) OVER (PARTITION BY t.alert_id) AS first
          FROM unnest(p_alert_ids, p_rules, p_severities, p_sources, p_messages, p_channels,
                      p_grouped, p_group_keys) WITH ORDINALITY
               AS t(alert_id, rule, severity, source, message, channels, grouped, group_key, i)
    ), known AS (
        SELECT DISTINCT a.alert_id FROM alerts a WHERE a.alert_id = ANY (p_alert_ids)
    ), recorded AS (
        INSERT INTO alerts (alert_id, rule, severity, source, message)
        SELECT f.alert_id, f.rule, f.severity, f.source, f.message
          FROM input f
         WHERE f.i = f.first AND NOT EXISTS (SELECT 1 FROM known k WHERE k.alert_id = f.alert_id)
         ORDER BY f.i
    ), planned AS (
        INSERT INTO alert_deliveries (alert_id, channel, group_key, severity_rank, planned_at)
        SELECT f.alert_id, c.channel, CASE WHEN c.g = '1' THEN f.group_key ELSE f.alert_id END,
               CASE f.severity WHEN 'critical' THEN 2 WHEN 'warning' THEN 1 ELSE 0 END,
               v_at + make_interval(secs => f.i / 1e6)
          FROM input f
          CROSS JOIN LATERAL unnest(string_to_array(f.channels, ','),
                                    string_to_array(f.grouped, ',')) AS c(channel, g)
         WHERE f.i = f.first
        ON CONFLICT DO NOTHING
        RETURNING alert_deliveries.alert_id
    ), counts AS (
        SELECT p.alert_id, count(*) AS new FROM planned p GROUP BY p.alert_id
    )
    SELECT f.i::integer, CASE WHEN f.i = f.first THEN COALESCE(c.new, 0) ELSE 0 END::integer
      FROM input f LEFT JOIN counts c ON c.alert_id = f.alert_id
     ORDER BY f.i;
END $$;

-- For destinations that take alerts one by one: up to p_max pending
-- deliveries, the most severe, then the oldest, become one message, now
-- 'sending' under this session (its alerts are sent one after the other
-- and its outcome recorded once, with sluice_record_message). A message of
-- one alert is in that alert's group, as sluice_claim_next's; a message of
-- several has group_key ''. Returns its id, or NULL if none was pending.
-- With p_max 1 it is sluice_claim_next.
CREATE FUNCTION sluice_claim_many(p_channel text, p_max integer)
RETURNS bigint LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    v_ids   text[];
    v_group text;
    v_id    bigint;
BEGIN
    SELECT array_agg(s.alert_id ORDER BY s.o), min(s.group_key) INTO v_ids, v_group
      FROM (SELECT d.alert_id, d.group_key, row_number() OVER () AS o
              FROM (SELECT alert_id, group_key FROM alert_deliveries
                     WHERE channel = p_channel AND state = 'pending'
                     ORDER BY severity_rank DESC, planned_at, alert_id
                     LIMIT p_max FOR UPDATE SKIP LOCKED) AS d) AS s;
    IF v_ids IS NULL THEN
        RETURN NULL;
    END IF;
    INSERT INTO alert_messages (channel, group_key, claimed_by, alerts)
    VALUES (p_channel, CASE WHEN cardinality(v_ids) = 1 THEN v_group ELSE '' END,
            pg_backend_pid(), cardinality(v_ids))
    RETURNING id INTO v_id;
    UPDATE alert_deliveries
       SET state = 'sending', message_id = v_id, attempts = attempts + 1,
           claimed_by = pg_backend_pid(), updated_at = now()
     WHERE channel = p_channel AND alert_id = ANY (v_ids);
    RETURN v_id;
END $$;
