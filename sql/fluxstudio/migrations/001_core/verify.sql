-- Every object 001_core creates, one named pass/fail row each (check, passed, detail).
SELECT 'table ' || t AS "check", to_regclass('public.' || t) IS NOT NULL AS passed,
       coalesce((SELECT count(*) FROM information_schema.columns c
                 WHERE c.table_schema = 'public' AND c.table_name = t) || ' columns', 'missing') AS detail
FROM unnest(ARRAY['users', 'organizations', 'organization_members', 'teams', 'team_members', 'projects']) AS t;

SELECT 'columns of ' || t, count(c.column_name) = n, count(c.column_name) || ' of ' || n || ' expected'
FROM (VALUES ('users', 16), ('organizations', 12), ('organization_members', 7), ('teams', 7), ('team_members', 6), ('projects', 18)) AS e(t, n)
LEFT JOIN information_schema.columns c ON c.table_schema = 'public' AND c.table_name = e.t
GROUP BY t, n;

SELECT 'index ' || i, to_regclass('public.' || i) IS NOT NULL, coalesce(pg_get_indexdef(to_regclass('public.' || i)), 'missing')
FROM unnest(ARRAY['idx_users_user_type', 'idx_users_created_at', 'idx_organizations_created_by',
                  'idx_organization_members_user_id', 'idx_teams_lead_id', 'idx_team_members_user_id',
                  'idx_projects_team_id', 'idx_projects_manager_id', 'idx_projects_client_id',
                  'idx_projects_status']) AS i;

SELECT 'constraints of ' || k.label, count(c.oid) = k.n, count(c.oid) || ' of ' || k.n || ' expected'
FROM (VALUES ('foreign keys', 'f', 12), ('unique constraints', 'u', 7), ('check constraints', 'c', 8)) AS k(label, type, n)
LEFT JOIN pg_constraint c ON c.contype = k.type::"char"
     AND c.conrelid IN (SELECT to_regclass('public.' || t) FROM unnest(ARRAY['users', 'organizations', 'organization_members', 'teams', 'team_members', 'projects']) AS t)
GROUP BY k.label, k.n;
