-- After the contract no legacy table is left, and every v2 table is still there.
SELECT 'legacy table ' || t || ' dropped' AS "check", to_regclass('public.' || t) IS NULL AS passed,
       CASE WHEN to_regclass('public.' || t) IS NULL THEN 'absent' ELSE 'still present' END AS detail
FROM unnest(ARRAY['account', 'child', 'calendar', 'calendar_day', 'chat_record', 'chat_message',
                  'surprise_config', 'analytics_event']) AS t;
