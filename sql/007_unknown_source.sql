-- ingest_errors gains the reason unknown_source: a message that no source
-- queue was bound for reaches sluice.q.unrouted through the alternate
-- exchange of sluice.ingest, and the workers record it here with its raw
-- body, under the source its routing key names, to be replayed once that
-- source has a queue.
--
-- The reason check is found by what it checks rather than by name, so this
-- works whatever an earlier migration called it.
DO $$
DECLARE
    c record;
BEGIN
    FOR c IN SELECT con.conname
               FROM pg_constraint con
              WHERE con.conrelid = 'ingest_errors'::regclass
                AND con.contype = 'c'
                AND pg_get_constraintdef(con.oid) LIKE '%reason%'
    LOOP
        EXECUTE format('ALTER TABLE ingest_errors DROP CONSTRAINT %I', c.conname);
    END LOOP;
END
$$;

ALTER TABLE ingest_errors ADD CONSTRAINT ingest_errors_reason_check
    CHECK (reason IN ('too_large', 'invalid_utf8', 'invalid_json', 'not_an_object',
                      'nul_character', 'rejected_by_database', 'unknown_source'));
