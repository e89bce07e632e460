"""``db.seed --db futuresync``: seed 001's ``seeds:perf 5000`` — organizations, members, visions, daily
actions, time entries, progress, achievements unlocked, analytics events and audit rows spread over the
14 months before the current one, deterministic per seed (and per month: times count back from the
start of the current UTC month, because partitions follow the clock).

Rows are generated inside PostgreSQL (``generate_series``), ids are ``md5(seed:table:n)::uuid`` so
every foreign key is recomputed rather than looked up, values come from ``random()`` after
``setseed()`` with parallel query off. The past months' partitions are created first by pgops's own
partition code (plain table + CHECK + ATTACH), so no row lands in a default partition.
"""
from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Callable, Mapping

from psycopg import sql

from ops.dsn import connect, tool_application_name
from ops.errors import ConfigError, OpsError

MONTHS = 14
TABLES = ["organizations", "users", "organization_members", "visions", "daily_actions", "time_entries",
          "user_progress", "user_achievements", "analytics_events", "audit_log"]
TRUNCATE = ["users", "organizations", "organization_members", "visions", "daily_actions", "time_entries",
            "user_progress", "user_achievements", "analytics_events", "audit_log"]

# {s} seed literal, {n} users, {o} organizations, {base} start of the 14-month window (UTC), {span} its length.
_STATEMENTS = [
    ("organizations", """
INSERT INTO organizations (id, name, slug, domain, auto_join_enabled, subscription_plan, subscription_status, seats,
                           settings, branding, created_at, updated_at)
SELECT md5({s} || ':o:' || i)::uuid, 'Org ' || i, 'org-' || i || '-' || substr(md5({s} || ':os:' || i), 1, 6),
       CASE WHEN i % 3 = 0 THEN 'org' || i || '.example.com' END, i % 3 = 0,
       (ARRAY['team','business','enterprise'])[1 + i % 3], (ARRAY['trialing','active','active','past_due'])[1 + i % 4]::subscription_status,
       10 + i % 90, jsonb_build_object('week_starts_monday', i % 2 = 0), jsonb_build_object('color', '#' || substr(md5(i::text), 1, 6)),
       c, c
FROM (SELECT i, {base} + random() * {span} / 4 AS c FROM generate_series(1, {o}) i) g"""),
    ("users", """
INSERT INTO users (id, email, password_hash, auth_provider, name, display_name, avatar_url, timezone, locale, role,
                   onboarding_completed, trial_ends_at, created_at, updated_at)
SELECT md5({s} || ':u:' || i)::uuid, 'user' || i || '.' || substr(md5({s} || ':e:' || i), 1, 6) || '@example.com',
       CASE WHEN oauth THEN NULL ELSE '$argon2id$v=19$m=65536,t=3,p=4$' || substr(md5({s} || ':pw:' || i), 1, 22) END,
       CASE WHEN oauth THEN (ARRAY['google','apple','github'])[1 + i % 3] ELSE 'password' END,
       (ARRAY['Ada','Grace','Alan','Edsger','Barbara','Donald','Frances','Ken'])[1 + (random() * 7)::int] || ' ' ||
       (ARRAY['Lovelace','Hopper','Turing','Dijkstra','Liskov','Knuth','Allen','Thompson'])[1 + (random() * 7)::int],
       'user' || i, CASE WHEN random() < 0.5 THEN 'https://cdn.example.com/a/' || i || '.png' END,
       (ARRAY['UTC','Europe/Berlin','America/New_York','Asia/Tokyo'])[1 + i % 4], (ARRAY['en','de','fr','ja'])[1 + i % 4],
       CASE WHEN i % 500 = 0 THEN 'coach' ELSE 'user' END::user_role, random() < 0.8, c + interval '14 days', c, c
FROM (SELECT i, random() < 0.3 AS oauth, {base} + random() * {span} / 2 AS c FROM generate_series(1, {n}) i) g"""),
    ("organization_members", """
INSERT INTO organization_members (id, organization_id, user_id, role, invited_by, invitation_status, invited_at, joined_at, created_at, updated_at)
SELECT md5({s} || ':m:' || i)::uuid, md5({s} || ':o:' || (1 + (i - 1) % {o}))::uuid, md5({s} || ':u:' || i)::uuid,
       CASE WHEN i <= {o} THEN 'owner' WHEN i % 10 = 0 THEN 'admin' ELSE 'member' END::org_role,
       CASE WHEN i > {o} THEN md5({s} || ':u:' || (1 + (i - 1) % {o}))::uuid END, 'accepted',
       {base} + {span} / 2, {base} + {span} / 2 + interval '1 day', {base} + {span} / 2, {base} + {span} / 2
FROM generate_series(1, {n}) i WHERE i % 5 <> 0 OR i <= {o}"""),
    ("visions", """
INSERT INTO visions (id, user_id, category, title, description, priority, time_allocation_minutes, target_date, ai_analysis, created_at, updated_at)
SELECT md5({s} || ':v:' || i || ':' || k)::uuid, md5({s} || ':u:' || i)::uuid,
       (ARRAY['health','career','relationships','personal-growth'])[k]::vision_category,
       (ARRAY['Run a marathon','Lead a team','Call family weekly','Read 50 books'])[k], 'Five-year vision ' || k,
       1 + (random() * 4)::int, 15 + (random() * 105)::int, date '2030-12-31',
       CASE WHEN random() < 0.5 THEN jsonb_build_object('feasibility', round(random()::numeric, 2)) END, c, c
FROM (SELECT i, k, {base} + random() * {span} AS c FROM generate_series(1, {n}) i, generate_series(1, 3) k) g"""),
    ("daily_actions", """
INSERT INTO daily_actions (id, user_id, vision_id, action_date, description, estimated_time_minutes, actual_time_minutes,
                           status, ai_generated, ai_reasoning, ai_model, started_at, completed_at, created_at, updated_at)
SELECT md5({s} || ':a:' || i || ':' || k)::uuid, md5({s} || ':u:' || i)::uuid, md5({s} || ':v:' || i || ':' || (1 + k % 3))::uuid,
       c::date, 'Action ' || k, 15 + (random() * 45)::int, CASE WHEN st = 'completed' THEN 10 + (random() * 50)::int END,
       st::action_status, k % 2 = 0, CASE WHEN k % 2 = 0 THEN 'Fits your energy pattern' END, CASE WHEN k % 2 = 0 THEN 'gpt-4o' END,
       CASE WHEN st IN ('completed','in_progress') THEN c END, CASE WHEN st = 'completed' THEN c + interval '30 minutes' END, c, c
FROM (SELECT i, k, {base} + random() * {span} AS c,
             (ARRAY['pending','in_progress','completed','completed','completed','skipped'])[1 + (random() * 5)::int] AS st
      FROM generate_series(1, {n}) i, generate_series(1, 10) k) g"""),
    ("time_entries", """
INSERT INTO time_entries (id, daily_action_id, started_at, ended_at, source, created_at)
SELECT md5({s} || ':t:' || a.id)::uuid, a.id, a.started_at, a.completed_at, 'timer', a.started_at
FROM daily_actions a WHERE a.status = 'completed'"""),
    ("user_progress", """
INSERT INTO user_progress (user_id, current_streak, longest_streak, total_days_completed, total_actions_completed,
                           total_time_invested_minutes, last_completed_on)
SELECT user_id, least(count(*), 3), count(*), count(DISTINCT action_date), count(*), coalesce(sum(actual_time_minutes), 0), max(action_date)
FROM daily_actions WHERE status = 'completed' GROUP BY user_id"""),
    ("user_achievements", """
INSERT INTO user_achievements (user_id, achievement_id, unlocked_at, progress)
SELECT p.user_id, a.id, {base} + {span} / 2, jsonb_build_object('actions', p.total_actions_completed)
FROM user_progress p JOIN achievements a ON a.code = 'first-action'"""),
    ("analytics_events", """
INSERT INTO analytics_events (id, user_id, organization_id, session_id, event_name, properties, page, platform, app_version, duration_ms, occurred_at, received_at)
SELECT md5({s} || ':ev:' || i || ':' || k)::uuid, md5({s} || ':u:' || i)::uuid,
       CASE WHEN i % 5 <> 0 OR i <= {o} THEN md5({s} || ':o:' || (1 + (i - 1) % {o}))::uuid END,
       md5({s} || ':sess:' || i || ':' || k / 5)::uuid,
       (ARRAY['page.view','action.completed','vision.created','session.start','ai.suggestion_shown'])[1 + k % 5],
       jsonb_build_object('k', k), (ARRAY['/today','/visions','/progress','/settings'])[1 + k % 4],
       (ARRAY['web','ios','android'])[1 + i % 3], '2.' || (k % 7), (random() * 5000)::int, t, t + interval '2 seconds'
FROM (SELECT i, k, {base} + random() * {span} AS t FROM generate_series(1, {n}) i, generate_series(1, 20) k) g"""),
    ("audit_log", """
INSERT INTO audit_log (logged_at, actor_user_id, subject_user_id, organization_id, db_user, application_name, table_name,
                       operation, row_id, new_data)
SELECT v.created_at, v.user_id, v.user_id, NULL::uuid, 'futuresync_app', 'futuresync-web', 'visions', 'INSERT', v.id::text,
       to_jsonb(v)
FROM visions v
UNION ALL
SELECT a.completed_at, a.user_id, a.user_id, NULL, 'futuresync_app', 'futuresync-web', 'daily_actions', 'UPDATE', a.id::text,
       jsonb_build_object('status', a.status)
FROM daily_actions a WHERE a.status = 'completed'"""),
]


def generate(params: Mapping, database: str, users: int, seed: int, replace: bool = False,
             progress: Callable[[str, int], None] | None = None, now: datetime | None = None) -> tuple[dict[str, int], float]:
    """Fill FutureSync for ``users`` users (≥ 1; one organization per 50 users) in one transaction after the
    past partitions are made; returns (rows per table, seconds). Refuses a database with users unless
    ``replace`` (TRUNCATE first). Raises :class:`ConfigError` for a bad count, :class:`OpsError` when the
    schema is missing or already holds users."""
    from ops.partitions import maintain
    from ops.partitions.plan import Action, add_months, month_start, partition_name, utc
    if users is None or users < 1:
        raise ConfigError([f"--users must be a positive integer, not {users}"])
    t0 = time.monotonic()
    now = now or datetime.now(timezone.utc)
    start = add_months(month_start(now), -MONTHS)
    orgs = max(1, users // 50)
    with connect(params, dbname=database, application_name=tool_application_name("seed")) as conn:
        missing = [t for t in TABLES if conn.execute("SELECT to_regclass(%s)", (f"public.{t}",)).fetchone()[0] is None]
        if missing:
            raise OpsError(f"Database '{database}' lacks futuresync tables: {', '.join(missing)}.",
                           "run `invoke deploy --db futuresync` first.")
        if conn.execute("SELECT EXISTS (SELECT 1 FROM users)").fetchone()[0] and not replace:
            raise OpsError(f"Database '{database}' already has users; seeding would mix two data sets.",
                           "rerun with `--replace` to truncate the futuresync tables first.")
        conn.execute("SET TimeZone = 'UTC'")
        states = {s.table: s for s in maintain.read_states(conn)}
        conn.rollback()
    # the 14 past months' partitions, as pgops makes them (outside the data transaction: short DDL each)
    for table in ("analytics_events", "audit_log"):
        st = states[table]
        for i in range(MONTHS):
            m = add_months(start, i)
            a = Action("create", st.schema, table, partition_name(table, m), utc(m), utc(add_months(m, 1)))
            if not any(p.lower == a.lower for p in st.partitions if not p.is_default):
                maintain.create(params, database, st, a, maintain.Knobs(lock_timeout_s=5, retries=3))
    with connect(params, dbname=database, application_name=tool_application_name("seed")) as conn:
        if replace:
            conn.execute(sql.SQL("TRUNCATE {} CASCADE").format(sql.SQL(", ").join(sql.Identifier(t) for t in TRUNCATE)))
        conn.execute("SET LOCAL max_parallel_workers_per_gather = 0")
        conn.execute("SET LOCAL synchronous_commit = off")
        conn.execute("SET LOCAL session_replication_role = replica")  # audit rows are generated, not triggered
        conn.execute("SELECT setseed(%s)", (((seed * 2654435761) % 2**31) / 2**31,))
        lit = {"s": sql.Literal(str(seed)).as_string(conn), "n": int(users), "o": orgs,
               "base": sql.Literal(utc(start).isoformat()).as_string(conn) + "::timestamptz",
               "span": f"(timestamptz '{utc(month_start(now)).isoformat()}' - timestamptz '{utc(start).isoformat()}' - interval '1 second')"}
        counts = {}
        for table, stmt in _STATEMENTS:
            cur = conn.execute(stmt.format(**lit))
            counts[table] = cur.rowcount
            if progress:
                progress(table, cur.rowcount)
        conn.commit()
        conn.autocommit = True
        conn.execute("ANALYZE")
    return counts, time.monotonic() - t0
