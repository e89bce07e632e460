-- The eight legacy tables of seed 004.
SELECT 'legacy table ' || t AS "check", to_regclass('public.' || t) IS NOT NULL AS passed,
       coalesce((SELECT count(*) FROM information_schema.columns c
                 WHERE c.table_schema = 'public' AND c.table_name = t) || ' columns', 'missing') AS detail
FROM unnest(ARRAY['account', 'child', 'calendar', 'calendar_day', 'chat_record', 'chat_message',
                  'surprise_config', 'analytics_event']) AS t;
