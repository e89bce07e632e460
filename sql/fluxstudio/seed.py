"""``db.seed --db fluxstudio``: realistic, referentially consistent FluxStudio data, deterministic for a seed.

The same method as ``sql/syncscript/seed.py`` (generated inside PostgreSQL with ``generate_series``;
ids are ``md5(seed:kind:n)::uuid`` so every foreign key is recomputed, not looked up; ``random()``
after ``setseed()`` in one session with parallel query off). Volume per user, roughly what a design
studio's workspace holds: 1 organization per 10 users (3 teams, 5 service packages each), 1 project
per 2 users, each project with a conversation of 4 participants and 20 messages (replies threaded
under earlier ones, reactions on every third), 4 members, 4 milestones, 6 files (two of them a
second version of an earlier file), 2 invoices and 10 time entries; 5 notifications per user; a
portfolio with 3 items for every fifth user — about 41 rows per user in all.
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

TABLES = ["users", "organizations", "organization_members", "teams", "team_members", "projects",
          "conversations", "conversation_participants", "messages", "message_reactions", "notifications",
          "project_members", "project_milestones", "files", "file_permissions",
          "service_packages", "client_requests", "invoices", "time_entries", "portfolios", "portfolio_items"]

# {s} seed literal; {n} users, {no} organizations, {nt} teams (3 per organization), {np} projects.
# u(i) = md5({s}:u:i) for i in 1..n. A project p belongs to team ((p-1) % nt) + 1, whose organization is ((t-1)/3) + 1.
_U = "md5({s} || ':u:' || ({x}))::uuid"


def _u(expr: str) -> str:
    """The id of user number ``expr`` (1-based, any integer expression: wrapped into 1..n)."""
    return _U.replace("{x}", f"((({expr}) - 1) % {{n}} + {{n}}) % {{n}} + 1")


_STATEMENTS = [
    ("users", """
INSERT INTO users (id, email, name, password_hash, oauth_provider, oauth_id, user_type, avatar_url, phone, timezone,
                   preferences, is_active, email_verified, last_login, created_at, updated_at)
SELECT md5({s} || ':u:' || i)::uuid, 'user' || i || '.' || substr(md5({s} || ':e:' || i), 1, 6) || '@example.com',
       (ARRAY['Ada','Grace','Alan','Frida','Paul','Zaha','Dieter','Saul','Paula','Massimo'])[1 + (random() * 9)::int] || ' ' ||
       (ARRAY['Rand','Scher','Vignelli','Rams','Bass','Hadid','Kahlo','Glaser','Eames','Morris'])[1 + (random() * 9)::int],
       CASE WHEN i % 3 <> 0 THEN '$2b$12$' || substr(md5({s} || ':pw:' || i) || md5({s} || ':pw2:' || i), 1, 53) END,
       CASE WHEN i % 3 = 0 THEN 'google' END, CASE WHEN i % 3 = 0 THEN 'g-' || substr(md5({s} || ':g:' || i), 1, 20) END,
       CASE WHEN i = 1 THEN 'admin' WHEN i % 5 = 0 THEN 'designer' ELSE 'client' END,
       CASE WHEN random() < 0.6 THEN 'https://cdn.fluxstudio.example/avatars/' || i || '.png' END,
       CASE WHEN random() < 0.3 THEN '+1-555-' || lpad((i % 10000)::text, 4, '0') END,
       (ARRAY['UTC','Europe/London','Europe/Berlin','America/New_York','America/Los_Angeles','Asia/Tokyo'])[1 + (random() * 5)::int],
       jsonb_build_object('theme', (ARRAY['light','dark'])[1 + i % 2], 'digest', random() < 0.5),
       random() < 0.95, random() < 0.8, c + random() * interval '200 days', c, c + random() * interval '30 days'
FROM (SELECT i, timestamptz '{epoch}' + random() * interval '365 days' AS c FROM generate_series(1, {n}) i) g"""),
    ("organizations", """
INSERT INTO organizations (id, name, slug, description, industry, website, billing_email, subscription_tier, settings,
                           created_by, created_at, updated_at)
SELECT md5({s} || ':o:' || o)::uuid, 'Studio ' || o || ' ' || (ARRAY['Works','Collective','Labs','House'])[1 + o % 4],
       'studio-' || o, 'A FluxStudio client organization', (ARRAY['fashion','film','retail','music','tech'])[1 + o % 5],
       'https://studio' || o || '.example.com', 'billing@studio' || o || '.example.com',
       (ARRAY['free','pro','pro','enterprise'])[1 + o % 4], '{{}}', """ + _u("o * 10 - 9") + """, c, c
FROM (SELECT o, timestamptz '{epoch}' + random() * interval '30 days' AS c FROM generate_series(1, {no}) o) g"""),
    ("organization_members", """
INSERT INTO organization_members (id, organization_id, user_id, role, invited_by, joined_at, is_active)
SELECT md5({s} || ':om:' || i)::uuid, md5({s} || ':o:' || ((i - 1) % {no} + 1))::uuid, md5({s} || ':u:' || i)::uuid,
       CASE WHEN i <= {no} THEN 'owner' WHEN i % 7 = 0 THEN 'admin' WHEN i % 11 = 0 THEN 'guest' ELSE 'member' END,
       CASE WHEN i > {no} THEN md5({s} || ':u:' || ((i - 1) % {no} + 1))::uuid END,
       timestamptz '{epoch}' + random() * interval '365 days', random() < 0.97
FROM generate_series(1, {n}) i"""),
    ("teams", """
INSERT INTO teams (id, organization_id, name, description, lead_id, created_at, updated_at)
SELECT md5({s} || ':t:' || t)::uuid, md5({s} || ':o:' || ((t - 1) / 3 + 1))::uuid,
       (ARRAY['Brand','Motion','Product'])[1 + (t - 1) % 3], 'Team ' || t, """ + _u("(t - 1) / 3 + 1 + {no} * ((t - 1) % 3)") + """,
       c, c
FROM (SELECT t, timestamptz '{epoch}' + random() * interval '60 days' AS c FROM generate_series(1, {nt}) t) g"""),
    ("team_members", """
INSERT INTO team_members (id, team_id, user_id, role, permissions, joined_at)
SELECT md5({s} || ':tm:' || i)::uuid, md5({s} || ':t:' || (((i - 1) % {no}) * 3 + ((i - 1) / {no}) % 3 + 1))::uuid,
       md5({s} || ':u:' || i)::uuid, CASE WHEN i % 13 = 0 THEN 'viewer' ELSE 'member' END,
       jsonb_build_object('upload', i % 4 <> 0), timestamptz '{epoch}' + random() * interval '365 days'
FROM generate_series(1, {n}) i
ON CONFLICT (team_id, user_id) DO NOTHING"""),
    ("projects", """
INSERT INTO projects (id, organization_id, team_id, manager_id, client_id, name, slug, description, status, priority,
                      project_type, budget, start_date, due_date, completed_at, settings, created_at, updated_at)
SELECT md5({s} || ':p:' || p)::uuid, md5({s} || ':o:' || ((t - 1) / 3 + 1))::uuid, md5({s} || ':t:' || t)::uuid,
       """ + _u("p * 5") + """, """ + _u("p * 3 + 1") + """,
       (ARRAY['Rebrand','Launch film','Lookbook','Packaging','Website','Campaign'])[1 + p % 6] || ' ' || p, 'project-' || p,
       'Deliverables for project ' || p, st, (ARRAY['low','medium','medium','high','urgent'])[1 + p % 5],
       (ARRAY['branding','video','print','web'])[1 + p % 4], round((1000 + random() * 49000)::numeric, 2),
       d, d + (14 + (random() * 120)::int), CASE WHEN st = 'completed' THEN d::timestamptz + interval '100 days' END,
       '{{}}', d::timestamptz, d::timestamptz + random() * interval '20 days'
FROM (SELECT p, (p - 1) % {nt} + 1 AS t, (date '2025-01-01' + (random() * 330)::int) AS d,
             (ARRAY['planning','active','active','active','on_hold','completed','cancelled'])[1 + p % 7] AS st
      FROM generate_series(1, {np}) p) g"""),
    ("conversations", """
INSERT INTO conversations (id, organization_id, project_id, type, name, description, created_by, is_archived,
                           last_message_at, created_at, updated_at)
SELECT md5({s} || ':c:' || p)::uuid, md5({s} || ':o:' || (((p - 1) % {nt}) / 3 + 1))::uuid, md5({s} || ':p:' || p)::uuid,
       'project', 'project-' || p, 'Project channel', """ + _u("p * 5") + """, p % 17 = 0,
       c + interval '40 days', c, c
FROM (SELECT p, timestamptz '{epoch}' + random() * interval '300 days' AS c FROM generate_series(1, {np}) p) g"""),
    ("conversation_participants", """
INSERT INTO conversation_participants (id, conversation_id, user_id, role, joined_at, last_read_at, is_muted)
SELECT md5({s} || ':cp:' || p || ':' || k)::uuid, md5({s} || ':c:' || p)::uuid, """ + _u("p * 4 + k") + """,
       CASE WHEN k = 1 THEN 'owner' ELSE 'member' END, timestamptz '{epoch}' + random() * interval '300 days',
       CASE WHEN random() < 0.8 THEN timestamptz '{epoch}' + random() * interval '365 days' END, random() < 0.1
FROM generate_series(1, {np}) p, generate_series(1, 4) k
ON CONFLICT (conversation_id, user_id) DO NOTHING"""),
    ("messages", """
INSERT INTO messages (id, conversation_id, author_id, parent_id, content, message_type, attachments, metadata,
                      edited_at, deleted_at, created_at)
SELECT md5({s} || ':m:' || p || ':' || k)::uuid, md5({s} || ':c:' || p)::uuid, """ + _u("p * 4 + 1 + k % 4") + """,
       CASE WHEN k > 10 AND k % 3 = 0 THEN md5({s} || ':m:' || p || ':' || (k - 10))::uuid END,
       (ARRAY['Here is the latest draft.','Can we try a warmer palette?','Approved, ship it.',
              'Uploading the revised files now.','Love the motion on the intro!','Client asked for a second option.'])
         [1 + (random() * 5)::int] || ' #' || k,
       CASE WHEN k % 7 = 0 THEN 'file' ELSE 'text' END,
       CASE WHEN k % 7 = 0 THEN jsonb_build_array(jsonb_build_object('name', 'draft-' || k || '.pdf')) ELSE '[]' END,
       '{{}}', CASE WHEN random() < 0.05 THEN c + interval '5 minutes' END,
       CASE WHEN random() < 0.01 THEN c + interval '1 hour' END, c
FROM (SELECT p, k, timestamptz '{epoch}' + interval '1 hour' * (p % 5000) + interval '3 minutes' * k AS c
      FROM generate_series(1, {np}) p, generate_series(1, 20) k) g"""),
    ("message_reactions", """
INSERT INTO message_reactions (id, message_id, user_id, emoji, created_at)
SELECT md5({s} || ':mr:' || p || ':' || k)::uuid, md5({s} || ':m:' || p || ':' || k)::uuid, """ + _u("p * 4 + 1 + (k + 1) % 4") + """,
       (ARRAY['👍','🔥','🎉','👀','❤️'])[1 + (random() * 4)::int], timestamptz '{epoch}' + random() * interval '365 days'
FROM generate_series(1, {np}) p, generate_series(3, 20, 3) k"""),
    ("notifications", """
INSERT INTO notifications (id, user_id, type, title, body, data, priority, is_read, read_at, created_at)
SELECT md5({s} || ':n:' || i || ':' || k)::uuid, md5({s} || ':u:' || i)::uuid,
       (ARRAY['message','mention','file_shared','milestone_due','invoice_paid'])[k],
       (ARRAY['New message','You were mentioned','A file was shared','Milestone due soon','Invoice paid'])[k],
       'Open FluxStudio to see it.', jsonb_build_object('k', k), (ARRAY['low','normal','normal','high','urgent'])[k],
       r, CASE WHEN r THEN c + interval '2 hours' END, c
FROM (SELECT i, k, random() < 0.7 AS r, timestamptz '{epoch}' + random() * interval '365 days' AS c
      FROM generate_series(1, {n}) i, generate_series(1, 5) k) g"""),
    ("project_members", """
INSERT INTO project_members (id, project_id, user_id, role, hourly_rate, joined_at)
SELECT md5({s} || ':pm:' || p || ':' || k)::uuid, md5({s} || ':p:' || p)::uuid, """ + _u("p * 4 + k") + """,
       (ARRAY['manager','designer','contributor','client'])[k], CASE WHEN k < 4 THEN (60 + k * 25)::numeric END,
       timestamptz '{epoch}' + random() * interval '300 days'
FROM generate_series(1, {np}) p, generate_series(1, 4) k
ON CONFLICT (project_id, user_id) DO NOTHING"""),
    ("project_milestones", """
INSERT INTO project_milestones (id, project_id, title, description, due_date, status, position, completed_at, created_at)
SELECT md5({s} || ':ms:' || p || ':' || k)::uuid, md5({s} || ':p:' || p)::uuid,
       (ARRAY['Kick-off','Concepts','Revisions','Delivery'])[k], 'Milestone ' || k || ' of project ' || p,
       date '2025-01-01' + (p % 300) + k * 21, (ARRAY['completed','completed','in_progress','pending'])[k], k,
       CASE WHEN k <= 2 THEN timestamptz '{epoch}' + interval '1 day' * ((p % 300) + k * 20) END,
       timestamptz '{epoch}' + interval '1 day' * (p % 300)
FROM generate_series(1, {np}) p, generate_series(1, 4) k"""),
    ("files", """
INSERT INTO files (id, project_id, uploaded_by, name, storage_key, mime_type, size_bytes, checksum_sha256, version,
                   previous_version_id, is_current, metadata, created_at, deleted_at)
SELECT md5({s} || ':f:' || p || ':' || k)::uuid, md5({s} || ':p:' || p)::uuid, """ + _u("p * 4 + 2") + """,
       'asset-' || ((k - 1) % 4 + 1) || (ARRAY['.pdf','.png','.mp4','.psd'])[(k - 1) % 4 + 1],
       'projects/' || p || '/' || md5({s} || ':f:' || p || ':' || k),
       (ARRAY['application/pdf','image/png','video/mp4','image/vnd.adobe.photoshop'])[(k - 1) % 4 + 1],
       (10000 + random() * 50000000)::bigint, encode(sha256(({s} || ':fs:' || p || ':' || k)::bytea), 'hex'),
       CASE WHEN k > 4 THEN 2 ELSE 1 END, CASE WHEN k > 4 THEN md5({s} || ':f:' || p || ':' || (k - 4))::uuid END,
       k > 2, '{{}}', timestamptz '{epoch}' + interval '1 day' * (p % 300) + interval '1 hour' * k, NULL
FROM generate_series(1, {np}) p, generate_series(1, 6) k"""),
    ("file_permissions", """
INSERT INTO file_permissions (id, file_id, user_id, team_id, permission, granted_by, expires_at, created_at)
SELECT md5({s} || ':fp:' || p || ':' || k)::uuid, md5({s} || ':f:' || p || ':' || k)::uuid,
       CASE WHEN k % 2 = 1 THEN """ + _u("p * 4 + 4") + """ END,
       CASE WHEN k % 2 = 0 THEN md5({s} || ':t:' || ((p - 1) % {nt} + 1))::uuid END,
       (ARRAY['view','comment','edit','admin'])[1 + (k - 1) % 4], """ + _u("p * 4 + 2") + """,
       CASE WHEN k = 1 THEN timestamptz '{epoch}' + interval '400 days' END, timestamptz '{epoch}' + random() * interval '300 days'
FROM generate_series(1, {np}) p, generate_series(1, 6) k"""),
    ("service_packages", """
INSERT INTO service_packages (id, organization_id, name, description, category, price, currency, billing_period,
                              deliverables, estimated_days, is_active, created_at, updated_at)
SELECT md5({s} || ':sp:' || o || ':' || k)::uuid, md5({s} || ':o:' || o)::uuid,
       (ARRAY['Logo sprint','Brand system','Launch video','Website design','Design retainer'])[k],
       'Package ' || k || ' of studio ' || o, (ARRAY['branding','branding','video','web','retainer'])[k],
       (ARRAY[2500, 12000, 18000, 9000, 4000])[k]::numeric, 'USD',
       (ARRAY['one_time','one_time','one_time','one_time','monthly'])[k], jsonb_build_array('concepts', 'revisions'),
       (ARRAY[5, 30, 45, 25, NULL])[k], k <> 3 OR o % 2 = 0, timestamptz '{epoch}', timestamptz '{epoch}'
FROM generate_series(1, {no}) o, generate_series(1, 5) k"""),
    ("client_requests", """
INSERT INTO client_requests (id, organization_id, service_package_id, assigned_to, converted_project_id, contact_name,
                             contact_email, company, project_type, budget_range, timeline, description, status, source,
                             created_at, updated_at)
SELECT md5({s} || ':cr:' || r)::uuid, md5({s} || ':o:' || o)::uuid, md5({s} || ':sp:' || o || ':' || (1 + r % 5))::uuid,
       """ + _u("r * 5") + """, CASE WHEN st = 'won' THEN md5({s} || ':p:' || r)::uuid END,
       'Lead ' || r, 'lead' || r || '@prospect.example.com', 'Prospect ' || r,
       (ARRAY['branding','video','print','web'])[1 + r % 4], (ARRAY['<5k','5-20k','20-50k','50k+'])[1 + r % 4],
       (ARRAY['asap','1-3 months','3-6 months'])[1 + r % 3], 'We need help with a launch.', st,
       (ARRAY['website','referral','instagram','event'])[1 + r % 4], c, c + interval '3 days'
FROM (SELECT r, (r - 1) % {no} + 1 AS o, timestamptz '{epoch}' + random() * interval '365 days' AS c,
             (ARRAY['new','contacted','qualified','proposal','won','lost'])[1 + r % 6] AS st
      FROM generate_series(1, {np}) r) g"""),
    ("invoices", """
INSERT INTO invoices (id, organization_id, project_id, client_id, invoice_number, status, currency, subtotal, tax,
                      line_items, issued_on, due_on, paid_at, created_at, updated_at)
SELECT md5({s} || ':inv:' || p || ':' || k)::uuid, md5({s} || ':o:' || (((p - 1) % {nt}) / 3 + 1))::uuid,
       md5({s} || ':p:' || p)::uuid, """ + _u("p * 3 + 1") + """, 'INV-' || lpad(p::text, 6, '0') || '-' || k, st, 'USD',
       sub, round(sub * 0.2, 2), jsonb_build_array(jsonb_build_object('item', 'Design work', 'amount', sub)),
       d, d + 30, CASE WHEN st = 'paid' THEN d::timestamptz + interval '20 days' END, d::timestamptz, d::timestamptz
FROM (SELECT p, k, round((500 + random() * 20000)::numeric, 2) AS sub, date '2025-01-01' + (p % 300) + k * 30 AS d,
             (ARRAY['paid','paid','sent','overdue','draft','void'])[1 + (p + k) % 6] AS st
      FROM generate_series(1, {np}) p, generate_series(1, 2) k) g"""),
    ("time_entries", """
INSERT INTO time_entries (id, user_id, project_id, invoice_id, description, started_at, ended_at, minutes, billable,
                          hourly_rate, created_at)
SELECT md5({s} || ':te:' || p || ':' || k)::uuid, """ + _u("p * 4 + 1 + k % 3") + """, md5({s} || ':p:' || p)::uuid,
       CASE WHEN k <= 5 THEN md5({s} || ':inv:' || p || ':1')::uuid END,
       (ARRAY['Concepts','Revisions','Client call','Production','Export'])[1 + k % 5], st, st + m * interval '1 minute', m,
       k % 4 <> 0, (60 + (k % 3) * 25)::numeric, st
FROM (SELECT p, k, (15 + random() * 225)::int AS m,
             timestamptz '{epoch}' + interval '1 day' * (p % 300) + interval '1 day' * k AS st
      FROM generate_series(1, {np}) p, generate_series(1, 10) k) g"""),
    ("portfolios", """
INSERT INTO portfolios (id, user_id, title, slug, bio, is_public, theme, created_at, updated_at)
SELECT md5({s} || ':pf:' || i)::uuid, md5({s} || ':u:' || i)::uuid, 'Work of designer ' || i, 'designer-' || i,
       'Designer at FluxStudio.', i % 10 = 0, (ARRAY['default','minimal','bold'])[1 + i % 3], c, c
FROM (SELECT i, timestamptz '{epoch}' + random() * interval '365 days' AS c FROM generate_series(5, {n}, 5) i) g"""),
    ("portfolio_items", """
INSERT INTO portfolio_items (id, portfolio_id, project_id, cover_file_id, title, description, tags, position,
                             is_featured, created_at)
SELECT md5({s} || ':pi:' || i || ':' || k)::uuid, md5({s} || ':pf:' || i)::uuid, md5({s} || ':p:' || pr)::uuid,
       md5({s} || ':f:' || pr || ':3')::uuid, 'Case study ' || k, 'What we made for project ' || pr,
       ARRAY[(ARRAY['branding','motion','print','web'])[1 + k % 4]], k, k = 1,
       timestamptz '{epoch}' + random() * interval '365 days'
FROM (SELECT i, k, ((i + k * 7) - 1) % {np} + 1 AS pr FROM generate_series(5, {n}, 5) i, generate_series(1, 3) k) g"""),
]


def generate(params: Mapping, database: str, users: int, seed: int, replace: bool = False,
             progress: Callable[[str, int], None] | None = None) -> tuple[dict[str, int], float]:
    """Fill every FluxStudio table for ``users`` users in one transaction; returns (rows per table, seconds).
    ``progress(table, rows)`` is called after each table is loaded (a progress bar's feed).

    ``params``: libpq parameters without ``dbname``; ``users``: integer ≥ 1 (about 41 rows each);
    ``seed``: integer; the same seed and count give identical rows. Refuses a database whose ``users``
    table already has rows unless ``replace`` (then TRUNCATE ... CASCADE first).
    Raises :class:`ConfigError` for a bad count, :class:`OpsError` when the schema is missing or a
    foreign key would break (nothing is committed then).
    """
    if users is None or users < 1:
        raise ConfigError([f"--users must be a positive integer, not {users}"])
    n = int(users)
    sizes = {"n": n, "no": max(1, n // 10), "np": max(1, n // 2)}
    sizes["nt"] = 3 * sizes["no"]
    t0 = time.monotonic()
    with connect(params, dbname=database, application_name=tool_application_name("seed")) as conn:
        prepare_tables(conn, database, TABLES, 'users', replace, 'FluxStudio',
                       'run `invoke deploy --db fluxstudio` first.')
        conn.execute("SET LOCAL max_parallel_workers_per_gather = 0")
        conn.execute("SET LOCAL synchronous_commit = off")
        conn.execute("SET LOCAL maintenance_work_mem = '256MB'")
        # Foreign keys hold by construction; their per-row triggers are skipped (pg_restore
        # --disable-triggers does the same) and every key is checked once, set-wise, before commit.
        conn.execute("SET LOCAL session_replication_role = replica")
        conn.execute("SELECT setseed(%s)", (((seed * 2654435761) % 2**31) / 2**31,))
        s = sql.Literal(str(seed)).as_string(conn)
        counts = {}
        for table, stmt in _STATEMENTS:
            # PostgreSQL manual, "Populating a Database": secondary indexes are built after the load
            # (the ones behind a constraint stay: ON CONFLICT needs them).
            indexes = conn.execute(
                "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i "
                "WHERE i.indrelid = %s::regclass AND NOT i.indisunique AND NOT EXISTS "
                "(SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)", (f"public.{table}",)).fetchall()
            for name, _ in indexes:
                conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(*name.split("."))))
            cur = conn.execute(stmt.format(s=s, epoch=EPOCH, **sizes))
            counts[table] = cur.rowcount
            if progress:
                progress(table, cur.rowcount)
            for _, definition in indexes:
                conn.execute(definition)
        conn.execute("SET LOCAL session_replication_role = origin")
        check_foreign_keys(conn, database)
        conn.commit()
        conn.autocommit = True
        conn.execute("ANALYZE")
    return counts, time.monotonic() - t0


