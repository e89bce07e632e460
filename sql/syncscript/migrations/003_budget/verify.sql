SELECT 'columns of ' || t AS "check", count(c.column_name) = n AS passed,
       count(c.column_name) || ' of ' || n || ' expected' AS detail
FROM (VALUES ('budget_categories', 11), ('expenses', 12), ('savings_goals', 11)) AS e(t, n)
LEFT JOIN information_schema.columns c ON c.table_schema = 'public' AND c.table_name = e.t
GROUP BY t, n;

SELECT 'index ' || i, to_regclass('public.' || i) IS NOT NULL, coalesce(pg_get_indexdef(to_regclass('public.' || i)), 'missing')
FROM unnest(ARRAY['idx_budget_categories_user_id', 'idx_budget_categories_active', 'idx_expenses_user_id',
                  'idx_expenses_category_id', 'idx_expenses_date', 'idx_expenses_amount',
                  'idx_savings_goals_user_id', 'idx_savings_goals_active', 'idx_savings_goals_target_date']) AS i;

SELECT 'foreign key ' || t || '.' || col || ' -> ' || ref || ' ON DELETE CASCADE',
       EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conrelid = to_regclass('public.' || t) AND k.contype = 'f'
               AND k.confrelid = to_regclass('public.' || ref) AND k.confdeltype = 'c'
               AND pg_get_constraintdef(k.oid) LIKE 'FOREIGN KEY (' || col || ')%'),
       'REFERENCES ' || ref || '(id) ON DELETE CASCADE'
FROM (VALUES ('budget_categories', 'user_id', 'users'), ('expenses', 'user_id', 'users'),
             ('expenses', 'category_id', 'budget_categories'), ('savings_goals', 'user_id', 'users')) AS f(t, col, ref);

SELECT 'expenses.amount is numeric(10,2) NOT NULL',
       EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'expenses'
               AND column_name = 'amount' AND numeric_precision = 10 AND numeric_scale = 2 AND is_nullable = 'NO'),
       'DECIMAL(10,2) NOT NULL';
