-- A batch's alerts in one statement. The worker records the alerts its
-- rules raised on a batch inside the batch's own transaction, on the
-- warehouse's connection (one commit per batch, not two), and in one call
-- rather than one round trip per alert: parallel arrays, one element per
-- alert, in the order the rules fired. Each alert goes through
-- sluice_raise_alert (sql/006), so the id's advisory lock, the dedup
-- window and "one row per alert_id" hold as before. Returns each alert's
-- position (1-based) with its state: 'raised' (publish it), 'suppressed'
-- (inside its dedup window) or the state of the row an earlier copy of
-- the event left (a redelivery).
CREATE FUNCTION sluice_raise_alerts(p_alert_ids text[], p_rules text[], p_severities text[],
                                    p_sources text[], p_msg_ids text[], p_messages text[],
                                    p_dedup_keys text[], p_windows_s integer[],
                                    p_routing_keys text[])
RETURNS TABLE (n integer, state text) LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1 .. coalesce(array_length(p_alert_ids, 1), 0) LOOP
        n := i;
        state := sluice_raise_alert(p_alert_ids[i], p_rules[i], p_severities[i], p_sources[i],
                                    p_msg_ids[i], p_messages[i], p_dedup_keys[i], p_windows_s[i],
                                    p_routing_keys[i]);
        RETURN NEXT;
    END LOOP;
END $$;
