-- Drill checks for fluxstudio: the restored data is whole and plausible (check, passed, detail).
SELECT 'every thread reply belongs to a message of the same conversation' AS "check",
       NOT EXISTS (SELECT 1 FROM messages r JOIN messages p ON p.id = r.parent_id
                   WHERE r.conversation_id <> p.conversation_id) AS passed,
       (SELECT count(*) FROM messages WHERE parent_id IS NOT NULL) || ' replies' AS detail;

SELECT 'one current version per file name and project',
       NOT EXISTS (SELECT 1 FROM files WHERE is_current AND deleted_at IS NULL
                   GROUP BY project_id, name HAVING count(*) > 1),
       (SELECT count(*) FROM files WHERE version > 1) || ' later versions';

SELECT 'paid invoices have a payment time and a non-negative total',
       NOT EXISTS (SELECT 1 FROM invoices WHERE (status = 'paid' AND paid_at IS NULL) OR total < 0),
       (SELECT count(*) FROM invoices WHERE status = 'paid') || ' paid invoices';
