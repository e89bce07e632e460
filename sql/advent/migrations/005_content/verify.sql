-- Every table 005_content creates, with its column count, and its keys.
SELECT 'table ' || t AS "check", count(c.column_name) = n AS passed,
       count(c.column_name) || ' of ' || n || ' columns' AS detail
FROM (VALUES ('media_asset', 8), ('surprise_collection_v2', 6), ('surprise_video', 5)) AS e(t, n)
LEFT JOIN information_schema.columns c ON c.table_schema = 'public' AND c.table_name = e.t
GROUP BY t, n;

SELECT 'constraint ' || k AS "check",
       EXISTS (SELECT 1 FROM pg_constraint WHERE conname = k AND connamespace = 'public'::regnamespace) AS passed,
       coalesce((SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = k AND connamespace = 'public'::regnamespace), 'missing') AS detail
FROM unnest(ARRAY['media_asset_storage_key_key', 'child_profile_v2_avatar_asset_fk', 'surprise_video_collection_id_fkey', 'surprise_video_url_check']) AS k;
