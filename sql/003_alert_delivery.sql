-- Alerts: dedup windows that hold across worker processes and restarts, and
-- per-channel delivery state, so a notifier that crashed never sends an alert
-- twice to a channel that already has it.

ALTER TABLE alerts ADD COLUMN dedup_key text NOT NULL DEFAULT '';
ALTER TABLE alerts ADD COLUMN routing_key text;
COMMENT ON COLUMN alerts.alert_id IS '<rule>:<msg_id>: a redelivered event raises the same alert, once';

-- One row per (rule, dedup key): the window during which the key does not
-- alert again. Workers claim it with INSERT ... ON CONFLICT, which takes
-- the row lock, so two workers seeing the same key at once raise one alert.
CREATE TABLE alert_windows (
    rule        text        NOT NULL,
    dedup_key   text        NOT NULL,
    alert_id    text        NOT NULL,      -- the alert that opened the window
    opened_at   timestamptz NOT NULL,
    closes_at   timestamptz NOT NULL,
    suppressed  bigint      NOT NULL DEFAULT 0, -- matches not alerted while it was open
    PRIMARY KEY (rule, dedup_key)
);

-- One row per alert and channel ("log", "webhook", "telegram:<chat>").
-- pending: not tried yet; sending: a request is under way by the notifier
-- whose database session is claimed_by (if that session is gone, the
-- notifier died during the request and cannot know whether it arrived, so
-- the next one does not send again and records the delivery as failed);
-- retrying: the last attempt failed and another follows; sent / failed:
-- final.
CREATE TABLE alert_deliveries (
    alert_id    text        NOT NULL REFERENCES alerts (alert_id) ON DELETE CASCADE,
    channel     text        NOT NULL,
    state       text        NOT NULL DEFAULT 'pending'
                            CHECK (state IN ('pending', 'sending', 'retrying', 'sent', 'failed')),
    attempts    integer     NOT NULL DEFAULT 0,
    last_error  text,
    claimed_by  integer,                   -- pg_backend_pid() of the sending notifier
    sent_at     timestamptz,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (alert_id, channel)
);

-- Records an alert raised by a rule, honouring its dedup window. Returns
-- 'raised' (new: publish it), the recorded state of an alert raised before
-- with the same id (a redelivered event: publish again only if still
-- 'raised'), or 'suppressed' (the key alerted within the window).
CREATE FUNCTION sluice_raise_alert(p_alert_id text, p_rule text, p_severity text,
                                   p_source text, p_msg_id text, p_message text,
                                   p_dedup_key text, p_window_s integer, p_routing_key text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_state  text;
    v_winner text;
BEGIN
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
            p_routing_key)
    ON CONFLICT (alert_id) DO NOTHING;
    RETURN 'raised';
END $$;

-- Called by the notifier when it takes an alert: records the alert if it is
-- not there yet (one published by another client) and a 'pending' row for
-- each channel of its route (comma-separated), so the alert only counts as
-- sent once every one of them is.
CREATE FUNCTION sluice_plan_deliveries(p_alert_id text, p_rule text, p_severity text,
                                       p_source text, p_message text, p_channels text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO alerts (alert_id, rule, severity, source, message)
    VALUES (p_alert_id, p_rule, p_severity, p_source, p_message)
    ON CONFLICT (alert_id) DO NOTHING;
    INSERT INTO alert_deliveries (alert_id, channel)
    SELECT p_alert_id, c FROM unnest(string_to_array(p_channels, ',')) AS c
    ON CONFLICT DO NOTHING;
END $$;

-- Called by the notifier before each attempt on a channel. Returns 'go'
-- (now 'sending'), 'sent' or 'failed' (final: do not send), 'busy' (another
-- live notifier is sending it right now: ask again once it is done), or
-- 'interrupted' (a request was under way when a notifier stopped: it may
-- have arrived, so it is not sent again; now 'failed').
CREATE FUNCTION sluice_claim_delivery(p_alert_id text, p_channel text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_state text;
    v_owner integer;
BEGIN
    INSERT INTO alert_deliveries (alert_id, channel) VALUES (p_alert_id, p_channel)
    ON CONFLICT DO NOTHING;
    SELECT state, claimed_by INTO v_state, v_owner FROM alert_deliveries
     WHERE alert_id = p_alert_id AND channel = p_channel FOR UPDATE;
    IF v_state IN ('sent', 'failed') THEN
        RETURN v_state;
    END IF;
    IF v_state = 'sending' AND v_owner <> pg_backend_pid()
       AND EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = v_owner) THEN
        RETURN 'busy';
    END IF;
    IF v_state = 'sending' THEN
        PERFORM sluice_record_delivery(p_alert_id, p_channel, 'failed',
            'interrupted: the notifier stopped during a request that may have arrived; '
            'not sent again');
        RETURN 'interrupted';
    END IF;
    UPDATE alert_deliveries
       SET state = 'sending', attempts = attempts + 1, claimed_by = pg_backend_pid(),
           updated_at = now()
     WHERE alert_id = p_alert_id AND channel = p_channel;
    UPDATE alerts SET attempts = attempts + 1, updated_at = now() WHERE alert_id = p_alert_id;
    RETURN 'go';
END $$;

-- Records an attempt's outcome on a channel ('sent', 'retrying' or
-- 'failed') and derives the alert's own state: failed if any channel
-- failed, else retrying if any is still open, sent once all are sent.
CREATE FUNCTION sluice_record_delivery(p_alert_id text, p_channel text, p_state text,
                                       p_error text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    UPDATE alert_deliveries
       SET state = p_state, last_error = COALESCE(p_error, last_error), updated_at = now(),
           sent_at = CASE WHEN p_state = 'sent' THEN now() ELSE sent_at END
     WHERE alert_id = p_alert_id AND channel = p_channel;
    UPDATE alerts a
       SET state = CASE
               WHEN EXISTS (SELECT 1 FROM alert_deliveries d
                             WHERE d.alert_id = a.alert_id AND d.state = 'failed') THEN 'failed'
               WHEN EXISTS (SELECT 1 FROM alert_deliveries d
                             WHERE d.alert_id = a.alert_id AND d.state <> 'sent') THEN 'retrying'
               ELSE 'sent' END,
           last_error = CASE WHEN p_error IS NOT NULL THEN p_channel || ': ' || p_error
                             ELSE a.last_error END,
           updated_at = now()
     WHERE a.alert_id = p_alert_id;
END $$;
