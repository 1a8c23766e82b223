-- pgbench script: the same ten alerts as bench/alerts_pgbench.sql one alert at a time, the way
-- sluice handled them before sql/009: a call per alert to record it, plan it and claim it (with
-- today's batch functions given one alert per call; the per-alert functions of that time,
-- sluice_raise_alert, sluice_plan_alert and sluice_claim_next, were dropped by sql/010, so
-- figures measured with them are not reproduced exactly). What it shows is what batching saves.
--   pgbench -n -r -M prepared -f bench/alerts_pgbench_per_alert.sql -T 12 "$SLUICE_PG_DSN"
\set b random(1, 1000000000)
SELECT count(*) FROM generate_series(1,10) g, sluice_raise_alerts(ARRAY['x'||:b||'-'||g], ARRAY['r'], ARRAY['info'], ARRAY['s'], ARRAY['x'||:b||'-'||g], ARRAY['m'], ARRAY[''], ARRAY[0], ARRAY['rk']);
BEGIN;
SELECT count(*) FROM sluice_plan_alerts(ARRAY['x'||:b||'-1'], ARRAY['r'], ARRAY['info'], ARRAY['s'], ARRAY['m'], ARRAY['log'], ARRAY['0'], ARRAY['r']);
SELECT count(*) FROM sluice_plan_alerts(ARRAY['x'||:b||'-2'], ARRAY['r'], ARRAY['info'], ARRAY['s'], ARRAY['m'], ARRAY['log'], ARRAY['0'], ARRAY['r']);
SELECT count(*) FROM sluice_plan_alerts(ARRAY['x'||:b||'-3'], ARRAY['r'], ARRAY['info'], ARRAY['s'], ARRAY['m'], ARRAY['log'], ARRAY['0'], ARRAY['r']);
SELECT count(*) FROM sluice_plan_alerts(ARRAY['x'||:b||'-4'], ARRAY['r'], ARRAY['info'], ARRAY['s'], ARRAY['m'], ARRAY['log'], ARRAY['0'], ARRAY['r']);
SELECT count(*) FROM sluice_plan_alerts(ARRAY['x'||:b||'-5'], ARRAY['r'], ARRAY['info'], ARRAY['s'], ARRAY['m'], ARRAY['log'], ARRAY['0'], ARRAY['r']);
SELECT count(*) FROM sluice_plan_alerts(ARRAY['x'||:b||'-6'], ARRAY['r'], ARRAY['info'], ARRAY['s'], ARRAY['m'], ARRAY['log'], ARRAY['0'], ARRAY['r']);
SELECT count(*) FROM sluice_plan_alerts(ARRAY['x'||:b||'-7'], ARRAY['r'], ARRAY['info'], ARRAY['s'], ARRAY['m'], ARRAY['log'], ARRAY['0'], ARRAY['r']);
SELECT count(*) FROM sluice_plan_alerts(ARRAY['x'||:b||'-8'], ARRAY['r'], ARRAY['info'], ARRAY['s'], ARRAY['m'], ARRAY['log'], ARRAY['0'], ARRAY['r']);
SELECT count(*) FROM sluice_plan_alerts(ARRAY['x'||:b||'-9'], ARRAY['r'], ARRAY['info'], ARRAY['s'], ARRAY['m'], ARRAY['log'], ARRAY['0'], ARRAY['r']);
SELECT count(*) FROM sluice_plan_alerts(ARRAY['x'||:b||'-10'], ARRAY['r'], ARRAY['info'], ARRAY['s'], ARRAY['m'], ARRAY['log'], ARRAY['0'], ARRAY['r']);
COMMIT;
SELECT sluice_claim_many('log', 1) AS id \gset
SELECT count(*) FROM (SELECT a.alert_id, a.rule, a.severity, a.source, a.msg_id, a.message, a.dedup_key, (extract(epoch FROM a.raised_at) * 1000000)::bigint, m.group_key, m.alerts, m.parts_sent, extract(epoch FROM max(a.raised_at) OVER () - min(a.raised_at) OVER ()) FROM alert_messages m JOIN alert_deliveries d ON d.message_id = m.id JOIN alerts a USING (alert_id) WHERE m.id = :id ORDER BY d.severity_rank DESC, d.planned_at, d.alert_id LIMIT 100 OFFSET 0) s;
SELECT sluice_record_message(:id, 'sent', NULL, 1, 1);
SELECT sluice_claim_many('log', 1) AS id \gset
SELECT count(*) FROM (SELECT a.alert_id, a.rule, a.severity, a.source, a.msg_id, a.message, a.dedup_key, (extract(epoch FROM a.raised_at) * 1000000)::bigint, m.group_key, m.alerts, m.parts_sent, extract(epoch FROM max(a.raised_at) OVER () - min(a.raised_at) OVER ()) FROM alert_messages m JOIN alert_deliveries d ON d.message_id = m.id JOIN alerts a USING (alert_id) WHERE m.id = :id ORDER BY d.severity_rank DESC, d.planned_at, d.alert_id LIMIT 100 OFFSET 0) s;
SELECT sluice_record_message(:id, 'sent', NULL, 1, 1);
SELECT sluice_claim_many('log', 1) AS id \gset
SELECT count(*) FROM (SELECT a.alert_id, a.rule, a.severity, a.source, a.msg_id, a.message, a.dedup_key, (extract(epoch FROM a.raised_at) * 1000000)::bigint, m.group_key, m.alerts, m.parts_sent, extract(epoch FROM max(a.raised_at) OVER () - min(a.raised_at) OVER ()) FROM alert_messages m JOIN alert_deliveries d ON d.message_id = m.id JOIN alerts a USING (alert_id) WHERE m.id = :id ORDER BY d.severity_rank DESC, d.planned_at, d.alert_id LIMIT 100 OFFSET 0) s;
SELECT sluice_record_message(:id, 'sent', NULL, 1, 1);
SELECT sluice_claim_many('log', 1) AS id \gset
SELECT count(*) FROM (SELECT a.alert_id, a.rule, a.severity, a.source, a.msg_id, a.message, a.dedup_key, (extract(epoch FROM a.raised_at) * 1000000)::bigint, m.group_key, m.alerts, m.parts_sent, extract(epoch FROM max(a.raised_at) OVER () - min(a.raised_at) OVER ()) FROM alert_messages m JOIN alert_deliveries d ON d.message_id = m.id JOIN alerts a USING (alert_id) WHERE m.id = :id ORDER BY d.severity_rank DESC, d.planned_at, d.alert_id LIMIT 100 OFFSET 0) s;
SELECT sluice_record_message(:id, 'sent', NULL, 1, 1);
SELECT sluice_claim_many('log', 1) AS id \gset
SELECT count(*) FROM (SELECT a.alert_id, a.rule, a.severity, a.source, a.msg_id, a.message, a.dedup_key, (extract(epoch FROM a.raised_at) * 1000000)::bigint, m.group_key, m.alerts, m.parts_sent, extract(epoch FROM max(a.raised_at) OVER () - min(a.raised_at) OVER ()) FROM alert_messages m JOIN alert_deliveries d ON d.message_id = m.id JOIN alerts a USING (alert_id) WHERE m.id = :id ORDER BY d.severity_rank DESC, d.planned_at, d.alert_id LIMIT 100 OFFSET 0) s;
SELECT sluice_record_message(:id, 'sent', NULL, 1, 1);
SELECT sluice_claim_many('log', 1) AS id \gset
SELECT count(*) FROM (SELECT a.alert_id, a.rule, a.severity, a.source, a.msg_id, a.message, a.dedup_key, (extract(epoch FROM a.raised_at) * 1000000)::bigint, m.group_key, m.alerts, m.parts_sent, extract(epoch FROM max(a.raised_at) OVER () - min(a.raised_at) OVER ()) FROM alert_messages m JOIN alert_deliveries d ON d.message_id = m.id JOIN alerts a USING (alert_id) WHERE m.id = :id ORDER BY d.severity_rank DESC, d.planned_at, d.alert_id LIMIT 100 OFFSET 0) s;
SELECT sluice_record_message(:id, 'sent', NULL, 1, 1);
SELECT sluice_claim_many('log', 1) AS id \gset
SELECT count(*) FROM (SELECT a.alert_id, a.rule, a.severity, a.source, a.msg_id, a.message, a.dedup_key, (extract(epoch FROM a.raised_at) * 1000000)::bigint, m.group_key, m.alerts, m.parts_sent, extract(epoch FROM max(a.raised_at) OVER () - min(a.raised_at) OVER ()) FROM alert_messages m JOIN alert_deliveries d ON d.message_id = m.id JOIN alerts a USING (alert_id) WHERE m.id = :id ORDER BY d.severity_rank DESC, d.planned_at, d.alert_id LIMIT 100 OFFSET 0) s;
SELECT sluice_record_message(:id, 'sent', NULL, 1, 1);
SELECT sluice_claim_many('log', 1) AS id \gset
SELECT count(*) FROM (SELECT a.alert_id, a.rule, a.severity, a.source, a.msg_id, a.message, a.dedup_key, (extract(epoch FROM a.raised_at) * 1000000)::bigint, m.group_key, m.alerts, m.parts_sent, extract(epoch FROM max(a.raised_at) OVER () - min(a.raised_at) OVER ()) FROM alert_messages m JOIN alert_deliveries d ON d.message_id = m.id JOIN alerts a USING (alert_id) WHERE m.id = :id ORDER BY d.severity_rank DESC, d.planned_at, d.alert_id LIMIT 100 OFFSET 0) s;
SELECT sluice_record_message(:id, 'sent', NULL, 1, 1);
SELECT sluice_claim_many('log', 1) AS id \gset
SELECT count(*) FROM (SELECT a.alert_id, a.rule, a.severity, a.source, a.msg_id, a.message, a.dedup_key, (extract(epoch FROM a.raised_at) * 1000000)::bigint, m.group_key, m.alerts, m.parts_sent, extract(epoch FROM max(a.raised_at) OVER () - min(a.raised_at) OVER ()) FROM alert_messages m JOIN alert_deliveries d ON d.message_id = m.id JOIN alerts a USING (alert_id) WHERE m.id = :id ORDER BY d.severity_rank DESC, d.planned_at, d.alert_id LIMIT 100 OFFSET 0) s;
SELECT sluice_record_message(:id, 'sent', NULL, 1, 1);
SELECT sluice_claim_many('log', 1) AS id \gset
SELECT count(*) FROM (SELECT a.alert_id, a.rule, a.severity, a.source, a.msg_id, a.message, a.dedup_key, (extract(epoch FROM a.raised_at) * 1000000)::bigint, m.group_key, m.alerts, m.parts_sent, extract(epoch FROM max(a.raised_at) OVER () - min(a.raised_at) OVER ()) FROM alert_messages m JOIN alert_deliveries d ON d.message_id = m.id JOIN alerts a USING (alert_id) WHERE m.id = :id ORDER BY d.severity_rank DESC, d.planned_at, d.alert_id LIMIT 100 OFFSET 0) s;
SELECT sluice_record_message(:id, 'sent', NULL, 1, 1);
