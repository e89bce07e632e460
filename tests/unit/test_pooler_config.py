"""The local pooler's pgbouncer.ini as a function of the installed PgBouncer's version (issue 19 §4):
from 1.21 server-side prepared statements pass through transaction pooling (``max_prepared_statements``),
before that the ini leaves the key out (1.18 rejects unknown keys) and local.up/local.status carry a
note naming the version, the driver settings and the README section; either way a failed server login
is retried within a second."""
from __future__ import annotations

import configparser
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ops.local.layout import (
    MAX_PREPARED_STATEMENTS,
    parse_pgbouncer_version,
    passes_prepared_statements,
    plan_layout,
    prepared_statements_note,
    render_pgbouncer_ini,
)

pytestmark = pytest.mark.unit

LAYOUT = plan_layout(Path("/srv/pgops/local"), 40000, 1)
README = Path(__file__).resolve().parents[2] / "README.md"


def ini(version, target_port=None) -> configparser.ConfigParser:
    cp = configparser.ConfigParser(delimiters=("=",), comment_prefixes=(";",), interpolation=None)
    cp.read_string(render_pgbouncer_ini(LAYOUT, version=version, target_port=target_port))
    return cp


versions = st.tuples(st.integers(1, 2), st.integers(0, 40), st.integers(0, 9))


@given(versions)
def test_max_prepared_statements_is_set_exactly_from_1_21(version):
    cfg = ini(version)["pgbouncer"]
    if version >= (1, 21, 0):
        assert cfg["max_prepared_statements"] == str(MAX_PREPARED_STATEMENTS)
        assert prepared_statements_note(version) is None
    else:
        assert "max_prepared_statements" not in cfg
        note = prepared_statements_note(version)
        assert ".".join(map(str, version)) in note and 'README, "Connecting applications"' in note
        for setting in ("prepare_threshold=None", "prepareThreshold=0", "simple_protocol", "statement_cache_size=0"):
            assert setting in note


@pytest.mark.parametrize("version", [(1, 18, 0), (1, 21, 0), (1, 23, 1), None])
def test_every_version_keeps_transaction_pooling_and_retries_a_failed_login_within_a_second(version):
    cp = ini(version, target_port=41000)
    cfg = cp["pgbouncer"]
    assert cfg["pool_mode"] == "transaction" and cfg["listen_port"] == str(LAYOUT.pooler.port)
    assert 0 < float(cfg["server_login_retry"]) < 1   # PgBouncer's default is 15 s
    assert 0 < float(cfg["server_connect_timeout"]) <= 2
    assert cp["databases"]["*"] == "host=127.0.0.1 port=41000"
    assert ini(version)["databases"]["*"] == f"host=127.0.0.1 port={LAYOUT.primary.port}"


def test_an_unknown_version_is_treated_as_one_without_prepared_statements():
    assert not passes_prepared_statements(None)
    assert "max_prepared_statements" not in ini(None)["pgbouncer"]
    assert "unknown version" in prepared_statements_note(None)


@pytest.mark.parametrize("text, expected", [
    ("PgBouncer 1.18.0\nlibevent 2.1.12-stable\nadns: c-ares 1.18.1\n", (1, 18, 0)),
    ("PgBouncer 1.21.0\n", (1, 21, 0)),
    ("pgbouncer version 1.24\n", None),
    ("PgBouncer 1.24\n", (1, 24, 0)),
    ("", None),
    ("libevent 2.1.12-stable\n", None),
])
def test_pgbouncer_version_output_is_parsed(text, expected):
    assert parse_pgbouncer_version(text) == expected


@given(versions)
def test_parse_reads_back_every_version(version):
    assert parse_pgbouncer_version(f"PgBouncer {'.'.join(map(str, version))}\nlibevent 2.1.12-stable\n") == version


def test_the_readme_section_the_note_names_gives_each_drivers_setting():
    text = README.read_text()
    assert "## Connecting applications" in text
    section = text.split("## Connecting applications", 1)[1].split("\n## ", 1)[0]
    for setting in ("prepare_threshold=None", "prepareThreshold=0", "default_query_exec_mode=simple_protocol",
                    "statement_cache_size=0", "max_prepared_statements"):
        assert setting in section, setting
