-- Every object 003_files creates, one named pass/fail row each (check, passed, detail).
SELECT 'table ' || t AS "check", to_regclass('public.' || t) IS NOT NULL AS passed,
       coalesce((SELECT count(*) FROM information_schema.columns c
                 WHERE c.table_schema = 'public' AND c.table_name = t) || ' columns', 'missing') AS detail
FROM unnest(ARRAY['project_members', 'project_milestones', 'files', 'file_permissions']) AS t;

SELECT 'columns of ' || t, count(c.column_name) = n, count(c.column_name) || ' of ' || n || ' expected'
FROM (VALUES ('project_members', 6), ('project_milestones', 9), ('files', 14), ('file_permissions', 8)) AS e(t, n)
LEFT JOIN information_schema.columns c ON c.table_schema = 'public' AND c.table_name = e.t
GROUP BY t, n;

SELECT 'index ' || i, to_regclass('public.' || i) IS NOT NULL, coalesce(pg_get_indexdef(to_regclass('public.' || i)), 'missing')
FROM unnest(ARRAY['idx_project_members_user_id', 'idx_project_milestones_project_due', 'idx_files_project_id',
                  'idx_files_uploaded_by', 'idx_files_previous_version_id', 'idx_files_one_current_version',
                  'idx_file_permissions_file_user', 'idx_file_permissions_file_team', 'idx_file_permissions_user_id',
                  'idx_file_permissions_team_id']) AS i;

SELECT 'constraints of ' || k.label, count(c.oid) = k.n, count(c.oid) || ' of ' || k.n || ' expected'
FROM (VALUES ('foreign keys', 'f', 10), ('unique constraints', 'u', 2), ('check constraints', 'c', 7)) AS k(label, type, n)
LEFT JOIN pg_constraint c ON c.contype = k.type::"char"
     AND c.conrelid IN (SELECT to_regclass('public.' || t) FROM unnest(ARRAY['project_members', 'project_milestones', 'files', 'file_permissions']) AS t)
GROUP BY k.label, k.n;
