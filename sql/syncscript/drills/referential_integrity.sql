-- Drill checks for syncscript: the restored data is referentially whole and plausible.
SELECT 'every task belongs to a user' AS "check",
       NOT EXISTS (SELECT 1 FROM tasks t LEFT JOIN users u ON u.id = t.user_id WHERE t.user_id IS NOT NULL AND u.id IS NULL) AS passed,
       (SELECT count(*) FROM tasks) || ' tasks' AS detail;

SELECT 'every expense has its budget category',
       NOT EXISTS (SELECT 1 FROM expenses e LEFT JOIN budget_categories c ON c.id = e.category_id
                   WHERE e.category_id IS NOT NULL AND c.id IS NULL),
       (SELECT count(*) FROM expenses) || ' expenses';

SELECT 'energy levels within 0..10', coalesce(max(energy_level), 0) <= 10 AND coalesce(min(energy_level), 0) >= 0,
       'min ' || coalesce(min(energy_level), 0) || ', max ' || coalesce(max(energy_level), 0)
FROM energy_logs;
