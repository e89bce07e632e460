-- Every object 001 creates, one named pass/fail row each.
SELECT 'table ' || t AS "check", to_regclass('public.' || t) IS NOT NULL AS passed,
       coalesce((SELECT count(*) FROM information_schema.columns c
                 WHERE c.table_schema = 'public' AND c.table_name = t) || ' columns', 'missing') AS detail
FROM unnest(ARRAY['users', 'user_sessions']) AS t;

SELECT 'columns of ' || t, count(c.column_name) = n, count(c.column_name) || ' of ' || n || ' expected'
FROM (VALUES ('users', 16), ('user_sessions', 8)) AS e(t, n)
LEFT JOIN information_schema.columns c ON c.table_schema = 'public' AND c.table_name = e.t
GROUP BY t, n;

SELECT 'index ' || i, to_regclass('public.' || i) IS NOT NULL, coalesce(pg_get_indexdef(to_regclass('public.' || i)), 'missing')
FROM unnest(ARRAY['idx_users_auth0_id', 'idx_users_email', 'idx_users_beta_user', 'idx_users_last_active',
                  'idx_user_sessions_user_id', 'idx_user_sessions_token', 'idx_user_sessions_expires']) AS i;

SELECT 'unique ' || t || '(' || col || ')',
       EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conrelid = to_regclass('public.' || t) AND k.contype = 'u'
               AND pg_get_constraintdef(k.oid) = 'UNIQUE (' || col || ')'),
       'UNIQUE constraint'
FROM (VALUES ('users', 'auth0_id'), ('users', 'email'), ('user_sessions', 'session_token')) AS u(t, col);

SELECT 'foreign key user_sessions.user_id -> users ON DELETE CASCADE',
       EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conrelid = to_regclass('public.user_sessions') AND k.contype = 'f'
               AND k.confrelid = to_regclass('public.users') AND k.confdeltype = 'c'),
       'REFERENCES users(id) ON DELETE CASCADE';
