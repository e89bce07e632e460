-- Seed 003's validation checklist (validate_001.sql), one named pass/fail row per check.
WITH t(name) AS (VALUES ('user_api_keys'), ('user_progress'), ('export_history'))
SELECT 'Tables Created' AS "check", count(to_regclass('public.' || name)) = 3 AS passed,
       count(to_regclass('public.' || name)) || '/3' AS detail
FROM t;

SELECT 'RLS Enabled', count(*) FILTER (WHERE relrowsecurity) = 3, count(*) FILTER (WHERE relrowsecurity) || '/3'
FROM pg_class WHERE oid IN (to_regclass('public.user_api_keys'), to_regclass('public.user_progress'),
                            to_regclass('public.export_history'));

SELECT 'RLS Policies', count(*) = 12, count(*) || '/12'
FROM pg_policies WHERE schemaname = 'public' AND tablename IN ('user_api_keys', 'user_progress', 'export_history');

SELECT 'RLS Policy Coverage',
       bool_and(cmds @> want), string_agg(tablename || ':' || array_to_string(cmds, ','), ' ' ORDER BY tablename)
FROM (SELECT tablename, array_agg(DISTINCT cmd::text ORDER BY cmd::text) AS cmds,
             CASE tablename WHEN 'user_api_keys' THEN ARRAY['DELETE', 'INSERT', 'SELECT', 'UPDATE']
                            ELSE ARRAY['INSERT', 'SELECT', 'UPDATE'] END AS want
      FROM pg_policies WHERE schemaname = 'public'
       AND tablename IN ('user_api_keys', 'user_progress', 'export_history')
      GROUP BY tablename) p;

WITH i(name) AS (VALUES ('idx_user_api_keys_last_validated'), ('idx_user_progress_level'),
                        ('idx_user_progress_last_activity'), ('idx_export_history_user_id'),
                        ('idx_export_history_status'), ('idx_export_history_created_at'),
                        ('idx_export_history_expires_at'))
SELECT 'Indexes Created', count(to_regclass('public.' || name)) = 7, count(to_regclass('public.' || name)) || '/7'
FROM i;

SELECT 'Triggers Created', count(*) = 4, count(*) || '/4'
FROM pg_trigger WHERE NOT tgisinternal AND tgname IN ('trg_user_api_keys_updated_at', 'trg_user_progress_updated_at',
                                                      'trg_export_history_updated_at', 'trg_learning_sessions_progress');

SELECT 'Functions Created', count(*) = 4, count(*) || '/4'
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = 'public' AND p.proname IN ('describeit_current_user_id', 'set_updated_at', 'ensure_user_progress',
                                             'update_user_progress_on_session_complete');

SELECT 'Foreign Keys', count(*) = 3, count(*) || '/3'
FROM pg_constraint WHERE contype = 'f' AND confrelid = to_regclass('public.users') AND confdeltype = 'c'
 AND conrelid IN (to_regclass('public.user_api_keys'), to_regclass('public.user_progress'),
                  to_regclass('public.export_history'));

SELECT 'Unique Constraints', count(*) = 2, count(*) || '/2'
FROM pg_constraint WHERE contype = 'u' AND pg_get_constraintdef(oid) = 'UNIQUE (user_id)'
 AND conrelid IN (to_regclass('public.user_api_keys'), to_regclass('public.user_progress'));

SELECT 'Initial Data', (SELECT count(*) FROM user_progress) >= (SELECT count(*) FROM users),
       (SELECT count(*) FROM user_progress) || ' progress rows for ' || (SELECT count(*) FROM users) || ' users';

SELECT 'All columns present', bool_and(found = expected),
       string_agg(tbl || ' ' || found || '/' || expected, ', ' ORDER BY tbl)
FROM (SELECT e.tbl, e.expected, count(c.column_name) AS found
      FROM (VALUES ('user_api_keys', 8), ('user_progress', 25), ('export_history', 18)) AS e(tbl, expected)
      LEFT JOIN information_schema.columns c ON c.table_schema = 'public' AND c.table_name = e.tbl
      GROUP BY e.tbl, e.expected) x;
