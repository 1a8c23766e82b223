-- pgbench script: ten alerts through PostgreSQL as sluice handles them since sql/009
-- (README, Performance, "Rules"): the worker records them (one statement in its batch's
-- transaction), the notifier plans them (one statement), the log claims them as one message,
-- loads it and records its outcome. Each line is its own transaction, as in sluice.
--   pgbench -n -r -M prepared -f bench/alerts_pgbench.sql -T 12 "$SLUICE_PG_DSN"
-- on a scratch database made by sluice-setup (it writes alerts and deliveries).
\set b random(1, 1000000000)
SELECT count(*) FROM sluice_raise_alerts(ARRAY(SELECT 'x'||:b||'-'||g FROM generate_series(1,10) g), array_fill('r'::text, ARRAY[10]), array_fill('info'::text, ARRAY[10]), array_fill('s'::text, ARRAY[10]), ARRAY(SELECT 'x'||:b||'-'||g FROM generate_series(1,10) g), array_fill('m'::text, ARRAY[10]), array_fill(''::text, ARRAY[10]), array_fill(0, ARRAY[10]), array_fill('rk'::text, ARRAY[10]));
SELECT count(*) FROM sluice_plan_alerts(ARRAY(SELECT 'x'||:b||'-'||g FROM generate_series(1,10) g), array_fill('r'::text, ARRAY[10]), array_fill('info'::text, ARRAY[10]), array_fill('s'::text, ARRAY[10]), array_fill('m'::text, ARRAY[10]), array_fill('log'::text, ARRAY[10]), array_fill('0'::text, ARRAY[10]), array_fill('r'::text, ARRAY[10]));
SELECT sluice_claim_many('log', 10) AS id \gset
SELECT count(*) FROM (SELECT a.alert_id, a.rule, a.severity, a.source, a.msg_id, a.message, a.dedup_key, (extract(epoch FROM a.raised_at) * 1000000)::bigint, m.group_key, m.alerts, m.parts_sent, extract(epoch FROM max(a.raised_at) OVER () - min(a.raised_at) OVER ()) FROM alert_messages m JOIN alert_deliveries d ON d.message_id = m.id JOIN alerts a USING (alert_id) WHERE m.id = :id ORDER BY d.severity_rank DESC, d.planned_at, d.alert_id LIMIT 100 OFFSET 0) s;
SELECT sluice_record_message(:id, 'sent', NULL, 10, 10);
