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

-- The functions that look alerts up by alert_id cannot prune partitions
-- (alerts is partitioned by raised_at), so planning each statement covers
-- every partition, and with the correlated subqueries of the state
-- derivation that planning was most of the cost: about 2 ms of server CPU
-- per call of sluice_derive_alert_states with nine daily partitions, where
-- executing it takes tens of microseconds. A generic plan is made once per
-- session and kept. sluice_derive_alert_states becomes plpgsql for that (a
-- plain SQL function is planned again at every call); its body is as in
-- sql/004.
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

ALTER FUNCTION sluice_raise_alert(text, text, text, text, text, text, text, integer, text)
    SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION sluice_plan_deliveries(text, text, text, text, text, text)
    SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION sluice_plan_alert(text, text, text, text, text, text, text, text)
    SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION sluice_claim_delivery(text, text) SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION sluice_record_delivery(text, text, text, text)
    SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION sluice_lock_alerts(text[]) SET plan_cache_mode = force_generic_plan;
