-- Alerts: dedup windows that hold across worker processes and restarts, and
-- per-channel delivery state, so a notifier that crashed never sends an alert
-- twice to a channel that already has it. (The functions that use these
-- tables are in sql/functions/alerts.sql and deliveries.sql.)

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
