-- Every table 002_family creates, with its column count, and its keys.
SELECT 'table ' || t AS "check", count(c.column_name) = n AS passed,
       count(c.column_name) || ' of ' || n || ' columns' AS detail
FROM (VALUES ('child_profile_v2', 9)) AS e(t, n)
LEFT JOIN information_schema.columns c ON c.table_schema = 'public' AND c.table_name = e.t
GROUP BY t, n;

SELECT 'constraint ' || k AS "check",
       EXISTS (SELECT 1 FROM pg_constraint WHERE conname = k AND connamespace = 'public'::regnamespace) AS passed,
       coalesce((SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = k AND connamespace = 'public'::regnamespace), 'missing') AS detail
FROM unnest(ARRAY['child_profile_v2_account_id_fkey', 'child_profile_v2_name_check', 'child_profile_v2_birth_date_check']) AS k;
