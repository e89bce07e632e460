"""Seed 004 (Advent) on real PostgreSQL: expand (legacy + v2 side by side), transfer online,
validate, contract — the issue's "Done when": kill -9 mid-batch resumes without duplicates or gaps,
legacy writes during the transfer reach v2, quarantined rows carry their reason, one changed row
fails validation naming the mapping and column, the contract is refused before a passing validation
and applied after (with a backup first)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from ops.dsn import connect
from ops.errors import ValidationGateClosed
from ops.migrations import runner
from ops.migrations.runner import Target
from ops.seeds import load_seeder
from ops.settings import DEFAULT_SQL_ROOT
from ops.tasks.transfer import load_spec
from ops.transfer.engine import transfer
from ops.transfer.validate import validate

from .conftest import REPO, invoke, query

pytestmark = pytest.mark.integration
SPEC = load_spec(DEFAULT_SQL_ROOT, "advent")
SEED = load_seeder(DEFAULT_SQL_ROOT, "advent")


def dsn(pg, dbname):
    p = pg.conninfo()
    return f"host=127.0.0.1 port={p['port']} user=postgres dbname={dbname} passfile={p['passfile']}"


@pytest.fixture
def advent(pg, params, dbname):
    """An Advent database deployed up to the gate (legacy + v2), seeded with 300 legacy accounts."""
    t = Target(dbname, params, DEFAULT_SQL_ROOT / "advent" / "migrations")
    res = runner.migrate(t)
    assert [a.version for a in res.applied] == [0, 1, 2, 3, 4, 5, 6]
    assert [w["version"] for w in res.waiting] == [7]
    SEED.generate(params, dbname, 300, 42)
    return t


def legacy_minus_quarantine(params, dbname, source, target, mapping):
    return query(params, dbname, f"SELECT (SELECT count(*) FROM {source}) - (SELECT count(*) FROM pgops.transfer_quarantine "
                                 f"WHERE mapping = %s), (SELECT count(*) FROM {target})", (mapping,))[0]


def test_contract_is_gated_until_a_passing_validation_then_applied(pg, params, dbname, advent, tmp_path):
    st = runner.status(advent)
    assert [r.state for r in st.rows if r.version == 7] == ["waiting for validation"]
    assert "no transfer" in st.waiting[0]["reason"]
    with pytest.raises(ValidationGateClosed, match="007_contract_drop_legacy"):
        runner.migrate(advent, to=7)
    cli = invoke(["db.migrate", "--dsn", dsn(pg, dbname), "--db", "advent", "--to", "7"])
    assert cli.returncode == 14 and "no transfer has been recorded" in cli.stderr, cli.stderr
    status = invoke(["db.status", "--dsn", dsn(pg, dbname), "--db", "advent"])
    assert status.returncode == 0 and "waiting for validation" in status.stdout

    transfer(params, dbname, SPEC, batch_size=1000)
    plain = invoke(["db.migrate", "--dsn", dsn(pg, dbname), "--db", "advent", "--json"])
    assert plain.returncode == 0, plain.stderr
    out = json.loads(plain.stdout)[0]
    assert out["applied"] == [] and "no validation newer than transfer run" in out["waiting_for_validation"][0]["reason"]

    v = invoke(["db.validate", "--dsn", dsn(pg, dbname), "--db", "advent"])
    assert v.returncode == 0, v.stderr
    assert runner.status(advent).waiting == ()
    # a legacy write after the validation closes the gate again (the trigger captured it)
    query(params, dbname, "UPDATE account SET name = 'late edit' WHERE id = 1")
    assert "legacy write(s) were captured" in runner.status(advent).waiting[0]["reason"]
    assert invoke(["db.transfer", "--dsn", dsn(pg, dbname), "--db", "advent", "--resume"]).returncode == 0
    assert invoke(["db.validate", "--dsn", dsn(pg, dbname), "--db", "advent"]).returncode == 0

    repo = (tmp_path / "repo").as_uri()
    refused = invoke(["db.migrate", "--dsn", dsn(pg, dbname), "--db", "advent", "--repository", repo])
    assert refused.returncode == 2 and "--yes" in refused.stderr  # destructive: plan first
    assert query(params, dbname, "SELECT to_regclass('account') IS NOT NULL") == [(True,)]
    done = invoke(["db.migrate", "--dsn", dsn(pg, dbname), "--db", "advent", "--repository", repo, "--yes"])
    assert done.returncode == 0, done.stderr
    assert "pre-contract backup" in done.stdout
    assert query(params, dbname, "SELECT to_regclass('account'), max(version) FROM pgops.migrations") == [(None, 7)]
    assert all(r.passed for r in runner.verify(advent))
    backups = json.loads(invoke(["backup.list", "--dsn", dsn(pg, dbname), "--repository", repo, "--json"]).stdout)
    assert len(backups) == 1 and backups[0]["ledger_version"] == 6


def test_quarantined_rows_carry_their_reason(params, dbname, advent):
    rep = transfer(params, dbname, SPEC, batch_size=250)
    assert rep.as_dict()["quarantined"] > 0
    reasons = dict(query(params, dbname, "SELECT mapping || ':' || source_key, reason FROM pgops.transfer_quarantine"))
    assert 'null value in column "email"' in reasons["account:97"]  # NULL email
    assert "account_v2_email_key" in reasons["account:89"]  # same email as 88 but for case and spaces
    assert "child_profile_v2_account_id_fkey" in reasons["child:101"]  # orphan
    assert "child_profile_v2_birth_date_check" in reasons["child:211"]
    assert "advent_calendar_v2_child_year_key" in reasons["calendar:451"]  # a second 2025 calendar of child 50
    assert "calendar_day_v2_day_number_check" in reasons[f"calendar_day:{199 * 24 + 24}"]  # a 25th day
    assert "surprise_video_url_check" in reasons["surprise_video:388"]  # plain http (its collection arrived)
    assert "invalid input syntax for type bigint" in reasons["day_analytics:2012"]  # payload id 'abc'
    assert query(params, dbname, "SELECT count(*) FROM pgops.transfer_quarantine WHERE row_data IS NULL "
                                 "OR sqlstate IS NULL OR reason = ''") == [(0,)]
    # Unicode arrives intact
    assert query(params, dbname, "SELECT display_name FROM account_v2 WHERE id = 7") == [("Zoë Åström",)]
    assert query(params, dbname, "SELECT display_name FROM account_v2 WHERE id = 8") == [("山田 花子",)]
    for source, target, mapping in (("account", "account_v2", "account"), ("calendar_day", "calendar_day_v2", "calendar_day")):
        a, b = legacy_minus_quarantine(params, dbname, source, target, mapping)
        assert a == b
    # idempotent: a second full run changes nothing and keeps one quarantine row per key
    before = query(params, dbname, "SELECT count(*), md5(string_agg(a::text, '' ORDER BY id)) FROM account_v2 a")
    transfer(params, dbname, SPEC, batch_size=77)
    assert query(params, dbname, "SELECT count(*), md5(string_agg(a::text, '' ORDER BY id)) FROM account_v2 a") == before
    _vid, results = validate(params, dbname, SPEC)
    assert all(r.passed for r in results), [r for r in results if not r.passed]


def test_validation_with_one_row_changed_fails_naming_mapping_and_column(pg, params, dbname, advent):
    transfer(params, dbname, SPEC, batch_size=1000)
    assert all(r.passed for r in validate(params, dbname, SPEC)[1])
    query(params, dbname, "UPDATE account_v2 SET display_name = 'someone else' WHERE id = 5")
    res = invoke(["db.validate", "--dsn", dsn(pg, dbname), "--db", "advent"])
    assert res.returncode == 14
    assert "mapping 'account' column(s) display_name" in res.stderr, res.stderr
    failed = query(params, dbname, "SELECT mapping, failed_columns FROM pgops.validation_results r "
                                   "JOIN pgops.validations v ON v.id = r.validation_id "
                                   "WHERE v.id = (SELECT max(id) FROM pgops.validations) AND NOT r.passed")
    assert failed == [("account", ["display_name"])]
    assert "validation" in runner.status(Target(dbname, params, advent.migrations_dir)).waiting[0]["reason"]
    assert "account.display_name" in runner.status(advent).waiting[0]["reason"]
    # the other side: a legacy row changed behind the capture trigger's back (triggers disabled)
    query(params, dbname, "UPDATE account_v2 SET display_name = 'Ada Parent' WHERE id = 5")
    assert all(r.passed for r in validate(params, dbname, SPEC)[1])
    with connect(params, dbname=dbname) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute("UPDATE chat_message SET content = 'tampered' WHERE id = 3")
    results = {r.mapping: r for r in validate(params, dbname, SPEC)[1]}
    assert not results["chat_message"].passed and results["chat_message"].failed_columns == ("content",)
    assert all(r.passed for m, r in results.items() if m != "chat_message")


def test_legacy_writes_during_the_transfer_reach_v2(params, dbname, advent):
    stop = threading.Event()
    written = {"inserted": [], "updated": [], "deleted": []}

    def writer():
        with connect(params, dbname=dbname, autocommit=True) as conn:
            i = 0
            while not stop.is_set():
                i += 1
                new = conn.execute("INSERT INTO account (email, name) VALUES (%s, %s) RETURNING id",
                                   (f"new{i}@example.com", f"Neu {i} ✓")).fetchone()[0]
                written["inserted"].append(new)
                conn.execute("UPDATE account SET name = %s WHERE id = %s", (f"renamed {i}", 1 + i % 80))
                written["updated"].append(1 + i % 80)
                conn.execute("UPDATE chat_message SET content = %s WHERE id = %s", (f"edited {i}", 10 + i))
                if i % 5 == 0:
                    conn.execute("DELETE FROM calendar_day WHERE id = %s", (1000 + i,))
                    written["deleted"].append(1000 + i)
                time.sleep(0.002)
    t = threading.Thread(target=writer)
    t.start()
    try:
        time.sleep(0.2)
        rep = transfer(params, dbname, SPEC, batch_size=300)
    finally:
        stop.set()
        t.join()
    assert written["inserted"] and written["deleted"]
    # writes after the final catch-up are captured; the next run (resume) brings them over
    transfer(params, dbname, SPEC, batch_size=300, resume=True)
    assert rep.caught_up > 0 or rep.final_lock_ms >= 0
    _vid, results = validate(params, dbname, SPEC)
    assert all(r.passed for r in results), [r for r in results if not r.passed]
    ids = written["inserted"]
    assert query(params, dbname, "SELECT count(*) FROM account_v2 WHERE id = ANY(%s)", (ids,)) == [(len(ids),)]
    last = written["updated"][-1]
    assert query(params, dbname, "SELECT a.name = v.display_name FROM account a JOIN account_v2 v USING (id) WHERE id = %s",
                 (last,)) == [(True,)]
    assert query(params, dbname, "SELECT count(*) FROM calendar_day_v2 WHERE id = ANY(%s)", (written["deleted"],)) == [(0,)]
    assert query(params, dbname, "SELECT count(*) FROM pgops.transfer_changes") == [(0,)]


def test_kill_9_mid_batch_resumes_without_duplicates_or_gaps(pg, params, dbname, advent):
    SEED.generate(params, dbname, 3000, 7, replace=True)
    args = [str(REPO / ".venv" / "bin" / "invoke") if (REPO / ".venv/bin/invoke").exists()
            else os.path.join(os.path.dirname(sys.executable), "invoke"),
            "db.transfer", "--dsn", dsn(pg, dbname), "--db", "advent", "--batch-size", "400"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PGOPS_")}
    proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # kill once calendar_day is part-way: batches committed, one in flight
            row = query(params, dbname, "SELECT high_water FROM pgops.transfer_progress WHERE mapping = 'calendar_day'") \
                if query(params, dbname, "SELECT to_regclass('pgops.transfer_progress') IS NOT NULL")[0][0] else []
            if row and row[0][0] and row[0][0] > 8000:
                break
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    time.sleep(0.5)  # the killed client's backend finishes the statement it was running and goes
    mark = query(params, dbname, "SELECT high_water FROM pgops.transfer_progress WHERE mapping = 'calendar_day'")[0][0]
    total = query(params, dbname, "SELECT max(id) FROM calendar_day")[0][0]
    assert 8000 < mark < total
    # nothing above the mark committed: the batch in flight was lost whole
    assert query(params, dbname, "SELECT count(*) FROM calendar_day_v2 WHERE id > %s", (mark,)) == [(0,)]
    res = invoke(["db.transfer", "--dsn", dsn(pg, dbname), "--db", "advent", "--resume", "--json"])
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)[0]
    resumed = {m["mapping"]: m for m in report["mappings"]}
    assert resumed["account"]["rows_copied"] == 0  # already done: started from its mark
    assert 0 < resumed["calendar_day"]["rows_copied"] < total - mark + 1
    runs = query(params, dbname, "SELECT status FROM pgops.transfer_runs ORDER BY id")
    assert runs == [("failed",), ("finished",)]
    _vid, results = validate(params, dbname, SPEC)
    assert all(r.passed for r in results), [r for r in results if not r.passed]
    a, b = legacy_minus_quarantine(params, dbname, "calendar_day", "calendar_day_v2", "calendar_day")
    assert a == b  # no gap
    assert query(params, dbname, "SELECT count(*) - count(DISTINCT (mapping, source_key)) FROM pgops.transfer_quarantine") == [(0,)]


def test_dry_run_changes_nothing(pg, params, dbname, advent):
    res = invoke(["db.transfer", "--dsn", dsn(pg, dbname), "--db", "advent", "--dry-run", "--batch-size", "1000"])
    assert res.returncode == 0, res.stderr
    assert "calendar_day" in res.stdout and "10,800" in res.stdout and "nothing changed" in res.stdout
    assert query(params, dbname, "SELECT to_regclass('pgops.transfer_runs'), (SELECT count(*) FROM calendar_day_v2)") == \
        [(None, 0)]
    assert invoke(["db.transfer", "--dsn", dsn(pg, dbname), "--db", "advent", "--batch-size", "0"]).returncode == 2


def test_batches_wait_while_sessions_wait_on_locks(params, dbname, advent):
    """gh-ost's throttle: a batch does not start while another session waits on a lock (here a
    reader queued behind an ACCESS EXCLUSIVE lock on an unrelated table); it waits at most
    max_pause_s, then goes on."""
    from ops.transfer.batches import Limits
    holder = connect(params, dbname=dbname)
    holder.execute("LOCK TABLE media_asset IN ACCESS EXCLUSIVE MODE")
    waiter = threading.Thread(target=lambda: query(params, dbname, "SELECT count(*) FROM media_asset"))
    waiter.start()
    try:
        time.sleep(0.3)
        rep = transfer(params, dbname, SPEC, only=("account",), limits=Limits(max_pause_s=1.0, sleep_s=0.1))
    finally:
        holder.rollback()
        holder.close()
        waiter.join()
    assert rep.throttled_s >= 1.0 and rep.mappings[0].rows_copied == 294
    calm = transfer(params, dbname, SPEC, only=("account",), limits=Limits(max_pause_s=1.0, sleep_s=0.1))
    assert calm.throttled_s == 0.0


FINISHED = "transfer finished; contract applied at version 7"


def test_deploy_shows_the_contract_and_needs_yes_then_every_transfer_task_reports_it_finished(pg, params, dbname,
                                                                                            advent, tmp_path):
    """Issue 19 §6: a piped deploy never applies an open-gated contract (8 × DROP TABLE) unasked: it
    shows the plan, changes nothing (no backup, no migration) and exits 2 naming the command with --yes.
    Once applied, db.transfer (also --dry-run, --resume, --json) and db.validate report the finished
    transfer and exit 0 — never an UndefinedTable traceback."""
    transfer(params, dbname, SPEC, batch_size=1000)
    assert all(r.passed for r in validate(params, dbname, SPEC)[1])
    repo = (tmp_path / "repo").as_uri()
    common = ["--dsn", dsn(pg, dbname), "--db", "advent", "--repository", repo]
    for args in (["deploy", *common], ["deploy", *common, "--json"]):
        refused = invoke(args)
        assert refused.returncode == 2, refused.stderr
        assert "Traceback" not in refused.stderr and "nothing was changed" in refused.stderr
        shown = refused.stdout + refused.stderr
        assert "007_contract_drop_legacy (destroys data" in shown and "DROP TABLE account" in shown
        assert query(params, dbname, "SELECT to_regclass('account') IS NOT NULL, max(version) FROM pgops.migrations") == \
            [(True, 6)]
        assert not (tmp_path / "repo").exists() or not list((tmp_path / "repo").rglob("manifest.json"))  # no backup
    again = hinted_command(refused.stderr)
    assert again[0] == "deploy" and again[-1] == "--yes" and repo in again
    done = invoke(again)
    assert done.returncode == 0, done.stderr
    assert query(params, dbname, "SELECT to_regclass('account'), max(version) FROM pgops.migrations") == [(None, 7)]
    backups = json.loads(invoke(["backup.list", "--dsn", dsn(pg, dbname), "--repository", repo, "--json"]).stdout)
    assert len(backups) == 1 and backups[0]["ledger_version"] == 6  # taken before the contract
    target = ["--dsn", dsn(pg, dbname), "--db", "advent"]
    for args in (["db.validate"], ["db.transfer"], ["db.transfer", "--dry-run"], ["db.transfer", "--resume"]):
        res = invoke([*args, *target])
        assert res.returncode == 0 and "Traceback" not in res.stderr, (args, res.stderr)
        assert FINISHED in res.stdout, (args, res.stdout)
    for args in (["db.validate", "--json"], ["db.transfer", "--json"], ["db.transfer", "--dry-run", "--json"]):
        res = invoke([*args, *target])
        assert res.returncode == 0, (args, res.stderr)
        doc = json.loads(res.stdout)
        row = doc[0] if isinstance(doc, list) else doc[dbname]
        assert row["state"] == "finished" and row["contract_version"] == 7
    assert invoke(["db.status", *target]).returncode == 0
    assert invoke(["deploy", *common]).returncode == 0  # nothing left to confirm


def test_a_legacy_table_missing_before_the_contract_is_refused_naming_it(pg, params, dbname, advent):
    query(params, dbname, "DROP TABLE analytics_event")
    for args in (["db.transfer"], ["db.transfer", "--dry-run"], ["db.validate"]):
        res = invoke([*args, "--dsn", dsn(pg, dbname), "--db", "advent"])
        assert res.returncode == 14 and "Traceback" not in res.stderr, res.stderr
        assert "analytics_event" in res.stderr and "not in the ledger" in res.stderr
    assert query(params, dbname, "SELECT to_regclass('pgops.transfer_runs')") == [(None,)]  # nothing written


def hinted_command(stderr: str) -> list[str]:
    import re
    import shlex
    return shlex.split(re.search(r"run `(invoke [^`]+)`", stderr).group(1))[1:]
