SELECT 'columns of ' || t AS "check", count(c.column_name) = n AS passed,
       count(c.column_name) || ' of ' || n || ' expected' AS detail
FROM (VALUES ('beta_users', 9), ('feedback_submissions', 11), ('testing_sessions', 9)) AS e(t, n)
LEFT JOIN information_schema.columns c ON c.table_schema = 'public' AND c.table_name = e.t
GROUP BY t, n;

SELECT 'index ' || i, to_regclass('public.' || i) IS NOT NULL, coalesce(pg_get_indexdef(to_regclass('public.' || i)), 'missing')
FROM unnest(ARRAY['idx_beta_users_user_id', 'idx_beta_users_tier', 'idx_beta_users_status',
                  'idx_feedback_submissions_user_id', 'idx_feedback_submissions_feature',
                  'idx_feedback_submissions_rating', 'idx_feedback_submissions_created',
                  'idx_testing_sessions_user_id', 'idx_testing_sessions_feature',
                  'idx_testing_sessions_start_time']) AS i;

SELECT 'check ' || t || '.' || col || ' in 1..5',
       EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conrelid = to_regclass('public.' || t) AND k.contype = 'c'
               AND pg_get_constraintdef(k.oid) LIKE '%' || col || ' >= 1%' || col || ' <= 5%'),
       'CHECK (' || col || ' >= 1 AND ' || col || ' <= 5)'
FROM (VALUES ('feedback_submissions', 'rating'), ('testing_sessions', 'satisfaction')) AS k(t, col);

SELECT 'foreign key ' || t || '.user_id -> users ON DELETE CASCADE',
       EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conrelid = to_regclass('public.' || t) AND k.contype = 'f'
               AND k.confrelid = to_regclass('public.users') AND k.confdeltype = 'c'),
       'REFERENCES users(id) ON DELETE CASCADE'
FROM unnest(ARRAY['beta_users', 'feedback_submissions', 'testing_sessions']) AS t;
