-- Every table 001_identity_access creates, with its column count, and its keys.
SELECT 'table ' || t AS "check", count(c.column_name) = n AS passed,
       count(c.column_name) || ' of ' || n || ' columns' AS detail
FROM (VALUES ('account_v2', 9), ('account_session', 8)) AS e(t, n)
LEFT JOIN information_schema.columns c ON c.table_schema = 'public' AND c.table_name = e.t
GROUP BY t, n;

SELECT 'constraint ' || k AS "check",
       EXISTS (SELECT 1 FROM pg_constraint WHERE conname = k AND connamespace = 'public'::regnamespace) AS passed,
       coalesce((SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = k AND connamespace = 'public'::regnamespace), 'missing') AS detail
FROM unnest(ARRAY['account_v2_email_key', 'account_v2_email_format', 'account_session_account_id_fkey', 'account_session_token_hash_key']) AS k;
