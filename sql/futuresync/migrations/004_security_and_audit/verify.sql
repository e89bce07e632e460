SELECT 'row-level security enabled and forced' AS "check",
       count(*) FILTER (WHERE c.relrowsecurity AND c.relforcerowsecurity) = count(*) AND count(*) = 11 AS passed,
       count(*) FILTER (WHERE c.relrowsecurity AND c.relforcerowsecurity) || '/' || count(*) || ' tables'
       || coalesce(' (not: ' || string_agg(c.relname, ', ') FILTER (WHERE NOT (c.relrowsecurity AND c.relforcerowsecurity)) || ')', '') AS detail
FROM pg_class c
WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition;

SELECT 'every partition forced, no policy, no application grant',
       count(*) FILTER (WHERE c.relrowsecurity AND c.relforcerowsecurity AND NOT has_table_privilege('futuresync_app', c.oid, 'SELECT')) = count(*),
       count(*) FILTER (WHERE c.relrowsecurity AND c.relforcerowsecurity AND NOT has_table_privilege('futuresync_app', c.oid, 'SELECT')) || '/' || count(*) || ' partitions'
FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace AND c.relispartition AND c.relkind IN ('r', 'p');

SELECT 'application role has no BYPASSRLS', count(*) = 2 AND bool_and(NOT rolbypassrls AND NOT rolsuper),
       string_agg(rolname || CASE WHEN rolbypassrls OR rolsuper THEN ' BYPASSES' ELSE ' bound' END, ', ' ORDER BY rolname)
FROM pg_roles WHERE rolname IN ('futuresync_app', 'futuresync_definer');

SELECT 'policies', count(*) = 19, count(*) || '/19' FROM pg_policies WHERE schemaname = 'public';

SELECT 'every table has a policy for the application',
       count(*) = 11, count(*) || '/11 tables: ' || string_agg(tablename, ', ' ORDER BY tablename)
FROM (SELECT DISTINCT tablename FROM pg_policies WHERE schemaname = 'public' AND 'futuresync_app' = ANY (roles)) p;

SELECT 'audit triggers', count(*) = 6, count(*) || '/6'
FROM pg_trigger WHERE NOT tgisinternal AND tgname LIKE '%\_audit' AND tgfoid = 'public.audit_row()'::regprocedure;

SELECT 'definer functions owned by futuresync_definer', count(*) = 3, count(*) || '/3'
FROM pg_proc WHERE proname IN ('app_org_ids', 'app_admin_org_ids', 'audit_row') AND prosecdef
  AND proowner = (SELECT oid FROM pg_roles WHERE rolname = 'futuresync_definer');
