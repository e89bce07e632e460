-- Drill checks for describe-it: every user has a progress row, and RLS is still on.
SELECT 'every user has a user_progress row' AS "check",
       NOT EXISTS (SELECT 1 FROM users u LEFT JOIN user_progress p ON p.user_id = u.id WHERE p.user_id IS NULL) AS passed,
       (SELECT count(*) FROM users) || ' users' AS detail;

SELECT 'row level security still enabled', bool_and(relrowsecurity), string_agg(relname, ', ' ORDER BY relname)
FROM pg_class WHERE oid IN ('user_api_keys'::regclass, 'user_progress'::regclass, 'export_history'::regclass);
