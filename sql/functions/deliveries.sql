-- The notifier's outbox: planning each alert's deliveries, claiming them a
-- message at a time per destination, recording the outcome (the tables,
-- alert_deliveries, alert_messages and alert_groups, are sql/003's and
-- sql/004's; sql/004 says why the outbox is in PostgreSQL).
--
-- plan_cache_mode = force_generic_plan where a function looks alerts up
-- by alert_id: alerts.sql says why.
--
-- A function file, applied by sluice-setup on every run after the pending
-- migrations: the current definition of each function below, and the only
-- one in the tree (broker-setup/migrate.h says the rules).

-- Locks the alerts of a message, in one order, before their deliveries
-- change: two destinations recording the two deliveries of one alert at
-- once would otherwise each miss the other's (uncommitted) outcome and leave
-- it 'retrying' for good. FOR NO KEY UPDATE (what the UPDATE of alerts
-- takes anyway) does not conflict with the key-share locks that planning
-- an alert's deliveries takes through their foreign key.
CREATE OR REPLACE FUNCTION sluice_lock_alerts(p_alert_ids text[])
RETURNS void LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
BEGIN
    PERFORM 1 FROM alerts WHERE alert_id = ANY (p_alert_ids) ORDER BY alert_id
        FOR NO KEY UPDATE;
END $$;

-- An alert's own state follows its deliveries: failed if one failed,
-- retrying while one is open, sent once all are sent. Call it in a new
-- statement after sluice_lock_alerts(), so it sees the others' outcomes.
CREATE OR REPLACE FUNCTION sluice_derive_alert_states(p_alert_ids text[])
RETURNS void LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
BEGIN
    UPDATE alerts a
       SET state = CASE
               WHEN EXISTS (SELECT 1 FROM alert_deliveries d
                             WHERE d.alert_id = a.alert_id AND d.state = 'failed') THEN 'failed'
               WHEN EXISTS (SELECT 1 FROM alert_deliveries d
                             WHERE d.alert_id = a.alert_id AND d.state <> 'sent') THEN 'retrying'
               ELSE 'sent' END,
           last_error = COALESCE((SELECT d.channel || ': ' || d.last_error FROM alert_deliveries d
                                   WHERE d.alert_id = a.alert_id AND d.state = 'failed'
                                   LIMIT 1), a.last_error),
           updated_at = now()
     WHERE a.alert_id = ANY (p_alert_ids);
END $$;

-- The notifier's prefetch of alerts in one statement: each alert recorded
-- if it is not there yet (one published by another client), and a
-- pending delivery for each destination of p_channels[i]
-- (comma-separated), in group p_group_keys[i] where p_grouped[i] says '1'
-- for it, else alone. Returns each alert's position (1-based) with the
-- number of its deliveries that are new: 0 for a copy (planned before, or
-- earlier in this batch). The alert ids' advisory locks
-- (sluice_lock_alert_ids, alerts.sql) keep one row per alert_id.
CREATE OR REPLACE FUNCTION sluice_plan_alerts(p_alert_ids text[], p_rules text[],
                                              p_severities text[], p_sources text[],
                                              p_messages text[], p_channels text[],
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

-- Called by the notifier that just took a destination's lease: whatever was
-- in 'sending' there belonged to a notifier that is gone, in the middle of
-- a request that may have arrived. Where the receiver deduplicates
-- (p_resend: the webhook's X-Sluice-Alert-Id) it is sent again ('retrying').
-- Telegram has no idempotency key, so there it is not sent again but
-- recorded as failed ("interrupted"): at most once. Deliveries left
-- 'retrying' without a message by an older notifier are pending again.
-- Returns the number of alerts interrupted (or resent).
CREATE OR REPLACE FUNCTION sluice_recover_channel(p_channel text, p_resend boolean)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    v_ids  text[];
    v_why  constant text := 'interrupted: the notifier stopped during a request that may have '
                            'arrived; not sent again';
BEGIN
    PERFORM sluice_lock_alerts(ARRAY(SELECT alert_id FROM alert_deliveries
                                      WHERE channel = p_channel AND state = 'sending'));
    IF p_resend THEN
        UPDATE alert_messages SET state = 'retrying', updated_at = now()
         WHERE channel = p_channel AND state = 'sending';
        WITH hit AS (
            UPDATE alert_deliveries SET state = 'retrying', updated_at = now()
             WHERE channel = p_channel AND state = 'sending' AND message_id IS NOT NULL
            RETURNING alert_id)
        SELECT array_agg(alert_id) INTO v_ids FROM hit;
    ELSE
        UPDATE alert_messages SET state = 'failed', last_error = v_why, updated_at = now()
         WHERE channel = p_channel AND state = 'sending';
        WITH hit AS (
            UPDATE alert_deliveries SET state = 'failed', last_error = v_why, updated_at = now()
             WHERE channel = p_channel AND state = 'sending'
            RETURNING alert_id)
        SELECT array_agg(alert_id) INTO v_ids FROM hit;
    END IF;
    -- Left by a notifier older than this outbox (one delivery at a time).
    UPDATE alert_deliveries SET state = 'pending', message_id = NULL, updated_at = now()
     WHERE channel = p_channel AND message_id IS NULL AND state IN ('retrying', 'sending');
    PERFORM sluice_derive_alert_states(v_ids);
    RETURN COALESCE(array_length(v_ids, 1), 0);
END $$;

-- Puts up to p_max pending deliveries of one group into a new message, now
-- 'sending' under this session. Returns its id, or NULL if none was pending.
-- p_remember: the group is paced by group_interval (keep its last message).
CREATE OR REPLACE FUNCTION sluice_claim_group(p_channel text, p_group_key text, p_max integer,
                                              p_remember boolean)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint;
    v_n  integer;
BEGIN
    INSERT INTO alert_messages (channel, group_key, claimed_by)
    VALUES (p_channel, p_group_key, pg_backend_pid()) RETURNING id INTO v_id;
    UPDATE alert_deliveries d
       SET state = 'sending', message_id = v_id, attempts = d.attempts + 1,
           claimed_by = pg_backend_pid(), updated_at = now()
     WHERE (d.alert_id, d.channel) IN (
           SELECT alert_id, channel FROM alert_deliveries
            WHERE channel = p_channel AND group_key = p_group_key AND state = 'pending'
            ORDER BY planned_at, alert_id LIMIT p_max FOR UPDATE SKIP LOCKED);
    GET DIAGNOSTICS v_n = ROW_COUNT;
    IF v_n = 0 THEN
        DELETE FROM alert_messages WHERE id = v_id;
        RETURN NULL;
    END IF;
    UPDATE alert_messages SET alerts = v_n WHERE id = v_id;
    IF p_remember THEN
        INSERT INTO alert_groups (channel, group_key, last_message_at)
        VALUES (p_channel, p_group_key, now())
        ON CONFLICT (channel, group_key) DO UPDATE SET last_message_at = now();
    END IF;
    RETURN v_id;
END $$;

-- For destinations that take alerts one by one: up to p_max pending
-- deliveries, the most severe, then the oldest, become one message, now
-- 'sending' under this session (its alerts are sent one after the other
-- and its outcome recorded once, with sluice_record_message). A message of
-- one alert is in that alert's group; a message of several has group_key
-- ''. Returns its id, or NULL if none was pending.
CREATE OR REPLACE FUNCTION sluice_claim_many(p_channel text, p_max integer)
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

-- Another attempt at a message left 'retrying': 'sending' again.
CREATE OR REPLACE FUNCTION sluice_reclaim_message(p_id bigint)
RETURNS void LANGUAGE sql AS $$
    UPDATE alert_messages SET state = 'sending', attempts = attempts + 1,
                              claimed_by = pg_backend_pid(), updated_at = now()
     WHERE id = p_id;
    UPDATE alert_deliveries SET state = 'sending', attempts = attempts + 1,
                                claimed_by = pg_backend_pid(), updated_at = now()
     WHERE message_id = p_id;
$$;

-- Records an attempt's outcome for a whole message and every alert in it:
-- 'sent', 'retrying' or 'failed', with the parts sent so far and the
-- number of parts.
CREATE OR REPLACE FUNCTION sluice_record_message(p_id bigint, p_state text, p_error text,
                                                 p_parts integer, p_parts_sent integer)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_ids text[];
BEGIN
    PERFORM sluice_lock_alerts(ARRAY(SELECT alert_id FROM alert_deliveries
                                      WHERE message_id = p_id));
    UPDATE alert_messages
       SET state = p_state, last_error = COALESCE(p_error, last_error), parts = p_parts,
           parts_sent = p_parts_sent, updated_at = now(),
           sent_at = CASE WHEN p_state = 'sent' THEN now() ELSE sent_at END
     WHERE id = p_id;
    WITH hit AS (
        UPDATE alert_deliveries
           SET state = p_state, last_error = COALESCE(p_error, last_error), updated_at = now(),
               sent_at = CASE WHEN p_state = 'sent' THEN now() ELSE sent_at END
         WHERE message_id = p_id
        RETURNING alert_id)
    SELECT array_agg(alert_id) INTO v_ids FROM hit;
    PERFORM sluice_derive_alert_states(v_ids);
END $$;
