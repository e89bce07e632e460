SELECT 'table ' || t AS "check", to_regclass('public.' || t) IS NOT NULL AS passed, 'baseline table' AS detail
FROM unnest(ARRAY['users', 'images', 'descriptions', 'learning_sessions', 'vocabulary_items']) AS t;
