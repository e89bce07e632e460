-- Every object 004_business creates, one named pass/fail row each (check, passed, detail).
SELECT 'table ' || t AS "check", to_regclass('public.' || t) IS NOT NULL AS passed,
       coalesce((SELECT count(*) FROM information_schema.columns c
                 WHERE c.table_schema = 'public' AND c.table_name = t) || ' columns', 'missing') AS detail
FROM unnest(ARRAY['service_packages', 'client_requests', 'invoices', 'time_entries', 'portfolios', 'portfolio_items']) AS t;

SELECT 'columns of ' || t, count(c.column_name) = n, count(c.column_name) || ' of ' || n || ' expected'
FROM (VALUES ('service_packages', 13), ('client_requests', 16), ('invoices', 16), ('time_entries', 11), ('portfolios', 9), ('portfolio_items', 10)) AS e(t, n)
LEFT JOIN information_schema.columns c ON c.table_schema = 'public' AND c.table_name = e.t
GROUP BY t, n;

SELECT 'index ' || i, to_regclass('public.' || i) IS NOT NULL, coalesce(pg_get_indexdef(to_regclass('public.' || i)), 'missing')
FROM unnest(ARRAY['idx_service_packages_organization_id', 'idx_client_requests_status', 'idx_client_requests_assigned_to',
                  'idx_invoices_organization_status', 'idx_invoices_project_id', 'idx_invoices_client_id',
                  'idx_time_entries_project_started', 'idx_time_entries_user_id', 'idx_time_entries_invoice_id',
                  'idx_portfolios_user_id', 'idx_portfolio_items_portfolio_position', 'idx_portfolio_items_project_id',
                  'idx_portfolio_items_cover_file_id']) AS i;

SELECT 'constraints of ' || k.label, count(c.oid) = k.n, count(c.oid) || ' of ' || k.n || ' expected'
FROM (VALUES ('foreign keys', 'f', 15), ('unique constraints', 'u', 2), ('check constraints', 'c', 11)) AS k(label, type, n)
LEFT JOIN pg_constraint c ON c.contype = k.type::"char"
     AND c.conrelid IN (SELECT to_regclass('public.' || t) FROM unnest(ARRAY['service_packages', 'client_requests', 'invoices', 'time_entries', 'portfolios', 'portfolio_items']) AS t)
GROUP BY k.label, k.n;
