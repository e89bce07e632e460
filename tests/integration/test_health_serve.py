"""`invoke health --serve PORT` as a load balancer and a second OS user meet it (issue 20 §2): a real
stack (primary + streaming replica + pooler), the server started as a subprocess the way a user
starts it, probed over loopback TCP.

* 200 concurrent ``/health`` requests are all answered, none reset, within 2 s (the issue's bound;
  the figures are printed — ``pytest -s`` shows them);
* 150 half-sent requests neither stop a normal probe from being answered nor are held: the server
  closes each after its inactivity timeout;
* another OS user (``nobody``) reads a status and one word from the role probes, 401 from
  ``/checks``, and cannot read the token file; with the token ``/checks`` has the report;
* HEAD and OPTIONS answer like GET (HAProxy's ``option httpchk`` sends OPTIONS), a ``lag`` that is
  not a finite size ≥ 0 is 400, a bad or busy port is one paragraph and exit 3.
"""
from __future__ import annotations

import http.client
import json
import os
import selectors
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ops.dsn import connect

from .conftest import REPO, destroy, invoke, query, stack_with_database

pytestmark = pytest.mark.integration

#: what a running query in the test carries: the issue's leak was query text like this on /health
SECRET_QUERY_MARK = "pw=Tr0ub4dor-4111111111111111"
CHANNEL_TIMEOUT = 5  # ops.health.serve.CHANNEL_TIMEOUT: the inactivity timeout the half-sent test waits out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    st = stack_with_database(tmp_path_factory.mktemp("serve"), "ledgerdb_x7")
    yield st
    destroy(st)


@pytest.fixture(scope="module")
def busy_query(stack):
    """A session running a query whose text holds a card number and a password, as in the issue."""
    conn = connect(stack.params, dbname="ledgerdb_x7", autocommit=True)
    pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    t = threading.Thread(target=lambda: _run_quietly(conn, f"SELECT pg_sleep(600) /* {SECRET_QUERY_MARK} */"),
                         daemon=True)
    t.start()
    time.sleep(0.5)
    yield pid
    query(stack.params, "postgres", "SELECT pg_terminate_backend(%s)", (pid,))
    conn.close()


def _run_quietly(conn, sql):
    try:
        conn.execute(sql)
    except Exception:  # noqa: BLE001 - terminated at teardown, on purpose
        pass


class Server:
    """``invoke health --serve PORT`` started as a user starts it, stopped with SIGTERM."""

    def __init__(self, stack, *args: str):
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("PGOPS_")}
        env["PGOPS_STATE_DIR"] = str(stack.layout.state_dir)
        self.proc = subprocess.Popen([str(Path(sys.executable).parent / "invoke"), "health", "--sql-root",
                                      str(stack.sql_root), "--serve", str(self.port), *args],
                                     cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    pytest.fail(f"health --serve did not listen: {self.proc.stderr.read()}")
                time.sleep(0.2)
        self.token_file = Path(stack.layout.state_dir) / "health-serve.token"

    def request(self, method: str, path: str, headers: dict | None = None, timeout: float = 30):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            c.request(method, path, headers=headers or {})
            r = c.getresponse()
            return r.status, dict(r.getheaders()), r.read().decode()
        finally:
            c.close()

    def stop(self) -> tuple[str, str]:
        if self.proc.poll() is None:
            self.proc.terminate()
        out, err = self.proc.communicate(timeout=20)
        return out, err


@pytest.fixture(scope="module")
def server(stack, busy_query):
    srv = Server(stack)
    yield srv
    out, err = srv.stop()
    assert "Traceback" not in out + err, err


def test_200_concurrent_probes_are_all_answered_within_2_s(server):
    """The issue measured 46 resets, p50 37 s, max 116 s (every request measured). One measurement
    now answers them all: the cache is let go stale first, so the burst includes a measurement. The
    2 s bound is the issue's; it is counted from the moment all 200 clients are ready, not from
    starting their threads."""
    n = 200
    time.sleep(2.5)  # past the default --max-age of 2 s: the first of the burst measures afresh
    ready = threading.Barrier(n + 1)
    results: list = [None] * n

    def one(i):
        c = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        ready.wait()
        t0 = time.monotonic()
        try:
            c.request("GET", "/health")
            r = c.getresponse()
            r.read()
            results[i] = (r.status, time.monotonic() - t0)
        except OSError as exc:  # a reset, a refusal, a timeout
            results[i] = (type(exc).__name__, time.monotonic() - t0)
        finally:
            c.close()
    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    ready.wait()
    start = time.monotonic()
    for t in threads:
        t.join(60)
    wall = time.monotonic() - start
    results = [r or ("no answer within 60 s", 60.0) for r in results]
    lat = sorted(r[1] for r in results)
    failed = [r for r in results if r[0] not in (200, 503)]
    figures = (f"health --serve load: {n} concurrent /health, {n - len(failed)} answered, {len(failed)} failed "
               f"(resets/timeouts), p50 {statistics.median(lat) * 1000:.0f} ms, "
               f"p99 {lat[int(n * 0.99) - 1] * 1000:.0f} ms, max {lat[-1] * 1000:.0f} ms, wall {wall * 1000:.0f} ms")
    print(figures)
    assert not failed, figures
    assert {r[0] for r in results} == {200}, figures  # a healthy stack: every answer is the same verdict
    assert wall <= 2.0 and lat[-1] <= 2.0, figures


def test_half_sent_requests_are_closed_and_do_not_block_probes(server):
    """150 clients send a request line and a header but never the blank line ending the head. A
    normal probe is answered meanwhile, and each of the 150 is closed by the server (EOF or reset)
    after the inactivity timeout — the issue saw them held forever, one thread each."""
    held = []
    for _ in range(150):
        s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        held.append(s)
    try:
        code, _, body = server.request("GET", "/health", timeout=10)
        assert (code, body) == (200, "ok\n")
        # every socket watched at once, one overall deadline: generous (the cleanup runs every second)
        wait = CHANNEL_TIMEOUT + 20
        deadline = time.monotonic() + wait
        sel = selectors.DefaultSelector()
        for s in held:
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ)
        closed, answered = 0, []
        while closed + len(answered) < len(held) and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=max(0.0, deadline - time.monotonic())):
                try:
                    data = key.fileobj.recv(4096)
                except ConnectionResetError:
                    data = b""
                sel.unregister(key.fileobj)
                if data:
                    answered.append(data)
                else:
                    closed += 1
        sel.close()
        assert closed + len(answered) == len(held), f"{len(held) - closed - len(answered)} half-sent connections " \
                                                    f"still open {wait} s later"
        assert not answered, answered[:1]  # closed, not answered: the request never ended
        code, _, body = server.request("GET", "/health", timeout=10)
        assert (code, body) == (200, "ok\n")
    finally:
        for s in held:
            s.close()


def _as_nobody(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(["runuser", "-u", "nobody", "--", *argv], capture_output=True, text=True, timeout=60,
                          cwd="/")


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to the OS user nobody needs root")
def test_another_os_user_reads_a_status_and_no_detail(stack, server, busy_query):
    """What the issue's `su nobody -c curl …/health` read: query text, pids, user and database names,
    data-directory paths, the repository URL. Each must be absent from every answer nobody gets,
    headers included; the details need the token, which nobody cannot read."""
    layout = stack.layout
    forbidden = {SECRET_QUERY_MARK, "4111111111111111", "pg_sleep", "ledgerdb_x7", "postgres",
                 str(layout.state_dir), str(stack.sql_root), str(busy_query), "file://", "runbooks/"}
    forbidden |= {str(p) for p in Path(layout.state_dir).iterdir()}  # data directories, repository, logs
    expected = {"/health": (200, "ok"), "/primary": (200, "ok"), "/replica": (200, "ok"),
                "/replica?lag=16MB&name=pg2": (200, "ok"), "/checks": (401, "unauthorized"),
                "/nope": (404, "not found")}
    for path, (code, word) in expected.items():
        res = _as_nobody("curl", "-s", "-i", "--max-time", "20", f"http://127.0.0.1:{server.port}{path}")
        assert res.returncode == 0, res.stderr
        head, _, body = res.stdout.replace("\r\n", "\n").partition("\n\n")
        assert head.split("\n", 1)[0].split()[1] == str(code), (path, res.stdout)
        assert body == f"{word}\n", (path, res.stdout)
        leaked = sorted(f for f in forbidden if f in res.stdout)
        assert not leaked, (path, leaked)
    mode = server.token_file.stat().st_mode & 0o777
    assert mode == 0o600 and server.token_file.stat().st_uid == os.geteuid(), oct(mode)
    res = _as_nobody("cat", str(server.token_file))
    assert res.returncode != 0 and not res.stdout, res.stdout
    # the operator, with the token, gets the report — query text included, as `invoke health` shows it
    token = server.token_file.read_text().strip()
    code, headers, body = server.request("GET", "/checks", {"Authorization": f"Bearer {token}"})
    doc = json.loads(body)
    assert code == 200 and doc["status"] in ("ok", "warning", "critical") and doc["checks"], body[:300]
    assert {c["id"] for c in doc["checks"]} >= {"node_down", "replica_lag"}
    assert headers["Cache-Control"].startswith("max-age=") and headers["Age"].isdigit()
    code, _, body = server.request("GET", "/checks", {"Authorization": f"Bearer {token[:-1]}x"})
    assert (code, body) == (401, "unauthorized\n")


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS"])
@pytest.mark.parametrize("path", ["/health", "/primary", "/replica?lag=16MB"])
def test_head_and_options_answer_like_get(server, method, path):
    """HAProxy's `option httpchk` sends OPTIONS; Patroni answers GET, HEAD and OPTIONS alike. HEAD and
    OPTIONS carry the status (200 or 503, never 501) and no body."""
    code, headers, body = server.request(method, path)
    get_code = server.request("GET", path)[0]
    assert code == get_code and code in (200, 503), (method, path, code)
    assert body == ("ok\n" if method == "GET" else ""), (method, body)
    assert "GET" in headers["Allow"] and "OPTIONS" in headers["Allow"]


@pytest.mark.parametrize("lag", ["-5", "-0.5MB", "nan", "inf", "-inf", "1e999", "abc", "16XB", "1,5MB"])
def test_a_lag_that_is_not_a_finite_size_is_400(server, lag):
    """``?lag=-5`` answered 503 (a verdict on a nonsense limit) while ``?lag=abc`` answered 400; every
    value that is not a finite size ≥ 0 is the client's mistake, 400."""
    code, _, body = server.request("GET", f"/replica?lag={lag}")
    assert code == 400 and body.startswith("bad request"), (lag, code, body)


@pytest.mark.parametrize("port", ["70000", "65536", "0", "-1", "80.5", "abc", "1e3", "", "٨٠٨٠", str(2 ** 63)])
def test_a_port_that_is_not_a_tcp_port_is_one_paragraph_exit_3(stack, port):
    res = invoke(["health", "--sql-root", str(stack.sql_root), "--serve", port],
                 {"PGOPS_STATE_DIR": str(stack.layout.state_dir)}, timeout=120)
    assert res.returncode == 3, (port, res.returncode, res.stderr)
    assert "Traceback" not in res.stdout + res.stderr and res.stderr.count("\n") == 1, res.stderr
    assert "--serve" in res.stderr and "Next:" in res.stderr


def test_a_busy_port_is_one_paragraph_exit_3(stack):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        res = invoke(["health", "--sql-root", str(stack.sql_root), "--serve", str(port)],
                     {"PGOPS_STATE_DIR": str(stack.layout.state_dir)}, timeout=120)
    assert res.returncode == 3, (res.returncode, res.stderr)
    assert "Traceback" not in res.stdout + res.stderr and res.stderr.count("\n") == 1, res.stderr
    assert f"Port {port}" in res.stderr and "in use" in res.stderr and "Next:" in res.stderr


@pytest.mark.parametrize("max_age", ["61", "-1", "nan", "inf", "1e308", "abc", "٣"])
def test_a_max_age_outside_0_to_60_seconds_is_one_paragraph_exit_3(stack, max_age):
    port = free_port()
    res = invoke(["health", "--sql-root", str(stack.sql_root), "--serve", str(port), "--max-age", max_age],
                 {"PGOPS_STATE_DIR": str(stack.layout.state_dir)}, timeout=120)
    assert res.returncode == 3, (max_age, res.returncode, res.stderr)
    assert "Traceback" not in res.stdout + res.stderr and res.stderr.count("\n") == 1, res.stderr
    assert "--max-age" in res.stderr and "Next:" in res.stderr
