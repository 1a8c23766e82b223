-- The functions nothing calls any more go. Each function now has one
-- definition, in sql/functions/; these are the ones that none of those
-- files, sluice's programs or its benchmark scripts use:
-- - sluice_text, sluice_number, sluice_bool: migration 002's conversions
--   for its normalisers (projections convert inline, or with the
--   functions of sql/functions/projections.sql);
-- - sluice_raise_alert, sluice_plan_deliveries, sluice_claim_delivery,
--   sluice_record_delivery: one alert or one delivery at a time, as before
--   the outbox (004) and the batch functions;
-- - sluice_plan_alert, sluice_claim_next: one alert at a time, replaced by
--   sluice_plan_alerts and sluice_claim_many (with p_max 1: a message of
--   one alert).
-- A fresh install never had them: IF EXISTS. A sluice-notifier or
-- sluice-worker older than 009's (one alert at a time) stops working on
-- this warehouse: upgrade the programs with the schema.
DROP FUNCTION IF EXISTS sluice_text(jsonb);
DROP FUNCTION IF EXISTS sluice_number(jsonb);
DROP FUNCTION IF EXISTS sluice_bool(jsonb);
DROP FUNCTION IF EXISTS sluice_raise_alert(text, text, text, text, text, text, text, integer,
                                           text);
DROP FUNCTION IF EXISTS sluice_plan_deliveries(text, text, text, text, text, text);
DROP FUNCTION IF EXISTS sluice_claim_delivery(text, text);
DROP FUNCTION IF EXISTS sluice_record_delivery(text, text, text, text);
DROP FUNCTION IF EXISTS sluice_plan_alert(text, text, text, text, text, text, text, text);
DROP FUNCTION IF EXISTS sluice_claim_next(text);
