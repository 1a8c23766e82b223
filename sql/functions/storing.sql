-- Storing events: the idempotency key of event_ids (the table is sql/005's).
--
-- A function file, applied by sluice-setup on every run after the pending
-- migrations: the current definition of each function below, and the only
-- one in the tree (broker-setup/migrate.h says the rules).

-- Takes msg_id for an event unless an event holds it: an id absent or held
-- by an ingest error (one being reprocessed) is taken, and true returned.
-- sluice-ctl reprocess-errors stores an ingest error's event through it.
CREATE OR REPLACE FUNCTION sluice_claim_event_id(p_msg_id text, p_received_at timestamptz)
RETURNS boolean LANGUAGE sql AS $$
    INSERT INTO event_ids AS i (msg_id, received_at) VALUES (p_msg_id, p_received_at)
    ON CONFLICT (msg_id) DO UPDATE SET is_error = false, received_at = EXCLUDED.received_at
    WHERE i.is_error
    RETURNING true
$$;

-- TRUNCATE events forgets their ids too (the ids of ingest errors stay),
-- so emptying the warehouse by hand does not turn new copies into
-- "duplicates" of rows that are gone.
CREATE OR REPLACE FUNCTION sluice_forget_event_ids() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE event_ids;
    INSERT INTO event_ids SELECT msg_id, min(received_at), true FROM ingest_errors GROUP BY msg_id;
    RETURN NULL;
END $$;

-- The trigger is created once: CREATE OR REPLACE TRIGGER at every run
-- would take a lock on events that waits for the workers' batches. A
-- changed definition needs a migration that drops the trigger; this file
-- then creates it anew.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = 'events'::regclass
                   AND tgname = 'events_truncate') THEN
        CREATE TRIGGER events_truncate AFTER TRUNCATE ON events
            FOR EACH STATEMENT EXECUTE FUNCTION sluice_forget_event_ids();
    END IF;
END $$;
