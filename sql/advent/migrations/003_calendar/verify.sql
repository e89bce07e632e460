-- Every table 003_calendar creates, with its column count, and its keys.
SELECT 'table ' || t AS "check", count(c.column_name) = n AS passed,
       count(c.column_name) || ' of ' || n || ' columns' AS detail
FROM (VALUES ('advent_calendar_v2', 9), ('calendar_day_v2', 7)) AS e(t, n)
LEFT JOIN information_schema.columns c ON c.table_schema = 'public' AND c.table_name = e.t
GROUP BY t, n;

SELECT 'constraint ' || k AS "check",
       EXISTS (SELECT 1 FROM pg_constraint WHERE conname = k AND connamespace = 'public'::regnamespace) AS passed,
       coalesce((SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = k AND connamespace = 'public'::regnamespace), 'missing') AS detail
FROM unnest(ARRAY['advent_calendar_v2_child_year_key', 'calendar_day_v2_calendar_day_key', 'calendar_day_v2_day_number_check', 'calendar_day_v2_calendar_id_fkey']) AS k;
