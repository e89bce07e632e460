-- Every object 002_messaging creates, one named pass/fail row each (check, passed, detail).
SELECT 'table ' || t AS "check", to_regclass('public.' || t) IS NOT NULL AS passed,
       coalesce((SELECT count(*) FROM information_schema.columns c
                 WHERE c.table_schema = 'public' AND c.table_name = t) || ' columns', 'missing') AS detail
FROM unnest(ARRAY['conversations', 'conversation_participants', 'messages', 'message_reactions', 'notifications']) AS t;

SELECT 'columns of ' || t, count(c.column_name) = n, count(c.column_name) || ' of ' || n || ' expected'
FROM (VALUES ('conversations', 11), ('conversation_participants', 7), ('messages', 11), ('message_reactions', 5), ('notifications', 10)) AS e(t, n)
LEFT JOIN information_schema.columns c ON c.table_schema = 'public' AND c.table_name = e.t
GROUP BY t, n;

SELECT 'index ' || i, to_regclass('public.' || i) IS NOT NULL, coalesce(pg_get_indexdef(to_regclass('public.' || i)), 'missing')
FROM unnest(ARRAY['idx_conversations_organization_id', 'idx_conversations_project_id', 'idx_conversations_last_message_at',
                  'idx_conversation_participants_user_id', 'idx_messages_conversation_created', 'idx_messages_author_id',
                  'idx_messages_parent_id', 'idx_message_reactions_user_id', 'idx_notifications_user_unread']) AS i;

SELECT 'constraints of ' || k.label, count(c.oid) = k.n, count(c.oid) || ' of ' || k.n || ' expected'
FROM (VALUES ('foreign keys', 'f', 11), ('unique constraints', 'u', 2), ('check constraints', 'c', 5)) AS k(label, type, n)
LEFT JOIN pg_constraint c ON c.contype = k.type::"char"
     AND c.conrelid IN (SELECT to_regclass('public.' || t) FROM unnest(ARRAY['conversations', 'conversation_participants', 'messages', 'message_reactions', 'notifications']) AS t)
GROUP BY k.label, k.n;
