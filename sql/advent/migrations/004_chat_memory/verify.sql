-- Every table 004_chat_memory creates, with its column count, and its keys.
SELECT 'table ' || t AS "check", count(c.column_name) = n AS passed,
       count(c.column_name) || ' of ' || n || ' columns' AS detail
FROM (VALUES ('chat_session_v2', 6), ('chat_message_v2', 6), ('memory_fragment', 7), ('memory_embedding', 6)) AS e(t, n)
LEFT JOIN information_schema.columns c ON c.table_schema = 'public' AND c.table_name = e.t
GROUP BY t, n;

SELECT 'constraint ' || k AS "check",
       EXISTS (SELECT 1 FROM pg_constraint WHERE conname = k AND connamespace = 'public'::regnamespace) AS passed,
       coalesce((SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = k AND connamespace = 'public'::regnamespace), 'missing') AS detail
FROM unnest(ARRAY['chat_message_v2_role_check', 'chat_message_v2_session_id_fkey', 'chat_session_v2_child_id_fkey', 'memory_embedding_fragment_id_fkey']) AS k;
