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
-- and destination on disk and nothing in the notifier's memory. The
-- functions the notifier calls on these tables are in
-- sql/functions/deliveries.sql.

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
