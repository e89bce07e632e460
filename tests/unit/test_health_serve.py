"""``health --serve``'s core without a socket (issue 20 §2): one measurement serves concurrent callers
for at most ``max_age`` seconds (single flight), and a request the server can refuse — unknown path,
bad ``lag``, missing or wrong token, a method it does not answer — is refused without measuring.
The WSGI application is called as a WSGI server calls it (PEP 3333)."""
from __future__ import annotations

import os
import stat
import threading

import pytest
from hypothesis import given, settings, strategies as st

from ops.errors import ConfigError, OpsError
from ops.health.checks import PROBE_PATHS, Measurement, judge
from ops.health.serve import DETAIL_PATH, Measurements, application, load_or_create_token

pytestmark = pytest.mark.unit
TOKEN = "t0k3n-" + "x" * 40


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def healthy():
    return [judge(Measurement("node_down", "pg1", 0, failed=False, role="primary")),
            judge(Measurement("node_down", "pg2", 0, failed=False, role="replica")),
            judge(Measurement("replica_lag", "pg2", 0.5, value2=1024.0))]


class Counting:
    """A measurement that counts its calls and, when ``gate`` is given, waits for it."""

    def __init__(self, gate: threading.Event | None = None, result=None, error: Exception | None = None):
        self.calls, self.gate, self.result, self.error = 0, gate, result, error
        self.lock = threading.Lock()

    def __call__(self):
        with self.lock:
            self.calls += 1
        if self.gate is not None:
            assert self.gate.wait(10)
        if self.error is not None:
            raise self.error
        return self.result if self.result is not None else healthy()


@pytest.mark.parametrize("callers", [2, 16, 64])
def test_concurrent_callers_share_one_measurement(callers):
    gate = threading.Event()
    measure, clock = Counting(gate), Clock()
    cache = Measurements(measure, max_age=2, clock=clock)
    got, arrived = [], threading.Semaphore(0)

    def caller():
        arrived.release()
        got.append(cache.get())
    threads = [threading.Thread(target=caller) for _ in range(callers)]
    for t in threads:
        t.start()
    for _ in threads:
        assert arrived.acquire(timeout=10)
    threading.Event().wait(0.2)  # let them reach get(): one measures (held at the gate), the rest wait for it
    assert measure.calls == 1  # without single flight every caller would be inside measure() by now
    gate.set()
    for t in threads:
        t.join(10)
    assert measure.calls == 1 and cache.measured == 1
    assert len(got) == callers and len({id(o) for o in got}) == 1


@given(max_age=st.floats(0, 60), steps=st.lists(st.floats(0, 10), min_size=1, max_size=20))
def test_a_measurement_answers_for_max_age_seconds_then_a_new_one_is_taken(max_age, steps):
    measure, clock = Counting(), Clock()
    cache = Measurements(measure, max_age=max_age, clock=clock)
    first = cache.get()
    expected, taken = 1, first.taken
    for dt in steps:
        clock.now += dt
        out = cache.get()
        if clock.now - taken > max_age:
            expected, taken = expected + 1, clock.now
        assert measure.calls == expected and out.taken == taken
        assert cache.age(out) == clock.now - taken <= max_age


def test_a_first_measurement_given_is_served_without_measuring():
    measure, clock = Counting(), Clock()
    cache = Measurements(measure, max_age=2, clock=clock, first=healthy())
    assert cache.get().results and measure.calls == 0
    clock.now += 2.5
    cache.get()
    assert measure.calls == 1


def test_a_failing_measurement_is_cached_like_a_result_even_an_unexpected_one():
    clock = Clock()
    for error, shown in ((OpsError("cannot reach pg1"), "cannot reach pg1"),
                         (RuntimeError("bug"), "failed unexpectedly (RuntimeError: bug)")):
        measure = Counting(error=error)
        cache = Measurements(measure, max_age=2, clock=clock)
        assert shown in str(cache.get().error) and cache.get().error and measure.calls == 1
        clock.now += 3
        assert cache.get().error and measure.calls == 2  # stale: measured again, not hammered meanwhile
        app = application(Measurements(Counting(error=error), max_age=2, clock=clock), TOKEN)
        assert call(app)[::2] == (503, "unavailable\n")


def call(app, method="GET", path="/health", query="", authorization=None):
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query}
    if authorization is not None:
        environ["HTTP_AUTHORIZATION"] = authorization
    seen = {}

    def start_response(status, headers):
        seen["status"], seen["headers"] = status, dict(headers)
    body = b"".join(app(environ, start_response))
    return int(seen["status"].split()[0]), seen["headers"], body.decode()


def served(result=None):
    measure = Counting(result=result)
    return measure, application(Measurements(measure, max_age=2, clock=Clock()), TOKEN)


@settings(max_examples=200)
@given(path=st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7e), max_size=20).map(lambda s: "/" + s))
def test_an_unknown_path_is_404_without_measuring(path):
    if path in (*PROBE_PATHS, DETAIL_PATH):
        return
    measure, app = served()
    code, _, body = call(app, path=path)
    assert (code, body, measure.calls) == (404, "not found\n", 0)


@given(lag=st.one_of(
    st.sampled_from(["-5", "-0.1", "-1MB", "nan", "NaN", "inf", "-inf", "1e999", "abc", "16XB", "1,5MB", "0x10"]),
    st.floats(max_value=-1e-9, allow_nan=False).map(repr)))
def test_a_lag_that_is_not_a_finite_size_is_400_without_measuring(lag):
    measure, app = served()
    for path in PROBE_PATHS:
        code, _, body = call(app, path=path, query=f"lag={lag}")
        assert code == 400 and body.startswith("bad request"), (path, lag, code, body)
    assert measure.calls == 0


@given(auth=st.one_of(st.none(), st.text(max_size=80), st.just(TOKEN), st.just(f"Bearer {TOKEN[:-1]}"),
                      st.just(f"bearer {TOKEN}"), st.just(f"Bearer {TOKEN} ")))
def test_checks_without_the_exact_token_is_401_without_measuring(auth):
    measure, app = served()
    code, headers, body = call(app, path=DETAIL_PATH, authorization=auth)
    assert (code, body, measure.calls) == (401, "unauthorized\n", 0)
    assert headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "TRACE", "CONNECT", "PROPFIND"])
def test_a_method_other_than_get_head_options_is_405_without_measuring(method):
    measure, app = served()
    code, headers, _ = call(app, method=method)
    assert (code, measure.calls) == (405, 0) and headers["Allow"] == "GET, HEAD, OPTIONS"


@pytest.mark.parametrize("path,query", [("/health", ""), ("/primary", ""), ("/replica", "lag=16MB&name=pg2"),
                                        ("/replica", "lag=0&name=pg2")])
def test_role_probes_answer_a_status_and_one_word_and_head_options_alike(path, query):
    measure, app = served()
    code, headers, body = call(app, path=path, query=query)
    expected = 503 if query.startswith("lag=0") else 200
    assert (code, body) == (expected, "ok\n" if expected == 200 else "unavailable\n")
    assert headers["Cache-Control"] == "max-age=2" and headers["Age"] == "0"
    for method in ("HEAD", "OPTIONS"):
        assert call(app, method=method, path=path, query=query)[::2] == (code, "")
    assert measure.calls == 1  # one measurement answered all of them


def test_checks_with_the_token_has_the_report_and_a_failing_target_is_503():
    measure, app = served()
    code, headers, body = call(app, path=DETAIL_PATH, authorization=f"Bearer {TOKEN}")
    assert code == 200 and headers["Content-Type"] == "application/json" and '"node_down"' in body
    failing = Counting(error=OpsError("pg1 at 127.0.0.1:5 refused"))
    app = application(Measurements(failing, max_age=2, clock=Clock()), TOKEN, redact=lambda s: s.replace("5", "*"))
    assert call(app)[::2] == (503, "unavailable\n")
    code, _, body = call(app, path=DETAIL_PATH, authorization=f"Bearer {TOKEN}")
    assert code == 503 and "127.0.0.1:*" in body


def test_the_token_file_is_created_private_and_read_back(tmp_path):
    path = tmp_path / "state" / "health-serve.token"
    token = load_or_create_token(path)
    assert len(token) >= 32 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_token(path) == token


@pytest.mark.parametrize("spoil", ["group-readable", "symlink", "short"])
def test_a_token_file_others_could_read_or_replace_is_refused(tmp_path, spoil):
    path = tmp_path / "health-serve.token"
    if spoil == "symlink":
        (tmp_path / "elsewhere").write_text("x" * 40)
        os.symlink(tmp_path / "elsewhere", path)
    else:
        path.write_text("short" if spoil == "short" else "y" * 40)
        os.chmod(path, 0o600 if spoil == "short" else 0o640)
    with pytest.raises(ConfigError) as exc:
        load_or_create_token(path)
    assert str(path) in str(exc.value) and "Next:" in str(exc.value) and "y" * 40 not in str(exc.value)
