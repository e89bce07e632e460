-- The eight legacy tables of seed 004 — until the contract migration (007) has dropped them.
SELECT 'legacy table ' || t AS "check",
       to_regclass('public.' || t) IS NOT NULL OR contracted AS passed,
       CASE WHEN to_regclass('public.' || t) IS NOT NULL
            THEN (SELECT count(*) FROM information_schema.columns c
                  WHERE c.table_schema = 'public' AND c.table_name = t) || ' columns'
            WHEN contracted THEN 'dropped by 007_contract_drop_legacy'
            ELSE 'missing' END AS detail
FROM unnest(ARRAY['account', 'child', 'calendar', 'calendar_day', 'chat_record', 'chat_message',
                  'surprise_config', 'analytics_event']) AS t,
     (SELECT EXISTS (SELECT 1 FROM pgops.migrations WHERE version = 7) AS contracted) AS c;
