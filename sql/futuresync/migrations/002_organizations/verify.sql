SELECT 'tables' AS "check", count(to_regclass('public.' || t)) = 2 AS passed, count(to_regclass('public.' || t)) || '/2' AS detail
FROM unnest(ARRAY['organizations', 'organization_members']) t;

SELECT 'member roles', enum_range(NULL::org_role)::text = '{owner,admin,member,viewer}', enum_range(NULL::org_role)::text;

SELECT 'one membership per user and organization', count(*) = 1, coalesce(string_agg(indexname, ', '), 'missing')
FROM pg_indexes WHERE schemaname = 'public' AND indexname = 'organization_members_org_user_key';

SELECT 'auto-join needs a domain', count(*) = 1, coalesce(string_agg(conname, ', '), 'missing')
FROM pg_constraint WHERE conname = 'organizations_auto_join_needs_domain';
