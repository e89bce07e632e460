SELECT 'columns of ' || t AS "check", count(c.column_name) = n AS passed,
       count(c.column_name) || ' of ' || n || ' expected' AS detail
FROM (VALUES ('projects', 9), ('tasks', 19)) AS e(t, n)
LEFT JOIN information_schema.columns c ON c.table_schema = 'public' AND c.table_name = e.t
GROUP BY t, n;

SELECT 'index ' || i, to_regclass('public.' || i) IS NOT NULL, coalesce(pg_get_indexdef(to_regclass('public.' || i)), 'missing')
FROM unnest(ARRAY['idx_projects_user_id', 'idx_projects_status', 'idx_tasks_user_id', 'idx_tasks_project_id',
                  'idx_tasks_completed', 'idx_tasks_due_date', 'idx_tasks_priority',
                  'idx_tasks_energy_requirement']) AS i;

SELECT 'foreign key tasks.project_id -> projects ON DELETE SET NULL',
       EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conrelid = to_regclass('public.tasks') AND k.contype = 'f'
               AND k.confrelid = to_regclass('public.projects') AND k.confdeltype = 'n'),
       'REFERENCES projects(id) ON DELETE SET NULL';

SELECT 'foreign key ' || t || '.user_id -> users ON DELETE CASCADE',
       EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conrelid = to_regclass('public.' || t) AND k.contype = 'f'
               AND k.confrelid = to_regclass('public.users') AND k.confdeltype = 'c'),
       'REFERENCES users(id) ON DELETE CASCADE'
FROM unnest(ARRAY['projects', 'tasks']) AS t;

SELECT 'check tasks.' || col || ' in 1..5',
       EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conrelid = to_regclass('public.tasks') AND k.contype = 'c'
               AND pg_get_constraintdef(k.oid) LIKE '%' || col || ' >= 1%' || col || ' <= 5%'),
       'CHECK (' || col || ' >= 1 AND ' || col || ' <= 5)'
FROM unnest(ARRAY['priority', 'energy_requirement']) AS col;
