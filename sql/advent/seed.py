"""``db.seed --db advent``: the legacy Advent Calendar data, with the awkward rows real data has.

Deterministic for a seed (values come from ``md5(seed:…)``, never ``random()``); ``users`` is the
number of accounts, and each brings about 60 legacy rows (1.5 children, a calendar of 24 days each,
a chat of 6 messages, a surprise, 8 analytics events): 17,000 accounts ≈ 1 M rows.

Awkward rows, at fixed strides so tests can count them: emails NULL (every 97th account) and
duplicates that differ only in case and spaces (every 89th repeats the one before), Unicode names
(ü, 山田, Ольга 🎄) and messages; children of accounts that do not exist (every 101st: the legacy
``child`` has no foreign key), children without a name (113th) or born before 2000 (211th);
duplicate calendars for the same child and year (one per 50 children) and calendars without a year
(307th); a 25th day (every 200th calendar); chats ending before they start (150th); chat messages
with unknown roles (997th) or no content (1009th); surprises for calendars that do not exist
(401st) or with plain-http videos (97th); analytics events whose payload ids are not numbers (503rd).
"""
from __future__ import annotations

import time
from typing import Callable, Mapping

from psycopg import sql

from ops.dsn import connect, tool_application_name
from ops.seeds import prepare_tables
from ops.errors import ConfigError

EPOCH = "2024-11-01 00:00:00+00"
TABLES = ["account", "child", "calendar", "calendar_day", "chat_record", "chat_message", "surprise_config",
          "analytics_event"]

# {s}: the seed as an SQL literal; {n}: accounts; {c}: children (1.5 n). h(x) = a stable 0..1e6 hash.
_H = "('x' || substr(md5({s} || ':' || {x}), 1, 6))::bit(24)::int"


def _h(x: str) -> str:
    return _H.replace("{x}", x)


_STATEMENTS = [
    ("account", f"""
INSERT INTO account (id, email, name, password_hash, created_at, updated_at)
SELECT i,
       CASE WHEN i % 97 = 0 THEN NULL
            WHEN i % 89 = 0 THEN '  PARENT' || (i - 1) || '@Example.COM '
            ELSE 'parent' || i || '@example.com' END,
       CASE i % 7 WHEN 0 THEN 'Zoë Åström' WHEN 1 THEN '山田 花子' WHEN 2 THEN 'Ольга 🎄' WHEN 3 THEN NULL
                  WHEN 4 THEN '  ' ELSE (ARRAY['Ada','Grace','Alan','Barbara','Donald'])[1 + i % 5] || ' Parent' END,
       md5({{s}} || ':pw:' || i),
       timestamptz '{EPOCH}' - ({_h("'a' || i")} % 700) * interval '1 day',
       CASE WHEN i % 3 = 0 THEN NULL ELSE timestamptz '{EPOCH}' + (i % 20) * interval '1 day' END
FROM generate_series(1, {{n}}) i"""),
    ("child", f"""
INSERT INTO child (id, account_id, name, birth_date, avatar_url, interests, created_at)
SELECT k,
       CASE WHEN k % 101 = 0 THEN {{n}} + 1000000 + k ELSE ((k - 1) % {{n}}) + 1 END,
       CASE WHEN k % 113 = 0 THEN NULL WHEN k % 5 = 0 THEN 'Émilie' WHEN k % 5 = 1 THEN 'Jürgen' ELSE 'Kid ' || k END,
       CASE WHEN k % 211 = 0 THEN date '1999-05-05' ELSE date '2012-01-01' + ({_h("'b' || k")} % 4000) END,
       CASE WHEN k % 4 = 0 THEN 'https://cdn.example.com/avatar/' || k || '.png' END,
       (ARRAY['lego,space', 'dinosaurs', '', NULL, 'drawing, music'])[1 + k % 5],
       timestamptz '{EPOCH}' - ({_h("'c' || k")} % 300) * interval '1 day'
FROM generate_series(1, {{c}}) k"""),
    ("calendar", f"""
INSERT INTO calendar (id, child_id, year, title, theme, is_published, created_at)
SELECT k,
       CASE WHEN k <= {{c}} THEN k ELSE (k - {{c}}) * 50 END,
       CASE WHEN k % 307 = 0 THEN NULL ELSE 2025 END,
       CASE WHEN k % 3 = 0 THEN NULL ELSE 'Advent for kid ' || k END,
       (ARRAY['classic', 'winter', NULL])[1 + k % 3],
       k % 2 = 0,
       timestamptz '{EPOCH}' + (k % 20) * interval '1 hour'
FROM generate_series(1, {{c}} + {{c}} / 50) k"""),
    ("calendar_day", """
INSERT INTO calendar_day (id, calendar_id, day_number, title, content, is_opened, opened_at)
SELECT (k - 1) * 24 + d, k,
       CASE WHEN k % 200 = 0 AND d = 24 THEN 25 ELSE d END,
       CASE WHEN d % 6 = 0 THEN NULL ELSE 'Day ' || d END,
       CASE d % 3 WHEN 0 THEN 'Ein Geschenk für dich 🎁' WHEN 1 THEN 'A surprise' ELSE NULL END,
       d <= 10,
       CASE WHEN d <= 10 THEN timestamptz '2025-12-01 07:00:00+00' + (d - 1) * interval '1 day' END
FROM generate_series(1, {c}) k, generate_series(1, 24) d"""),
    ("chat_record", f"""
INSERT INTO chat_record (id, child_id, started_at, ended_at, summary)
SELECT k, k, t, CASE WHEN k % 150 = 0 THEN t - interval '1 hour' WHEN k % 4 = 0 THEN NULL ELSE t + interval '12 minutes' END,
       CASE WHEN k % 2 = 0 THEN 'Talked about ' || (ARRAY['snow', 'reindeer', 'クリスマス'])[1 + k % 3] END
FROM (SELECT k, timestamptz '{EPOCH}' + ({_h("'d' || k")} % 1000) * interval '1 hour' AS t
      FROM generate_series(1, {{c}}) k) g"""),
    ("chat_message", f"""
INSERT INTO chat_message (id, chat_id, role, content, created_at)
SELECT id, k,
       CASE WHEN id % 997 = 0 THEN 'moderator' WHEN id % 1999 = 0 THEN NULL WHEN j % 2 = 1 THEN 'user' ELSE 'bot' END,
       CASE WHEN id % 1009 = 0 THEN NULL WHEN j % 3 = 0 THEN '🎅 Ho ho ho, ' || k ELSE 'message ' || j || ' of chat ' || k END,
       timestamptz '{EPOCH}' + ({_h("'d' || k")} % 1000) * interval '1 hour' + j * interval '1 minute'
FROM (SELECT (k - 1) * 6 + j AS id, k, j FROM generate_series(1, {{c}}) k, generate_series(1, 6) j) g"""),
    ("surprise_config", f"""
INSERT INTO surprise_config (id, calendar_id, day_number, kind, video_url, message, created_at)
SELECT k, CASE WHEN k % 401 = 0 THEN 1000000000 + k ELSE k END, 1 + k % 24,
       CASE WHEN k % 5 = 0 THEN 'game' END,
       CASE WHEN k % 97 = 0 THEN 'http://insecure.example.com/v/' || k
            WHEN k % 3 <> 1 THEN 'https://cdn.example.com/v/' || k END,
       CASE WHEN k % 3 = 1 THEN 'Frohe Weihnachten, ' || k || '!' END,
       timestamptz '{EPOCH}' + (k % 30) * interval '1 hour'
FROM generate_series(1, {{c}}) k"""),
    ("analytics_event", f"""
INSERT INTO analytics_event (id, account_id, event_type, payload, created_at)
SELECT id, i, (ARRAY['calendar_view', 'calendar_share', 'day_open', 'day_open', 'chat_start', 'chat_message',
                     'chat_end', 'streak'])[j],
       CASE WHEN id % 503 = 0 THEN jsonb_build_object('calendar_id', 'abc', 'chat_id', 'n/a', 'day', 'x', 'streak', '?')
            WHEN j = 8 AND i % 10 = 0 THEN NULL
            ELSE jsonb_build_object('calendar_id', i, 'chat_id', i, 'day', 1 + (i + j) % 24, 'ms', {_h("'e' || id")} % 5000,
                                    'streak', i % 24, 'score', i % 100) END,
       timestamptz '{EPOCH}' + ({_h("'f' || id")} % 2000) * interval '1 hour'
FROM (SELECT (i - 1) * 8 + j AS id, i, j FROM generate_series(1, {{n}}) i, generate_series(1, 8) j) g"""),
]


def generate(params: Mapping, database: str, users: int, seed: int, replace: bool = False,
             progress: Callable[[str, int], None] | None = None) -> tuple[dict[str, int], float]:
    """Fill the eight legacy tables for ``users`` accounts in one transaction; returns (rows per
    table, seconds). ``progress(table, rows)`` after each table. Refuses a database whose
    ``account`` table has rows unless ``replace`` (TRUNCATE first). Raises :class:`ConfigError`
    for a bad count, :class:`OpsError` when the legacy tables are missing (dropped by the contract)."""
    if users is None or users < 1:
        raise ConfigError([f"--users must be a positive integer, not {users}"])
    t0 = time.monotonic()
    with connect(params, dbname=database, application_name=tool_application_name("seed")) as conn:
        prepare_tables(conn, database, TABLES, 'account', replace, 'the legacy Advent',
                       'run `invoke deploy --db advent` first (the legacy data is seeded before the contract step).')
        conn.execute("SET LOCAL max_parallel_workers_per_gather = 0")
        conn.execute("SET LOCAL synchronous_commit = off")
        s = sql.Literal(str(seed)).as_string(conn)
        n, c = int(users), int(users) * 3 // 2 or 1
        counts = {}
        for table, stmt in _STATEMENTS:
            cur = conn.execute(stmt.replace("{s}", s).replace("{n}", str(n)).replace("{c}", str(c)))
            counts[table] = cur.rowcount
            if progress:
                progress(table, cur.rowcount)
            conn.execute(sql.SQL("SELECT setval(pg_get_serial_sequence({t}, 'id'), (SELECT max(id) FROM {i}))").format(
                t=sql.Literal(table), i=sql.Identifier(table)))
        conn.commit()
        conn.autocommit = True
        conn.execute("ANALYZE")
    return counts, time.monotonic() - t0
