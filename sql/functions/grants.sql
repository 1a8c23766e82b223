-- Grants: what each role sluice-setup creates may do (broker-setup/roles.h
-- says who they are). Run by setup as the owner role, after the
-- migrations, the partitions and the projections, on every run.
--
-- A function file, applied by sluice-setup on every run after the pending
-- migrations: the current definition of each function below, and the only
-- one in the tree (broker-setup/migrate.h says the rules).

-- Gives the writer (workers; sluice-ctl reprocess-errors) what storing
-- needs, the notifier the alert and delivery tables, the reader SELECT on
-- every table, now and later (partitions and typed tables the owner
-- creates). The writer changes no stored event and writes no alert or
-- typed table itself: sluice_raise_alerts, sluice_maintain_partitions and
-- the projections' trigger work with the owner's rights, and only the
-- writer may call the first two. A grant that exists is left as it is.
CREATE OR REPLACE FUNCTION sluice_grant_roles(p_writer text, p_notifier text, p_reader text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    definer_functions text := 'sluice_maintain_partitions(), sluice_raise_alerts(text[], text[],'
        ' text[], text[], text[], text[], text[], integer[], text[])';
BEGIN
    EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', definer_functions);

    EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', definer_functions, p_writer);
    EXECUTE format('GRANT INSERT ON events TO %I', p_writer);
    -- Which sources have a projection: the worker COPYs those alone.
    EXECUTE format('GRANT SELECT ON projections TO %I', p_writer);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE ON event_ids TO %I', p_writer);
    -- reprocess-errors reads, rewrites and deletes the rows it stores.
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ingest_errors TO %I', p_writer);

    EXECUTE format('GRANT SELECT, INSERT, UPDATE ON alerts TO %I', p_notifier);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON alert_deliveries, alert_messages,'
                   ' alert_groups TO %I', p_notifier);

    EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA public TO %I', p_reader);
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO %I',
                   p_reader);
END $$;
