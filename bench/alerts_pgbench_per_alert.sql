-- pgbench script: the same ten alerts as bench/alerts_pgbench.sql the way sluice handled them
-- before sql/009 (the functions are still there): one alert at a time.
--   pgbench -n -r -M prepared -f bench/alerts_pgbench_per_alert.sql -T 12 "$SLUICE_PG_DSN"
\set b random(1, 1000000000)
SELECT count(sluice_raise_alert('x'||:b||'-'||g, 'r', 'info', 's', 'x'||:b||'-'||g, 'm', '', 0, 'rk')) FROM generate_series(1,10) g;
BEGIN;
SELECT sluice_plan_alert('x'||:b||'-1', 'r', 'info', 's', 'm', 'log', '0', 'r');
SELECT sluice_plan_alert('x'||:b||'-2', 'r', 'info', 's', 'm', 'log', '0', 'r');
SELECT sluice_plan_alert('x'||:b||'-3', 'r', 'info', 's', 'm', 'log', '0', 'r');
SELECT sluice_plan_alert('x'||:b||'-4', 'r', 'info', 's', 'm', 'log', '0', 'r');
SELECT sluice_plan_alert('x'||:b||'-5', 'r', 'info', 's', 'm', 'log', '0', 'r');
SELECT sluice_plan_alert('x'||:b||'-6', 'r', 'info', 's', 'm', 'log', '0', 'r');
SELECT sluice_plan_alert('x'||:b||'-7', 'r', 'info', 's', 'm', 'log', '0', 'r');
SELECT sluice_plan_alert('x'||:b||'-8', 'r', 'info', 's', 'm', 'log', '0', 'r');
SELECT sluice_plan_alert('x'||:b||'-9', 'r', 'info', 's', 'm', 'log', '0', 'r');
SELECT sluice_plan_alert('x'||:b||'-10', 'r', 'info', 's', 'm', 'log', '0', 'r');
COMMIT;
SELECT sluice_claim_next('log') AS id \gset
SELECT count(*) FROM (SELECT a.alert_id, a.rule, a.severity, a.source, a.msg_id, a.message, a.dedup_key, (extract(epoch FROM a.raised_at) * 1000000)::bigint, m.group_key, m.alerts, m.parts_sent, extract(epoch FROM max(a.raised_at) OVER () - min(a.raised_at) OVER ()) FROM alert_messages m JOIN alert_deliveries d ON d.message_id = m.id JOIN alerts a USING (alert_id) WHERE m.id = :id ORDER BY d.severity_rank DESC, d.planned_at, d.alert_id LIMIT 100 OFFSET 0) s;
SELECT sluice_record_message(:id, 'sent', NULL, 1, 1);
SELECT sluice_claim_next('log') AS id \gset
SELECT count(*) FROM (SELECT a.alert_id, a.rule, a.severity, a.source, a.msg_id, a.message, a.dedup_key, (extract(epoch FROM a.raised_at) * 1000000)::bigint, m.group_key, m.alerts, m.parts_sent, extract(epoch FROM max(a.raised_at) OVER () - min(a.raised_at) OVER ()) FROM alert_messages m JOIN alert_deliveries d ON d.message_id = m.id JOIN alerts a USING (alert_id) WHERE m.id = :id ORDER BY d.severity_rank DESC, d.planned_at, d.alert_id LIMIT 100 OFFSET 0) s;
SELECT sluice_record_message(:id, 'sent', NULL, 1, 1);
SELECT sluice_claim_next('log') AS id \gset
SELECT count(*) FROM (SELECT a.alert_id, a.rule, a.severity, a.source, a.msg_id, a.message, a.dedup_key, (extract(epoch FROM a.raised_at) * 1000000)::bigint, m.group_key, m.alerts, m.parts_sent, extract(epoch FROM max(a.raised_at) OVER () - min(a.raised_at) OVER ()) FROM alert_messages m JOIN alert_deliveries d ON d.message_id = m.id JOIN alerts a USING (alert_id) WHERE m.id = :id ORDER BY d.severity_rank DESC, d.planned_at, d.alert_id LIMIT 100 OFFSET 0) s;
SELECT sluice_record_message(:id, 'sent', NULL, 1, 1);
SELECT sluice_claim_next('log') AS id \gset
SELECT count(*) FROM (SELECT a.alert_id, a.rule, a.severity, a.source, a.msg_id, a.message, a.dedup_key, (extract(epoch FROM a.raised_at) * 1000000)::bigint, m.group_key, m.alerts, m.parts_sent, extract(epoch FROM max(a.raised_at) OVER () - min(a.raised_at) OVER ()) FROM alert_messages m JOIN alert_deliveries d ON d.message_id = m.id JOIN alerts a USING (alert_id) WHERE m.id = :id ORDER BY d.severity_rank DESC, d.planned_at, d.alert_id LIMIT 100 OFFSET 0) s;
SELECT sluice_record_message(:id, 'sent', NULL, 1, 1);
SELECT sluice_claim_next('log') AS id \gset
SELECT count(*) FROM (SELECT a.alert_id, a.rule, a.severity, a.source, a.msg_id, a.message, a.dedup_key, (extract(epoch FROM a.raised_at) * 1000000)::bigint, m.group_key, m.alerts, m.parts_sent, extract(epoch FROM max(a.raised_at) OVER () - min(a.raised_at) OVER ()) FROM alert_messages m JOIN alert_deliveries d ON d.message_id = m.id JOIN alerts a USING (alert_id) WHERE m.id = :id ORDER BY d.severity_rank DESC, d.planned_at, d.alert_id LIMIT 100 OFFSET 0) s;
SELECT sluice_record_message(:id, 'sent', NULL, 1, 1);
SELECT sluice_claim_next('log') AS id \gset
SELECT count(*) FROM (SELECT a.alert_id, a.rule, a.severity, a.source, a.msg_id, a.message, a.dedup_key, (extract(epoch FROM a.raised_at) * 1000000)::bigint, m.group_key, m.alerts, m.parts_sent, extract(epoch FROM max(a.raised_at) OVER () - min(a.raised_at) OVER ()) FROM alert_messages m JOIN alert_deliveries d ON d.message_id = m.id JOIN alerts a USING (alert_id) WHERE m.id = :id ORDER BY d.severity_rank DESC, d.planned_at, d.alert_id LIMIT 100 OFFSET 0) s;
SELECT sluice_record_message(:id, 'sent', NULL, 1, 1);
SELECT sluice_claim_next('log') AS id \gset
SELECT count(*) FROM (SELECT a.alert_id, a.rule, a.severity, a.source, a.msg_id, a.message, a.dedup_key, (extract(epoch FROM a.raised_at) * 1000000)::bigint, m.group_key, m.alerts, m.parts_sent, extract(epoch FROM max(a.raised_at) OVER () - min(a.raised_at) OVER ()) FROM alert_messages m JOIN alert_deliveries d ON d.message_id = m.id JOIN alerts a USING (alert_id) WHERE m.id = :id ORDER BY d.severity_rank DESC, d.planned_at, d.alert_id LIMIT 100 OFFSET 0) s;
SELECT sluice_record_message(:id, 'sent', NULL, 1, 1);
SELECT sluice_claim_next('log') AS id \gset
SELECT count(*) FROM (SELECT a.alert_id, a.rule, a.severity, a.source, a.msg_id, a.message, a.dedup_key, (extract(epoch FROM a.raised_at) * 1000000)::bigint, m.group_key, m.alerts, m.parts_sent, extract(epoch FROM max(a.raised_at) OVER () - min(a.raised_at) OVER ()) FROM alert_messages m JOIN alert_deliveries d ON d.message_id = m.id JOIN alerts a USING (alert_id) WHERE m.id = :id ORDER BY d.severity_rank DESC, d.planned_at, d.alert_id LIMIT 100 OFFSET 0) s;
SELECT sluice_record_message(:id, 'sent', NULL, 1, 1);
SELECT sluice_claim_next('log') AS id \gset
SELECT count(*) FROM (SELECT a.alert_id, a.rule, a.severity, a.source, a.msg_id, a.message, a.dedup_key, (extract(epoch FROM a.raised_at) * 1000000)::bigint, m.group_key, m.alerts, m.parts_sent, extract(epoch FROM max(a.raised_at) OVER () - min(a.raised_at) OVER ()) FROM alert_messages m JOIN alert_deliveries d ON d.message_id = m.id JOIN alerts a USING (alert_id) WHERE m.id = :id ORDER BY d.severity_rank DESC, d.planned_at, d.alert_id LIMIT 100 OFFSET 0) s;
SELECT sluice_record_message(:id, 'sent', NULL, 1, 1);
SELECT sluice_claim_next('log') AS id \gset
SELECT count(*) FROM (SELECT a.alert_id, a.rule, a.severity, a.source, a.msg_id, a.message, a.dedup_key, (extract(epoch FROM a.raised_at) * 1000000)::bigint, m.group_key, m.alerts, m.parts_sent, extract(epoch FROM max(a.raised_at) OVER () - min(a.raised_at) OVER ()) FROM alert_messages m JOIN alert_deliveries d ON d.message_id = m.id JOIN alerts a USING (alert_id) WHERE m.id = :id ORDER BY d.severity_rank DESC, d.planned_at, d.alert_id LIMIT 100 OFFSET 0) s;
SELECT sluice_record_message(:id, 'sent', NULL, 1, 1);
