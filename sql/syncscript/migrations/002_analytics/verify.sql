SELECT 'columns of ' || t AS "check", count(c.column_name) = n AS passed,
       count(c.column_name) || ' of ' || n || ' expected' AS detail
FROM (VALUES ('user_analytics', 12), ('energy_logs', 7), ('productivity_insights', 11)) AS e(t, n)
LEFT JOIN information_schema.columns c ON c.table_schema = 'public' AND c.table_name = e.t
GROUP BY t, n;

SELECT 'index ' || i, to_regclass('public.' || i) IS NOT NULL, coalesce(pg_get_indexdef(to_regclass('public.' || i)), 'missing')
FROM unnest(ARRAY['idx_user_analytics_user_date', 'idx_user_analytics_date', 'idx_user_analytics_productivity',
                  'idx_energy_logs_user_id', 'idx_energy_logs_logged_at', 'idx_energy_logs_energy_level',
                  'idx_productivity_insights_user_id', 'idx_productivity_insights_type',
                  'idx_productivity_insights_created']) AS i;

SELECT 'unique user_analytics(user_id, date)',
       EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conrelid = to_regclass('public.user_analytics') AND k.contype = 'u'
               AND pg_get_constraintdef(k.oid) = 'UNIQUE (user_id, date)'),
       'one analytics row per user per day';

SELECT 'check energy_logs.energy_level in 0..10',
       EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conrelid = to_regclass('public.energy_logs') AND k.contype = 'c'
               AND pg_get_constraintdef(k.oid) LIKE '%energy_level >= 0%energy_level <= 10%'),
       'CHECK (energy_level >= 0 AND energy_level <= 10)';

SELECT 'foreign key ' || t || '.user_id -> users ON DELETE CASCADE',
       EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conrelid = to_regclass('public.' || t) AND k.contype = 'f'
               AND k.confrelid = to_regclass('public.users') AND k.confdeltype = 'c'),
       'REFERENCES users(id) ON DELETE CASCADE'
FROM unnest(ARRAY['user_analytics', 'energy_logs', 'productivity_insights']) AS t;
