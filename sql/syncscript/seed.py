"""``db.seed``: realistic, referentially consistent syncscript data, deterministic for a seed.

Generated inside PostgreSQL with ``generate_series`` (FutureSync's ``seeds:perf 5000`` idea, at
server speed): ids are ``md5(seed:table:n)::uuid`` so every foreign key is recomputed, not looked
up, and values come from ``random()`` after ``setseed()`` in one session with parallel query off,
so the same seed gives the same rows. Timestamps count from a fixed epoch, not from ``now()``.
"""
from __future__ import annotations

import logging
import time
from typing import Callable, Mapping

from psycopg import sql

from ops.dsn import connect, tool_application_name
from ops.seeds import check_foreign_keys, prepare_tables
from ops.errors import ConfigError

log = logging.getLogger(__name__)

EPOCH = "2025-01-01 00:00:00+00"

TABLES = ["users", "user_sessions", "user_analytics", "energy_logs", "productivity_insights", "budget_categories",
          "expenses", "savings_goals", "beta_users", "feedback_submissions", "testing_sessions", "projects",
          "tasks", "briefing_settings", "briefing_history"]

# {s} is the seed literal, {n} the user count. Each statement fills one table.
_STATEMENTS = [
    ("users", """
INSERT INTO users (id, auth0_id, email, name, avatar_url, timezone, language, created_at, updated_at, last_active,
                   subscription_tier, beta_user, beta_tier, beta_signup_date, preferences, settings)
SELECT md5({s} || ':u:' || i)::uuid,
       'auth0|' || substr(md5({s} || ':a:' || i), 1, 24),
       'user' || i || '.' || substr(md5({s} || ':e:' || i), 1, 6) || '@example.com',
       (ARRAY['Ada','Grace','Alan','Edsger','Barbara','Donald','Frances','Ken','Margaret','Linus',
              'Radia','John','Katherine','Dennis','Sophie','Tim'])[1 + (random() * 15)::int] || ' ' ||
       (ARRAY['Lovelace','Hopper','Turing','Dijkstra','Liskov','Knuth','Allen','Thompson','Hamilton',
              'Torvalds','Perlman','Backus','Johnson','Ritchie','Wilson','Berners-Lee'])[1 + (random() * 15)::int],
       CASE WHEN random() < 0.6 THEN 'https://cdn.example.com/avatars/' || i || '.png' END,
       (ARRAY['UTC','Europe/London','Europe/Berlin','America/New_York','America/Los_Angeles','Asia/Tokyo'])[1 + (random() * 5)::int],
       (ARRAY['en','en','en','de','fr','es','ja'])[1 + (random() * 6)::int],
       c, c + random() * interval '30 days', c + random() * interval '300 days',
       (ARRAY['free','free','free','pro','pro','team'])[1 + (random() * 5)::int],
       i % 10 = 0, CASE WHEN i % 10 = 0 THEN (ARRAY['alpha','beta','early'])[1 + i % 3] END,
       CASE WHEN i % 10 = 0 THEN c + interval '14 days' END,
       jsonb_build_object('theme', (ARRAY['light','dark'])[1 + i % 2], 'notifications', random() < 0.7),
       jsonb_build_object('week_starts_monday', random() < 0.5)
FROM (SELECT i, timestamptz '{epoch}' + random() * interval '365 days' AS c FROM generate_series(1, {n}) i) g"""),
    ("user_sessions", """
INSERT INTO user_sessions (id, user_id, session_token, ip_address, user_agent, created_at, expires_at, is_active)
SELECT md5({s} || ':us:' || i)::uuid, md5({s} || ':u:' || i)::uuid, encode(sha256(({s} || ':tok:' || i)::bytea), 'hex'),
       ('10.' || (i / 65536) % 256 || '.' || (i / 256) % 256 || '.' || i % 256)::inet,
       (ARRAY['Mozilla/5.0 (Macintosh)','Mozilla/5.0 (Windows NT 10.0)','SyncScript-iOS/2.1','SyncScript-Android/2.1'])[1 + i % 4],
       c, c + interval '30 days', random() < 0.8
FROM (SELECT i, timestamptz '{epoch}' + random() * interval '365 days' AS c FROM generate_series(1, {n}) i) g"""),
    ("user_analytics", """
INSERT INTO user_analytics (id, user_id, date, energy_level, tasks_completed, tasks_created, focus_time_minutes,
                            productivity_score, streak_days, points_earned, created_at, updated_at)
SELECT md5({s} || ':ua:' || i || ':' || d)::uuid, md5({s} || ':u:' || i)::uuid, date '2025-06-01' + d,
       (random() * 10)::int, (random() * 12)::int, (random() * 15)::int, (random() * 300)::int,
       round((random() * 100)::numeric, 2), d, (random() * 500)::int,
       timestamptz '{epoch}' + (150 + d) * interval '1 day', timestamptz '{epoch}' + (150 + d) * interval '1 day'
FROM generate_series(1, {n}) i, generate_series(0, 2) d"""),
    ("energy_logs", """
INSERT INTO energy_logs (id, user_id, energy_level, logged_at, source, context, created_at)
SELECT md5({s} || ':el:' || i || ':' || k)::uuid, md5({s} || ':u:' || i)::uuid, (random() * 10)::int, t,
       (ARRAY['manual','wearable','check-in'])[1 + k % 3], jsonb_build_object('mood', (ARRAY['calm','tired','focused'])[1 + (random() * 2)::int]), t
FROM (SELECT i, k, timestamptz '{epoch}' + random() * interval '365 days' AS t
      FROM generate_series(1, {n}) i, generate_series(1, 3) k) g"""),
    ("productivity_insights", """
INSERT INTO productivity_insights (id, user_id, insight_type, title, description, data, confidence_score,
                                   is_actionable, created_at, expires_at, is_read)
SELECT md5({s} || ':pi:' || i)::uuid, md5({s} || ':u:' || i)::uuid,
       (ARRAY['peak_hours','energy_dip','streak','focus'])[1 + i % 4],
       (ARRAY['Your best hours are 9-11','Energy dips after lunch','Keep the streak going','Deep work is up'])[1 + i % 4],
       'Generated from the last 30 days of activity', jsonb_build_object('window_days', 30),
       round(random()::numeric, 2), random() < 0.5, c, c + interval '7 days', random() < 0.3
FROM (SELECT i, timestamptz '{epoch}' + random() * interval '365 days' AS c FROM generate_series(1, {n}) i) g"""),
    ("budget_categories", """
INSERT INTO budget_categories (id, user_id, name, description, budget_amount, spent_amount, color, icon, is_active,
                               created_at, updated_at)
SELECT md5({s} || ':bc:' || i || ':' || k)::uuid, md5({s} || ':u:' || i)::uuid,
       (ARRAY['Groceries','Transport'])[k], 'Monthly ' || lower((ARRAY['Groceries','Transport'])[k]) || ' budget',
       round((200 + random() * 800)::numeric, 2), round((random() * 400)::numeric, 2),
       (ARRAY['#3B82F6','#10B981'])[k], (ARRAY['cart','car'])[k], true, c, c
FROM (SELECT i, k, timestamptz '{epoch}' + random() * interval '365 days' AS c
      FROM generate_series(1, {n}) i, generate_series(1, 2) k) g"""),
    ("expenses", """
INSERT INTO expenses (id, user_id, category_id, amount, description, expense_date, payment_method, merchant, tags,
                      receipt_url, created_at, updated_at)
SELECT md5({s} || ':ex:' || i || ':' || k)::uuid, md5({s} || ':u:' || i)::uuid,
       md5({s} || ':bc:' || i || ':' || (1 + k % 2))::uuid, round((1 + random() * 150)::numeric, 2),
       (ARRAY['Weekly shop','Train ticket','Coffee beans'])[k], (d)::date,
       (ARRAY['card','cash','transfer'])[1 + (random() * 2)::int],
       (ARRAY['Fresh Market','City Rail','Bean There'])[k], ARRAY['monthly', 'k' || k],
       CASE WHEN random() < 0.3 THEN 'https://cdn.example.com/receipts/' || i || '-' || k || '.jpg' END, d, d
FROM (SELECT i, k, timestamptz '{epoch}' + random() * interval '365 days' AS d
      FROM generate_series(1, {n}) i, generate_series(1, 3) k) g"""),
    ("savings_goals", """
INSERT INTO savings_goals (id, user_id, name, description, target_amount, current_amount, target_date, priority,
                           is_active, created_at, updated_at)
SELECT md5({s} || ':sg:' || i)::uuid, md5({s} || ':u:' || i)::uuid,
       (ARRAY['Emergency fund','Holiday','New laptop'])[1 + i % 3], 'Saving a little every month',
       round((500 + random() * 5000)::numeric, 2), round((random() * 500)::numeric, 2),
       date '2026-01-01' + (random() * 365)::int, (ARRAY['low','medium','high'])[1 + i % 3], true, c, c
FROM (SELECT i, timestamptz '{epoch}' + random() * interval '365 days' AS c FROM generate_series(1, {n}) i) g"""),
    ("beta_users", """
INSERT INTO beta_users (id, user_id, tier, testing_focus, feedback_count, status, joined_at, last_active, preferences)
SELECT md5({s} || ':bu:' || i)::uuid, md5({s} || ':u:' || i)::uuid, (ARRAY['alpha','beta','early'])[1 + i % 3],
       ARRAY['analytics', 'budget'], 2, 'active', c, c + interval '10 days', '{{}}'::jsonb
FROM (SELECT i, timestamptz '{epoch}' + random() * interval '365 days' AS c
      FROM generate_series(10, {n}, 10) i) g"""),
    ("feedback_submissions", """
INSERT INTO feedback_submissions (id, user_id, feature, rating, feedback, suggestions, category, priority, status,
                                  created_at, updated_at)
SELECT md5({s} || ':fs:' || i || ':' || k)::uuid, md5({s} || ':u:' || i)::uuid,
       (ARRAY['briefing','budget','energy'])[1 + (i + k) % 3], 1 + (random() * 4)::int,
       'Works well, a few rough edges', ARRAY['faster sync'], (ARRAY['ux','performance','bug'])[k],
       'medium', (ARRAY['submitted','triaged','resolved'])[1 + (random() * 2)::int], c, c
FROM (SELECT i, k, timestamptz '{epoch}' + random() * interval '365 days' AS c
      FROM generate_series(10, {n}, 10) i, generate_series(1, 2) k) g"""),
    ("testing_sessions", """
INSERT INTO testing_sessions (id, user_id, feature, start_time, end_time, completion_rate, satisfaction, actions, metadata)
SELECT md5({s} || ':ts:' || i)::uuid, md5({s} || ':u:' || i)::uuid, (ARRAY['briefing','budget','energy'])[1 + i % 3],
       c, c + (5 + random() * 55) * interval '1 minute', round((random() * 100)::numeric, 2), 1 + (random() * 4)::int,
       '[{{"step": "open"}}, {{"step": "complete"}}]'::jsonb, jsonb_build_object('build', '2.1.' || i % 10)
FROM (SELECT i, timestamptz '{epoch}' + random() * interval '365 days' AS c
      FROM generate_series(10, {n}, 10) i) g"""),
    ("projects", """
INSERT INTO projects (id, user_id, name, description, color, status, due_date, created_at, updated_at)
SELECT md5({s} || ':pr:' || i)::uuid, md5({s} || ':u:' || i)::uuid,
       (ARRAY['Launch plan','Home renovation','Thesis','Fitness'])[1 + i % 4], 'Personal project',
       '#3B82F6', (ARRAY['active','active','completed','archived'])[1 + (random() * 3)::int],
       c + interval '60 days', c, c
FROM (SELECT i, timestamptz '{epoch}' + random() * interval '365 days' AS c FROM generate_series(1, {n}) i) g"""),
    ("tasks", """
INSERT INTO tasks (id, user_id, project_id, title, description, priority, energy_requirement, completed, completed_at,
                   points, estimated_duration, actual_duration, due_date, created_at, updated_at, recurrence_config,
                   tags, subtasks, notes)
SELECT md5({s} || ':t:' || i || ':' || k)::uuid, md5({s} || ':u:' || i)::uuid,
       CASE WHEN k < 3 THEN md5({s} || ':pr:' || i)::uuid END,
       (ARRAY['Draft outline','Review budget','Call the bank'])[k], 'Task ' || k || ' for user ' || i,
       1 + (random() * 4)::int, 1 + (random() * 4)::int, done, CASE WHEN done THEN c + interval '2 days' END,
       (random() * 50)::int, 15 + (random() * 120)::int, CASE WHEN done THEN 10 + (random() * 150)::int END,
       c + interval '7 days', c, c, CASE WHEN k = 3 THEN '{{"every": "week"}}'::jsonb END,
       '["work"]'::jsonb, '[]'::jsonb, '[]'::jsonb
FROM (SELECT i, k, random() < 0.5 AS done, timestamptz '{epoch}' + random() * interval '365 days' AS c
      FROM generate_series(1, {n}) i, generate_series(1, 3) k) g"""),
    ("briefing_settings", """
INSERT INTO briefing_settings (id, user_id, morning_brief_enabled, evening_brief_enabled, morning_time, evening_time,
                               content_modules, delivery_channels, tone, frequency, created_at, updated_at)
SELECT md5({s} || ':bs:' || i)::uuid, md5({s} || ':u:' || i)::uuid, true, random() < 0.6,
       time '07:00' + (random() * 120)::int * interval '1 minute', time '18:00',
       '{{"tasks": true, "energy": true}}'::jsonb, '{{"email": true}}'::jsonb,
       (ARRAY['professional','friendly','concise'])[1 + i % 3], 'daily', c, c
FROM (SELECT i, timestamptz '{epoch}' + random() * interval '365 days' AS c FROM generate_series(1, {n}) i) g"""),
    ("briefing_history", """
INSERT INTO briefing_history (id, user_id, briefing_type, content, generated_at, viewed_at, is_viewed)
SELECT md5({s} || ':bh:' || i || ':' || k)::uuid, md5({s} || ':u:' || i)::uuid, (ARRAY['morning','evening'])[k],
       jsonb_build_object('tasks_due', (random() * 8)::int, 'headline', 'Your day at a glance'),
       c, CASE WHEN v THEN c + interval '1 hour' END, v
FROM (SELECT i, k, random() < 0.7 AS v, timestamptz '{epoch}' + random() * interval '365 days' AS c
      FROM generate_series(1, {n}) i, generate_series(1, 2) k) g"""),
]


def generate(params: Mapping, database: str, users: int, seed: int, replace: bool = False,
             progress: Callable[[str, int], None] | None = None) -> tuple[dict[str, int], float]:
    """Fill every syncscript table for ``users`` users in one transaction; returns (rows per table, seconds).
    ``progress(table, rows)`` is called after each table is loaded (a progress bar's feed).

    ``seed``: integer; the same seed and count give identical rows. Refuses a database whose
    ``users`` table already has rows unless ``replace`` (then TRUNCATE ... CASCADE first).
    Raises :class:`ConfigError` for a bad count, :class:`OpsError` when the schema is missing.
    """
    if users is None or users < 1:
        raise ConfigError([f"--users must be a positive integer, not {users}"])
    t0 = time.monotonic()
    with connect(params, dbname=database, application_name=tool_application_name("seed")) as conn:
        prepare_tables(conn, database, TABLES, 'users', replace, 'syncscript',
                       'run `invoke deploy --db syncscript` first.')
        conn.execute("SET LOCAL max_parallel_workers_per_gather = 0")
        conn.execute("SET LOCAL synchronous_commit = off")
        # Foreign keys hold by construction (ids are recomputed from the same md5 formula), so the
        # per-row FK triggers are skipped as pg_restore --disable-triggers does, and every foreign
        # key is checked once, set-wise, before commit (check_foreign_keys).
        conn.execute("SET LOCAL session_replication_role = replica")
        fraction = ((seed * 2654435761) % 2**31) / 2**31  # setseed takes [-1, 1]
        conn.execute("SELECT setseed(%s)", (fraction,))
        s = sql.Literal(str(seed)).as_string(conn)
        counts = {}
        conn.execute("SET LOCAL maintenance_work_mem = '256MB'")
        for table, stmt in _STATEMENTS:
            t1 = time.monotonic()
            # PostgreSQL manual, "Populating a Database": build secondary indexes after the load.
            indexes = conn.execute(
                "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i "
                "WHERE i.indrelid = %s::regclass AND NOT EXISTS "
                "(SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)", (f"public.{table}",)).fetchall()
            for name, _ in indexes:
                conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(*name.split("."))))
            cur = conn.execute(stmt.format(s=s, n=int(users), epoch=EPOCH))
            counts[table] = cur.rowcount
            if progress:
                progress(table, cur.rowcount)
            for _, definition in indexes:
                conn.execute(definition)
            log.debug("seeded %s: %d rows in %.1f s", table, cur.rowcount, time.monotonic() - t1)
        conn.execute("SET LOCAL session_replication_role = origin")
        check_foreign_keys(conn, database)
        conn.commit()
        conn.autocommit = True
        conn.execute("ANALYZE")
    return counts, time.monotonic() - t0


