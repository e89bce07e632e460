"""FutureSync (seed 001) on real PostgreSQL: row-level security as the application role, partitions kept
by pgops (premake, rows moved out of the default, retention with archive, an interrupted detach finished,
lock waits beside pgbench), GDPR export and erasure, and the performance seed."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import psycopg
import pytest

from ops.dsn import connect
from ops.migrations import runner
from ops.migrations.runner import Target
from ops.partitions.plan import add_months, month_start, partition_name
from ops.seeds import load_seeder
from ops.settings import DEFAULT_SQL_ROOT
from ops.targets import migrations_dir

from .conftest import REPO, invoke, query

pytestmark = pytest.mark.integration
SEED = load_seeder(DEFAULT_SQL_ROOT, "futuresync")
PGBENCH = "/usr/lib/postgresql/15/bin/pgbench"


@pytest.fixture
def fs(pg, params, dbname):
    runner.migrate(Target(dbname, params, migrations_dir(DEFAULT_SQL_ROOT, "futuresync")))
    return dbname


def dsn_of(pg, dbname) -> str:
    p = pg.conninfo()
    return f"host=127.0.0.1 port={p['port']} user={p['user']} passfile={p['passfile']} dbname={dbname}"


def uid(n: int) -> str:
    return str(uuid.UUID(int=n))


def setup_tenants(params, db):
    """Two organizations; users 1 (owner of A), 2 (member of A), 3 (owner of B); a vision, an action with a
    time entry, an event each."""
    q = lambda text, args=None: query(params, db, text, args)  # noqa: E731
    for n in (1, 2, 3):
        q("INSERT INTO users (id, email, password_hash, name) VALUES (%s, %s, 'x', %s)", (uid(n), f"u{n}@ex.com", f"User {n}"))
        q("INSERT INTO visions (id, user_id, category, title) VALUES (%s, %s, 'health', 'v')", (uid(100 + n), uid(n)))
        q("INSERT INTO daily_actions (id, user_id, vision_id, action_date, description) VALUES (%s, %s, %s, current_date, 'a')",
          (uid(200 + n), uid(n), uid(100 + n)))
        q("INSERT INTO time_entries (daily_action_id, started_at) VALUES (%s, now())", (uid(200 + n),))
        q("INSERT INTO user_progress (user_id) VALUES (%s)", (uid(n),))
        q("INSERT INTO analytics_events (user_id, organization_id, event_name, occurred_at) VALUES (%s, %s, 'page.view', now())",
          (uid(n), uid(900 if n < 3 else 901)))
    q("INSERT INTO organizations (id, name, slug, created_by) VALUES (%s, 'A', 'org-a', %s), (%s, 'B', 'org-b', %s)",
      (uid(900), uid(1), uid(901), uid(3)))
    q("INSERT INTO organization_members (organization_id, user_id, role) VALUES (%s, %s, 'owner'), (%s, %s, 'member'), "
      "(%s, %s, 'owner')", (uid(900), uid(1), uid(900), uid(2), uid(901), uid(3)))
    q("INSERT INTO organization_members (organization_id, invited_email, invited_by, invitation_status) "
      "VALUES (%s, 'new@ex.com', %s, 'pending')", (uid(900), uid(2)))


def as_app(params, db, user: str):
    conn = connect(params, dbname=db, autocommit=True)
    conn.execute("SET ROLE futuresync_app")
    conn.execute("SELECT set_config('app.user_id', %s, false)", (user,))
    return conn


def test_rls_user_isolation_and_tenancy(params, fs):
    setup_tenants(params, fs)
    with as_app(params, fs, uid(2)) as c:
        assert c.execute("SELECT current_user, rolbypassrls FROM pg_roles WHERE rolname = current_user").fetchone() == \
            ("futuresync_app", False)
        # a user sees only their own rows
        assert c.execute("SELECT user_id::text FROM visions").fetchall() == [(uid(2),)]
        assert c.execute("SELECT user_id::text FROM daily_actions").fetchall() == [(uid(2),)]
        assert c.execute("SELECT count(*) FROM time_entries").fetchone() == (1,)
        assert c.execute("SELECT user_id::text FROM analytics_events").fetchall() == [(uid(2),)]
        # a member sees only their organization's
        assert c.execute("SELECT slug FROM organizations").fetchall() == [("org-a",)]
        assert {r[0] for r in c.execute("SELECT organization_id::text FROM organization_members")} == {uid(900)}
        assert sorted(r[0] for r in c.execute("SELECT id::text FROM users")) == [uid(1), uid(2)]
        # cross-tenant reads return nothing
        assert c.execute("SELECT count(*) FROM organizations WHERE id = %s", (uid(901),)).fetchone() == (0,)
        assert c.execute("SELECT count(*) FROM users WHERE id = %s", (uid(3),)).fetchone() == (0,)
        assert c.execute("SELECT count(*) FROM visions WHERE user_id = %s", (uid(3),)).fetchone() == (0,)
        # writes to another tenant's rows: updates touch nothing, inserts are refused with 42501
        assert c.execute("UPDATE visions SET title = 'x' WHERE user_id = %s", (uid(3),)).rowcount == 0
        assert c.execute("UPDATE organizations SET name = 'x' WHERE id = %s", (uid(901),)).rowcount == 0
        for stmt, args in [("INSERT INTO visions (user_id, category, title) VALUES (%s, 'career', 'x')", (uid(3),)),
                           ("INSERT INTO organization_members (organization_id, user_id) VALUES (%s, %s)", (uid(901), uid(2))),
                           ("INSERT INTO analytics_events (user_id, event_name, occurred_at) VALUES (%s, 'x', now())", (uid(3),)),
                           ("UPDATE visions SET user_id = %s WHERE user_id = current_setting('app.user_id')::uuid", (uid(3),))]:
            with pytest.raises(psycopg.errors.InsufficientPrivilege) as exc:
                c.execute(stmt, args)
            assert exc.value.sqlstate == "42501"
        # a plain member cannot change the organization; the owner can
        assert c.execute("UPDATE organizations SET name = 'x' WHERE id = %s", (uid(900),)).rowcount == 0
    with as_app(params, fs, uid(1)) as c:
        assert c.execute("UPDATE organizations SET name = 'A2' WHERE id = %s", (uid(900),)).rowcount == 1
        assert c.execute("SELECT count(*) FROM analytics_events").fetchone() == (2,)  # admin: the org's events
        assert c.execute("SELECT count(*) FROM audit_log WHERE table_name = 'organizations'").fetchone()[0] >= 1
    # audit trigger: who/what/when/old/new, no password hash
    row = query(params, fs, "SELECT actor_user_id::text, operation, old_data->>'name', new_data->>'name', changed_columns, "
                            "new_data ? 'password_hash' FROM audit_log WHERE table_name = 'organizations' AND operation = 'UPDATE'")
    assert row[0][:4] == (uid(1), "UPDATE", "A", "A2") and "name" in row[0][4]
    assert query(params, fs, "SELECT bool_or(new_data ? 'password_hash') FROM audit_log WHERE table_name = 'users'") == [(False,)]


def test_rls_holds_for_direct_reads_of_partitions(params, fs):
    setup_tenants(params, fs)
    part = partition_name("analytics_events", month_start(datetime.now(timezone.utc)))
    with as_app(params, fs, uid(2)) as c:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute(f"SELECT * FROM {part}")  # no grant on a partition
    query(params, fs, f"GRANT SELECT ON {part}, audit_log_default TO futuresync_app")  # even with one, nothing shows
    with as_app(params, fs, uid(2)) as c:
        assert c.execute(f"SELECT count(*) FROM {part}").fetchone() == (0,)
        assert c.execute("SELECT count(*) FROM analytics_events").fetchone() == (1,)  # through the parent: own row
    assert query(params, fs, f"SELECT count(*) FROM {part}") == [(3,)]


def _partitions(params, db, table):
    return {r[0]: r[1] for r in query(params, db,
            "SELECT c.relname, i.inhdetachpending FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass", (table,))}


def test_premake_rows_in_default_moved_out_and_retention_with_archive(pg, params, fs, tmp_path):
    now = datetime.now(timezone.utc)
    cur = month_start(now)
    far = add_months(cur, 6)
    # rows in audit_log's default: a month that premake will not create, and a very old one past retention
    query(params, fs, "INSERT INTO audit_log (logged_at, table_name, operation) VALUES (%s, 't', 'INSERT'), (%s, 't', 'INSERT'),"
                      " ('2001-01-05', 't', 'INSERT')", (f"{far} 10:00+00", f"{far} 11:00+00"))
    # an old analytics partition with rows, beyond its 13 months of retention
    old = add_months(cur, -20)
    old_name = partition_name("analytics_events", old)
    query(params, fs, f"CREATE TABLE {old_name} PARTITION OF analytics_events FOR VALUES FROM ('{old} 00:00+00') TO "
                      f"('{add_months(old, 1)} 00:00+00')")
    query(params, fs, "INSERT INTO analytics_events (user_id, event_name, occurred_at) SELECT gen_random_uuid(), 'page.view', "
                      "%s::timestamptz + g * interval '1 hour' FROM generate_series(1, 50) g", (f"{old} 00:00+00",))
    repo = tmp_path / "repo"
    dsn = dsn_of(pg, fs)
    shown = invoke(["db.partitions", "--dsn", dsn, "--db", "futuresync", "--json"])
    assert shown.returncode == 0, shown.stderr
    tables = {t["table"]: t for t in json.loads(shown.stdout)[fs]["tables"]}
    assert tables["public.audit_log"]["default_rows"] == 3 and tables["public.analytics_events"]["months_ahead"] == 3
    kinds = [a["kind"] for a in tables["public.analytics_events"]["actions"]]
    assert kinds == ["detach", "archive", "drop"] or kinds == ["detach", "drop"]
    refused = invoke(["db.partitions", "--dsn", dsn, "--db", "futuresync", "--apply", "--archive", "--repository", f"file://{repo}"])
    assert refused.returncode == 2 and "--yes" in refused.stderr  # destructive steps need a confirmation
    assert old_name in _partitions(params, fs, "analytics_events")
    res = invoke(["db.partitions", "--dsn", dsn, "--db", "futuresync", "--apply", "--archive", "--yes",
                  "--repository", f"file://{repo}", "--json"])
    assert res.returncode == 0, res.stderr
    # the far month was created with its two rows moved out of the default; the 2001 rows stay (reported)
    far_name = partition_name("audit_log", far)
    assert far_name in _partitions(params, fs, "audit_log")
    assert query(params, fs, f"SELECT count(*) FROM {far_name}") == [(2,)]
    assert query(params, fs, "SELECT count(*) FROM audit_log_default") == [(1,)]
    # retention: detached (CONCURRENTLY: no default partition), archived with a manifest, dropped
    assert old_name not in _partitions(params, fs, "analytics_events")
    assert query(params, fs, "SELECT to_regclass(%s)", (old_name,)) == [(None,)]
    manifests = list(repo.glob(f"partitions/{fs}/public.analytics_events/{old_name}-*/manifest.json"))
    assert len(manifests) == 1
    m = json.loads(manifests[0].read_text())
    dump = manifests[0].parent / "dump.pgdump"
    import hashlib
    assert m["rows"] == 50 and m["sha256"] == hashlib.sha256(dump.read_bytes()).hexdigest()
    listed = subprocess.run(["/usr/lib/postgresql/15/bin/pg_restore", "--list", str(dump)], capture_output=True, text=True)
    assert old_name in listed.stdout
    # new partitions carry forced RLS, no application grant; the second run has nothing to do
    assert all(r.passed for r in runner.verify(Target(fs, params, migrations_dir(DEFAULT_SQL_ROOT, "futuresync"))))
    again = json.loads(invoke(["db.partitions", "--dsn", dsn, "--db", "futuresync", "--json"]).stdout)[fs]
    assert all(t["actions"] == [] for t in again["tables"])


def test_interrupted_detach_is_finished_by_the_next_run(pg, params, fs):
    cur = month_start(datetime.now(timezone.utc))
    old = add_months(cur, -30)
    name = partition_name("analytics_events", old)
    query(params, fs, f"CREATE TABLE {name} PARTITION OF analytics_events FOR VALUES FROM ('{old} 00:00+00') TO "
                      f"('{add_months(old, 1)} 00:00+00')")
    holder = connect(params, dbname=fs)
    holder.execute("SELECT count(*) FROM analytics_events")  # an open transaction the second phase waits for
    detacher = connect(params, dbname=fs, autocommit=True)
    pid = detacher.info.backend_pid
    t = threading.Thread(target=lambda: _swallow(detacher, f"ALTER TABLE analytics_events DETACH PARTITION {name} CONCURRENTLY"))
    t.start()
    for _ in range(100):
        if _partitions(params, fs, "analytics_events").get(name):
            break
        time.sleep(0.1)
    query(params, fs, "SELECT pg_terminate_backend(%s)", (pid,))
    t.join()
    holder.rollback()
    holder.close()
    assert _partitions(params, fs, "analytics_events")[name] is True  # awaiting FINALIZE
    plan = json.loads(invoke(["db.partitions", "--dsn", dsn_of(pg, fs), "--db", "futuresync", "--json"]).stdout)[fs]
    actions = {t["table"]: t["actions"] for t in plan["tables"]}["public.analytics_events"]
    assert actions[0]["kind"] == "finalize" and actions[0]["partition"] == name
    res = invoke(["db.partitions", "--dsn", dsn_of(pg, fs), "--db", "futuresync", "--apply", "--yes"])
    assert res.returncode == 0, res.stderr
    assert name not in _partitions(params, fs, "analytics_events")
    assert query(params, fs, "SELECT to_regclass(%s)", (name,)) == [(None,)]


def _swallow(conn, stmt):
    try:
        conn.execute(stmt)
    except psycopg.Error:
        pass


def test_partitions_apply_beside_pgbench_waits_no_longer_than_the_lock_timeout(pg, params, fs, tmp_path):
    """pgbench writes and reads both partitioned tables while db.partitions creates twelve months ahead and
    detaches old ones; the longest transaction pgbench logs stays under the lock timeout plus slack."""
    cur = month_start(datetime.now(timezone.utc))
    for i in range(14, 20):  # old partitions for retention to detach (CONCURRENTLY) and drop
        m = add_months(cur, -i)
        query(params, fs, f"CREATE TABLE {partition_name('analytics_events', m)} PARTITION OF analytics_events "
                          f"FOR VALUES FROM ('{m} 00:00+00') TO ('{add_months(m, 1)} 00:00+00')")
    query(params, fs, "COMMENT ON TABLE analytics_events IS 'pgops:partitions {\"premake\": 12, \"retention_months\": 13}'")
    query(params, fs, "COMMENT ON TABLE audit_log IS 'pgops:partitions {\"premake\": 12, \"retention_months\": 84}'")
    script = tmp_path / "traffic.sql"
    script.write_text(
        "\\set u random(1, 1000)\n"
        "INSERT INTO analytics_events (user_id, event_name, occurred_at) VALUES (md5(:u::text)::uuid, 'page.view', now());\n"
        "INSERT INTO audit_log (table_name, operation, row_id) VALUES ('bench', 'INSERT', :u);\n"
        "SELECT count(*) FROM analytics_events WHERE user_id = md5(:u::text)::uuid AND occurred_at > now() - interval '1 day';\n")
    p = pg.conninfo()
    lock_timeout = 1.0
    bench = subprocess.Popen([PGBENCH, "-n", "-c", "4", "-T", "12", "-f", str(script), "-l", "--log-prefix",
                              str(tmp_path / "pgbench_log"), "-h", "127.0.0.1", "-p", str(p["port"]), "-U", "postgres", fs],
                             env={"PGPASSFILE": str(p["passfile"]), "PATH": "/usr/bin:/bin"},
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    time.sleep(2)
    res = invoke(["db.partitions", "--dsn", dsn_of(pg, fs), "--db", "futuresync", "--apply", "--yes",
                  "--lock-timeout", str(lock_timeout), "--json"])
    out, err = bench.communicate(timeout=60)
    assert res.returncode == 0, res.stderr
    assert bench.returncode == 0, err
    applied = json.loads(res.stdout)[fs]["applied"]
    assert sum(a["kind"] == "create" for a in applied) >= 16 and sum(a["kind"] == "drop" for a in applied) == 6
    latencies = [int(line.split()[2]) for f in tmp_path.glob("pgbench_log*") for line in f.read_text().splitlines()]
    assert len(latencies) > 100
    worst = max(latencies) / 1e6
    print(f"pgbench: {len(latencies)} transactions, longest {worst:.3f} s (lock_timeout {lock_timeout} s)")
    assert worst < lock_timeout + 0.5, f"a pgbench transaction waited {worst:.3f} s"
    assert re.search(r"number of failed transactions: 0", out)


def test_gdpr_export_and_erase(pg, params, fs, tmp_path):
    setup_tenants(params, fs)
    query(params, fs, "UPDATE users SET display_name = 'two' WHERE id = %s", (uid(2),))  # an audit row about user 2
    dsn = dsn_of(pg, fs)

    def export(user):
        out = tmp_path / f"export-{uuid.uuid4().hex[:6]}"
        res = invoke(["gdpr.export", "--dsn", dsn, "--db", "futuresync", "--user-id", user, "--out", str(out), "--json"])
        assert res.returncode == 0, res.stderr
        return out, json.loads((out / "manifest.json").read_text())
    before_other = {t: query(params, fs, f"SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) FROM {t} t "
                                         f"WHERE {'id' if t == 'users' else 'user_id'} <> %s", (uid(2),))
                    for t in ("users", "visions", "daily_actions", "analytics_events", "user_progress")}
    out, manifest = export(uid(2))
    rows = {t: v["rows"] for t, v in manifest["tables"].items()}
    # every table that references the user, directly, through a chain, or by declared ownership
    assert rows["public.users"] == 1 and rows["public.visions"] == 1 and rows["public.daily_actions"] == 1
    assert rows["public.time_entries"] == 1  # time_entries → daily_actions → users
    assert rows["public.user_progress"] == 1 and rows["public.organization_members"] == 2  # own + invited by
    assert rows["public.analytics_events"] == 1 and rows["public.audit_log"] >= 5
    assert (out / "manifest.json").stat().st_mode & 0o077 == 0
    assert json.loads((out / "public.users.json").read_text())[0]["email"] == "u2@ex.com"
    refused = invoke(["gdpr.erase", "--dsn", dsn, "--db", "futuresync", "--user-id", uid(2)])
    assert refused.returncode == 2 and "nothing was changed" in refused.stderr
    res = invoke(["gdpr.erase", "--dsn", dsn, "--db", "futuresync", "--user-id", uid(2), "--yes", "--json"])
    assert res.returncode == 0, res.stderr
    result = json.loads(res.stdout)
    assert result["rows_found_after"] == 0 and "years" in result["backups"]
    _, after = export(uid(2))
    assert after["rows"] == 0
    # the erasure is in the audit log, under the pseudonym; audit rows about the user were kept, pseudonymized
    rec = query(params, fs, "SELECT row_id, new_data->'tables' ? 'public.users' FROM audit_log WHERE operation = 'GDPR_ERASE'")
    assert rec == [(result["pseudonym"], True)]
    assert query(params, fs, "SELECT count(*) FROM audit_log WHERE subject_user_id = %s", (result["pseudonym"],))[0][0] >= 5
    assert query(params, fs, "SELECT count(*) FROM audit_log WHERE old_data::text LIKE '%%u2@ex.com%%' "
                             "OR new_data::text LIKE '%%u2@ex.com%%'") == [(0,)]
    # the invitation user 2 sent stays, without them; other users' rows are untouched
    assert query(params, fs, "SELECT invited_by FROM organization_members WHERE invited_email = 'new@ex.com'") == [(None,)]
    for t, fp in before_other.items():
        assert query(params, fs, f"SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) FROM {t} t "
                                 f"WHERE {'id' if t == 'users' else 'user_id'} <> %s", (uid(2),)) == fp, t
    again = invoke(["gdpr.erase", "--dsn", dsn, "--db", "futuresync", "--user-id", uid(2), "--yes"])
    assert again.returncode == 12 and "nothing to erase" in again.stderr and "Traceback" not in again.stderr


def test_seed_is_deterministic_and_fills_fourteen_months(params, fs):
    counts, _ = SEED.generate(params, fs, 60, seed=7)
    assert set(counts) == set(SEED.TABLES) and all(counts[t] > 0 for t in SEED.TABLES)
    assert counts["users"] == 60 and counts["analytics_events"] == 1200
    months = query(params, fs, "SELECT count(DISTINCT date_trunc('month', occurred_at)) FROM analytics_events")[0][0]
    assert months == 14
    assert query(params, fs, "SELECT count(*) FROM audit_log_default") == [(0,)]

    def fingerprint():
        return {t: query(params, fs, f"SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) FROM {t} t")[0][0]
                for t in ("users", "visions", "daily_actions", "analytics_events")}
    first = fingerprint()
    SEED.generate(params, fs, 60, seed=7, replace=True)
    assert fingerprint() == first
    assert all(r.passed for r in runner.verify(Target(fs, params, migrations_dir(DEFAULT_SQL_ROOT, "futuresync"))))


def test_health_reports_partitions_ahead_and_rows_in_default(pg, params, fs):
    def checks():
        res = invoke(["health", "--dsn", dsn_of(pg, fs), "--db", "futuresync", "--format", "json"])
        assert res.stdout, res.stderr
        rows = json.loads(res.stdout)["checks"]
        return {(r["id"], r["node"]): r for r in rows if r["id"].startswith("partition")}
    ok = checks()
    assert ok[("partitions_ahead", f"primary/{fs}/analytics_events")]["status"] == "ok"
    assert ok[("partitions_ahead", f"primary/{fs}/analytics_events")]["value"] == 3
    assert ok[("partition_default_rows", f"primary/{fs}/audit_log")]["status"] == "ok"
    cur = month_start(datetime.now(timezone.utc))
    for i in (1, 2, 3):
        query(params, fs, f"DROP TABLE {partition_name('analytics_events', add_months(cur, i))}")
    query(params, fs, "INSERT INTO audit_log (logged_at, table_name, operation) VALUES ('2001-01-01', 't', 'INSERT')")
    bad = checks()
    assert bad[("partitions_ahead", f"primary/{fs}/analytics_events")]["status"] == "critical"
    assert bad[("partition_default_rows", f"primary/{fs}/audit_log")]["status"] == "warning"
    assert bad[("partitions_ahead", f"primary/{fs}/analytics_events")]["runbook"] == "runbooks/partitions.md"


def _waiting(params, db, app_like: str) -> int:
    return query(params, db, "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock' "
                             "AND application_name LIKE %s", (db, app_like))[0][0]


def _until(cond, what: str, limit: float = 60.0):
    deadline = time.monotonic() + limit
    while not cond():
        assert time.monotonic() < deadline, f"never reached: {what}"
        time.sleep(0.02)


@pytest.mark.parametrize("writes_to", ["the month being attached", "the current month"])
def test_partition_maintenance_never_fails_an_application_write(pg, params, fs, writes_to):
    """Issue 19 §6: rows for a month without a partition sit in audit_log's default partition; while
    db.partitions creates that month (moving them out, then ATTACH, which takes ACCESS EXCLUSIVE on the
    default partition) the application keeps inserting through ordinary psycopg connections. An insert
    routed to the default partition before the ATTACH committed used to fail ("violates partition
    constraint"); now writers wait for the short locked step and every write succeeds.

    The interleaving is forced, not timed: a reader holds the default partition so the maintenance
    step must wait inside its transaction; the writers start while it waits, and the reader lets go
    once every writer is blocked too."""
    cur = month_start(datetime.now(timezone.utc))
    target = add_months(cur, 4)  # beyond premake: only rows in the default make the plan create it
    month = target if writes_to == "the month being attached" else cur
    query(params, fs, "INSERT INTO audit_log (table_name, operation, row_id, logged_at) "
                      "SELECT 'before', 'INSERT', g::text, %s::timestamptz + g * interval '1 minute' "
                      "FROM generate_series(1, 50) g", (f"{target} 00:00+00",))
    reader = connect(params, dbname=fs)
    reader.execute("SELECT count(*) FROM audit_log_default")  # ACCESS SHARE until rollback
    maint = subprocess.Popen([str(Path(sys.executable).parent / "invoke"), "db.partitions", "--dsn", dsn_of(pg, fs),
                              "--db", "futuresync", "--apply", "--yes", "--lock-timeout", "120", "--json"],
                             cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env={k: v for k, v in os.environ.items() if not k.startswith("PGOPS_")})
    failures, done = [], []
    writers = 4

    def writer(n: int):
        with connect(params, dbname=fs, autocommit=True, application_name=f"app-writer-{n}") as conn:
            for i in range(40):  # psycopg defaults: prepared server-side from the 5th execution
                try:
                    conn.execute("INSERT INTO audit_log (table_name, operation, row_id, logged_at) "
                                 "VALUES ('app', 'INSERT', %s, %s::timestamptz + %s * interval '1 second')",
                                 (f"{n}-{i}", f"{month} 00:00+00", n * 100 + i))
                    done.append(1)
                except psycopg.Error as exc:
                    failures.append(str(exc).splitlines()[0])
    threads = [threading.Thread(target=writer, args=(n,)) for n in range(writers)]
    try:
        _until(lambda: _waiting(params, fs, "pgops/% partitions") == 1, "db.partitions waiting on the default partition")
        for t in threads:
            t.start()
        _until(lambda: len(done) + len(failures) == writers * 40 or _waiting(params, fs, "app-writer-%") == writers,
               "every writer blocked or finished")
    finally:
        reader.rollback()
        reader.close()
        for t in threads:
            t.join()
        out, err = maint.communicate(timeout=120)
    assert maint.returncode == 0, err
    applied = json.loads(out)[fs]["applied"]
    assert {"kind": "create", "partition": partition_name("audit_log", target), "result": {"rows_moved": 50}} in applied
    assert failures == [] and len(done) == writers * 40
    part = partition_name("audit_log", month)
    assert query(params, fs, f"SELECT count(*) FROM {part} WHERE table_name = 'app'") == [(writers * 40,)]
    assert query(params, fs, "SELECT count(*) FROM audit_log_default") == [(0,)]
