SELECT 'partitioned by range' AS "check", count(*) = 2 AS passed,
       coalesce(string_agg(c.relname || ' ' || pg_get_partkeydef(c.oid), ', ' ORDER BY c.relname), 'none') AS detail
FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid
WHERE c.relname IN ('analytics_events', 'audit_log') AND p.partstrat = 'r';

SELECT 'partition policy in the table comment', count(*) = 2,
       coalesce(string_agg(c.relname || ': ' || substring(obj_description(c.oid, 'pg_class') FROM 'pgops:partitions (.*)$'), '; ' ORDER BY c.relname), 'none')
FROM pg_class c WHERE c.relname IN ('analytics_events', 'audit_log') AND c.relnamespace = 'public'::regnamespace
  AND (substring(obj_description(c.oid, 'pg_class') FROM 'pgops:partitions (.*)$'))::jsonb ? 'retention_months';

SELECT 'a partition covers now()', count(DISTINCT i.inhparent) = 2, count(DISTINCT i.inhparent) || '/2 tables'
FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhrelid
WHERE i.inhparent IN ('analytics_events'::regclass, 'audit_log'::regclass)
  AND pg_get_expr(p.relpartbound, p.oid) <> 'DEFAULT'
  AND now() >= (regexp_match(pg_get_expr(p.relpartbound, p.oid), 'FROM \(''([^'']+)''\)'))[1]::timestamptz
  AND now() < (regexp_match(pg_get_expr(p.relpartbound, p.oid), 'TO \(''([^'']+)''\)'))[1]::timestamptz;

SELECT 'audit_log has a default partition, analytics_events none',
       count(*) FILTER (WHERE i.inhparent = 'audit_log'::regclass) = 1 AND count(*) FILTER (WHERE i.inhparent = 'analytics_events'::regclass) = 0,
       coalesce(string_agg(p.relname, ', '), 'none')
FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhrelid
WHERE i.inhparent IN ('analytics_events'::regclass, 'audit_log'::regclass) AND pg_get_expr(p.relpartbound, p.oid) = 'DEFAULT';
