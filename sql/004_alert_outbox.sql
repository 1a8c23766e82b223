-- The notifier's outbox: every alert's delivery to each destination is
-- recorded here (alert_deliveries, 'pending') before the alert leaves
-- RabbitMQ; each destination is then served on its own from these rows, in
-- messages that may carry a whole group of alerts (alert_messages).
--
-- Why in PostgreSQL and not in the notifier's memory or in RabbitMQ: a
-- destination may stay blocked for hours (a 429, an endpoint down) while
-- alerts for it keep coming. One consumer on sluice.q.notifier with a
-- shared prefetch cannot leave them in the queue without stalling every
-- other destination, and a group of 1,000 alerts waiting out group_wait
-- does not fit in a small prefetch. Here the backlog costs a row per alert
-- and destination on disk and nothing in the notifier's memory.

-- One row per message sent (or being sent) to a destination: one alert, or
-- a group of them on a chat channel.
CREATE TABLE alert_messages (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    channel     text        NOT NULL,
    group_key   text        NOT NULL,
    -- sending: a request is under way by the notifier whose session is
    -- claimed_by (the destination's lease holder); retrying: the last
    -- attempt failed and another follows; sent / failed: final.
    state       text        NOT NULL DEFAULT 'sending'
                            CHECK (state IN ('sending', 'retrying', 'sent', 'failed')),
    alerts      integer     NOT NULL DEFAULT 0,  -- how many alerts it carries
    parts       integer     NOT NULL DEFAULT 0,  -- texts over the channel's limit are split
    parts_sent  integer     NOT NULL DEFAULT 0,  -- a retry resumes with the next part
    attempts    integer     NOT NULL DEFAULT 1,
    claimed_by  integer,
    last_error  text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    sent_at     timestamptz,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alert_messages_open ON alert_messages (channel, id)
    WHERE state IN ('sending', 'retrying');

-- Each delivery's group, its severity as a rank (critical first), when it
-- was planned, and the message that carried it.
ALTER TABLE alert_deliveries
    ADD COLUMN group_key     text,
    ADD COLUMN severity_rank smallint    NOT NULL DEFAULT 0,
    ADD COLUMN planned_at    timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN message_id    bigint      REFERENCES alert_messages (id);
UPDATE alert_deliveries SET group_key = alert_id WHERE group_key IS NULL;
ALTER TABLE alert_deliveries ALTER COLUMN group_key SET NOT NULL;
-- What a destination picks next (critical first, then the oldest), its
-- backlog and what a notifier left behind, without reading the history of
-- delivered alerts: only deliveries not yet final are in this index.
CREATE INDEX alert_deliveries_open
    ON alert_deliveries (channel, severity_rank DESC, planned_at, alert_id)
    WHERE state IN ('pending', 'sending', 'retrying');
CREATE INDEX alert_deliveries_message ON alert_deliveries (message_id);

-- When each group last had a message, so group_interval holds across
-- restarts and notifiers.
CREATE TABLE alert_groups (
    channel         text        NOT NULL,
    group_key       text        NOT NULL,
    last_message_at timestamptz NOT NULL,
    PRIMARY KEY (channel, group_key)
);

-- Locks the alerts of a message, in one order, before their deliveries
-- change: two destinations recording the two deliveries of one alert at
-- once would otherwise each miss the other's (uncommitted) outcome and leave
-- it 'retrying' for good. FOR NO KEY UPDATE (what the UPDATE of alerts
-- takes anyway) does not conflict with the key-share locks that planning
-- an alert's deliveries takes through their foreign key.
CREATE FUNCTION sluice_lock_alerts(p_alert_ids text[])
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM alerts WHERE alert_id = ANY (p_alert_ids) ORDER BY alert_id
        FOR NO KEY UPDATE;
END $$;

-- An alert's own state follows its deliveries: failed if one failed,
-- retrying while one is open, sent once all are sent. Call it in a new
-- statement after sluice_lock_alerts(), so it sees the others' outcomes.
CREATE FUNCTION sluice_derive_alert_states(p_alert_ids text[])
RETURNS void LANGUAGE sql AS $$
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
$$;

-- Records an alert taken from sluice.q.notifier (if it is not there yet)
-- and a pending delivery for each channel of p_channels (comma-separated);
-- p_grouped says for each ('1' or '0') whether it goes in group p_group_key
-- or alone. Returns how many deliveries are new: 0 for a copy.
CREATE FUNCTION sluice_plan_alert(p_alert_id text, p_rule text, p_severity text,
                                  p_source text, p_message text, p_channels text,
                                  p_grouped text, p_group_key text)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    v_new integer;
BEGIN
    INSERT INTO alerts (alert_id, rule, severity, source, message)
    VALUES (p_alert_id, p_rule, p_severity, p_source, p_message)
    ON CONFLICT (alert_id) DO NOTHING;
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

-- Called by the notifier that just took a destination's lease: whatever was
-- in 'sending' there belonged to a notifier that is gone, in the middle of
-- a request that may have arrived. Where the receiver deduplicates
-- (p_resend: the webhook's X-Sluice-Alert-Id) it is sent again ('retrying').
-- Telegram has no idempotency key, so there it is not sent again but
-- recorded as failed ("interrupted"): at most once. Deliveries left
-- 'retrying' without a message by an older notifier are pending again.
-- Returns the number of alerts interrupted (or resent).
CREATE FUNCTION sluice_recover_channel(p_channel text, p_resend boolean)
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
CREATE FUNCTION sluice_claim_group(p_channel text, p_group_key text, p_max integer,
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

-- For destinations that take alerts one by one: the most severe, then the
-- oldest pending alert becomes a message of its own, now 'sending'. One
-- round trip instead of a query and a claim. Returns its id, or NULL.
CREATE FUNCTION sluice_claim_next(p_channel text)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v_alert text;
    v_group text;
    v_id    bigint;
BEGIN
    SELECT alert_id, group_key INTO v_alert, v_group FROM alert_deliveries
     WHERE channel = p_channel AND state = 'pending'
     ORDER BY severity_rank DESC, planned_at, alert_id LIMIT 1 FOR UPDATE SKIP LOCKED;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    INSERT INTO alert_messages (channel, group_key, claimed_by, alerts)
    VALUES (p_channel, v_group, pg_backend_pid(), 1) RETURNING id INTO v_id;
    UPDATE alert_deliveries
       SET state = 'sending', message_id = v_id, attempts = attempts + 1,
           claimed_by = pg_backend_pid(), updated_at = now()
     WHERE alert_id = v_alert AND channel = p_channel;
    RETURN v_id;
END $$;

-- Another attempt at a message left 'retrying': 'sending' again.
CREATE FUNCTION sluice_reclaim_message(p_id bigint)
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
CREATE FUNCTION sluice_record_message(p_id bigint, p_state text, p_error text,
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
