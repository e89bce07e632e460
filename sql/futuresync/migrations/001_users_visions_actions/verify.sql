SELECT 'tables' AS "check", count(to_regclass('public.' || t)) = 7 AS passed, count(to_regclass('public.' || t)) || '/7' AS detail
FROM unnest(ARRAY['users', 'visions', 'daily_actions', 'time_entries', 'user_progress', 'achievements', 'user_achievements']) t;

SELECT 'vision categories', enum_range(NULL::vision_category)::text = '{health,career,relationships,personal-growth}',
       enum_range(NULL::vision_category)::text;

SELECT 'action statuses', enum_range(NULL::action_status)::text = '{pending,in_progress,completed,skipped}',
       enum_range(NULL::action_status)::text;

SELECT 'oauth users have no password hash', is_nullable = 'YES', 'users.password_hash nullable: ' || is_nullable
FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'users' AND column_name = 'password_hash';

SELECT 'email unique among live users', count(*) = 1, coalesce(string_agg(indexname, ', '), 'missing')
FROM pg_indexes WHERE schemaname = 'public' AND indexname = 'users_email_live_key' AND indexdef LIKE '%WHERE (deleted_at IS NULL)%';

SELECT 'foreign keys to users cascade', count(*) = 4, count(*) || '/4 ON DELETE CASCADE'
FROM pg_constraint WHERE contype = 'f' AND confrelid = 'public.users'::regclass AND confdeltype = 'c'
  AND conrelid IN ('public.visions'::regclass, 'public.daily_actions'::regclass, 'public.user_progress'::regclass,
                  'public.user_achievements'::regclass);

SELECT 'achievements seeded', count(*) >= 5, count(*) || ' achievements' FROM achievements;
