SELECT 'columns of ' || t AS "check", count(c.column_name) = n AS passed,
       count(c.column_name) || ' of ' || n || ' expected' AS detail
FROM (VALUES ('briefing_settings', 12), ('briefing_history', 7)) AS e(t, n)
LEFT JOIN information_schema.columns c ON c.table_schema = 'public' AND c.table_name = e.t
GROUP BY t, n;

SELECT 'index ' || i, to_regclass('public.' || i) IS NOT NULL, coalesce(pg_get_indexdef(to_regclass('public.' || i)), 'missing')
FROM unnest(ARRAY['idx_briefing_settings_user_id', 'idx_briefing_history_user_id', 'idx_briefing_history_type',
                  'idx_briefing_history_generated']) AS i;

SELECT 'default briefing_settings.' || col,
       EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'briefing_settings'
               AND column_name = col AND column_default LIKE '''' || val || '%'),
       'DEFAULT ' || val
FROM (VALUES ('morning_time', '08:00'), ('evening_time', '18:00'), ('tone', 'professional'), ('frequency', 'daily')) AS d(col, val);

SELECT 'foreign key ' || t || '.user_id -> users ON DELETE CASCADE',
       EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conrelid = to_regclass('public.' || t) AND k.contype = 'f'
               AND k.confrelid = to_regclass('public.users') AND k.confdeltype = 'c'),
       'REFERENCES users(id) ON DELETE CASCADE'
FROM unnest(ARRAY['briefing_settings', 'briefing_history']) AS t;
