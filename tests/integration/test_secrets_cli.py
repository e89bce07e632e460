"""No password anywhere (issue 9 §4): a DEBUG run of real tasks with the password in the DSN, in both
DSN forms and with URL-hostile characters, leaves it in no output, log line, written file or argv."""
from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.parse

import pytest

from .conftest import invoke, query

pytestmark = pytest.mark.integration

PASSWORD = "s3cr3t@p:ss/wo rd'x"  # @ : / space and a quote: every URL and key=value hazard


@pytest.fixture
def role(params, dbname):
    query(params, "postgres", "DROP ROLE IF EXISTS leaky")
    query(params, "postgres", f"CREATE ROLE leaky LOGIN SUPERUSER PASSWORD '{PASSWORD.replace(chr(39), chr(39) * 2)}'")
    query(params, dbname, "CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 100)")
    yield
    query(params, dbname, "REASSIGN OWNED BY leaky TO postgres")  # what the restore created as leaky
    query(params, "postgres", "DROP ROLE IF EXISTS leaky")


def dsns(params, dbname):
    kv_pw = PASSWORD.replace("\\", "\\\\").replace("'", "\\'")
    url_pw = urllib.parse.quote(PASSWORD, safe="")
    return [f"host=127.0.0.1 port={params['port']} user=leaky password='{kv_pw}' dbname={dbname}",
            f"postgresql://leaky:{url_pw}@127.0.0.1:{params['port']}/{dbname}"]


def leaked(text: str) -> bool:
    return any(form in text for form in (PASSWORD, urllib.parse.quote(PASSWORD, safe=""), "s3cr3t"))


def argv_watch(stop: threading.Event, seen: list[str]) -> None:
    """Every process's command line while the tasks run (what any local user can read)."""
    while not stop.is_set():
        seen.append(subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout)
        time.sleep(0.05)


def test_debug_run_of_every_kind_of_task_never_shows_the_password(params, dbname, role, tmp_path):
    repo = tmp_path / "repo"
    report = tmp_path / "drill.json"
    env = {"PGOPS_LOG_LEVEL": "DEBUG"}
    stop, seen = threading.Event(), []
    watcher = threading.Thread(target=argv_watch, args=(stop, seen), daemon=True)
    watcher.start()
    outputs = []
    try:
        for dsn in dsns(params, dbname):
            for args in (["db.status", "--db", "syncscript"],
                         ["backup.create", "--repository", repo.as_uri()],
                         ["backup.list", "--repository", repo.as_uri(), "--json"],
                         ["drill.run", "--repository", repo.as_uri(), "--json", str(report)],
                         ["db.rollback", "--steps", "1", "--db", "syncscript", "--no-backup", "--yes"]):
                res = invoke([args[0], "--dsn", dsn, *args[1:]], env)
                outputs.append((args[0], res.returncode, res.stdout + res.stderr))
            backup_id = json.loads(invoke(["backup.list", "--dsn", dsn, "--repository", repo.as_uri(), "--json"],
                                          env).stdout)[0]["id"]
            # passwords in a destination DSN: --target-dsn of a drill, --dsn of a restore (--clean --yes)
            res = invoke(["drill.run", "--dsn", dsn, "--repository", repo.as_uri(), "--target-dsn", dsn], env)
            outputs.append(("drill.run --target-dsn", res.returncode, res.stdout + res.stderr))
            res = invoke(["backup.restore", "--backup-id", backup_id, "--repository", repo.as_uri(), "--dsn", dsn,
                          "--clean", "--yes"], {**env, "PGOPS_STATE_DIR": str(tmp_path / "no-stack")})
            outputs.append(("backup.restore", res.returncode, res.stdout + res.stderr))
            bad = dsn.replace("leaky", "nobody")  # a failing connection echoes its conninfo
            res = invoke(["db.status", "--dsn", bad, "--db", "syncscript"], env)
            outputs.append(("bad", res.returncode, res.stdout + res.stderr))
    finally:
        stop.set()
        watcher.join()
    codes = {name: code for name, code, _ in outputs}
    assert codes["backup.create"] == 0 and codes["drill.run"] == 0 and codes["bad"] == 4, outputs
    assert codes["backup.restore"] == 0 and codes["db.rollback"] in (0, 5), outputs
    assert codes["drill.run --target-dsn"] == 8, outputs  # the source's own server: refused, and said safely
    assert "DEBUG" in "".join(text for _, _, text in outputs)  # the run really logged at DEBUG
    for name, code, text in outputs:
        assert not leaked(text), (name, text)
    for f in [p for p in tmp_path.rglob("*") if p.is_file()]:
        assert not leaked(f.read_bytes().decode("latin-1")), f
    assert json.loads(report.read_text())["passed"] is True
    assert not any(leaked(listing) for listing in seen)
