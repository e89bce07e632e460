"""Redaction, stack layout, scaffolding: pure pieces with no I/O."""
from datetime import datetime, timezone
from pathlib import Path

import pytest

from ops.dsn import redact
from ops.errors import ConfigError
from ops.local.layout import plan_layout, primary_conninfo
from ops.migrations.scaffold import next_version, scaffold


@pytest.mark.parametrize("text", [
    "postgresql://ops:s3cr3t@db.example:5432/app",
    "host=db port=5432 password=s3cr3t dbname=app",
    "host=db password='s3 cr3t' dbname=app",
    "error connecting with PASSWORD = s3cr3t",
])
def test_redact_hides_passwords(text):
    out = redact(text)
    assert "s3cr3t" not in out and "cr3t" not in out and "***" in out


@pytest.mark.parametrize("dsn", [
    "postgresql://ops:p@ss@word-9@127.0.0.1:1/app",          # unencoded '@': libpq takes "ss@word-9@…" for the host
    "postgresql://ops:hunter2-9@127.0.0.1:notaport/app",      # libpq rejects the port
    "host=127.0.0.1 port=1 password='hunter2-9 dbname=app",  # unterminated quote
    "host=127.0.0.1 port=1 user=ops password=hunter2-9 dbname=app",  # parses; the server is not there
])
def test_errors_from_real_failures_never_carry_the_password(dsn):
    """The errors pgops builds from real libpq failures (parse, then connect to a closed port), not
    from text redacted beforehand: neither their str nor their repr holds the password."""
    from ops.dsn import connect, parse
    from ops.errors import ConnectError
    with pytest.raises((ConfigError, ConnectError)) as info:
        connect(parse(dsn), connect_timeout=2)
    for rendered in (str(info.value), repr(info.value), info.value.message):
        assert "hunter2" not in rendered and "ss@word" not in rendered, rendered


def test_layout_ports_and_slots():
    lay = plan_layout(Path("/srv/pgops"), 55000, 2)
    assert [(n.name, n.port, n.slot) for n in lay.nodes] == [("pg1", 55000, None),
                                                             ("pg2", 55001, "pgops_pg2"),
                                                             ("pg3", 55002, "pgops_pg3")]
    assert "port=55000" in primary_conninfo(lay, lay.nodes[1]) and "password" not in primary_conninfo(lay, lay.nodes[1])


def test_layout_reports_every_bad_value_at_once():
    with pytest.raises(ConfigError) as info:
        plan_layout(Path("relative dir"), 80, 99)
    assert len(info.value.problems) == 4


def test_next_version():
    now = datetime(2026, 11, 21, 9, 30, 0, tzinfo=timezone.utc)
    assert next_version([], [], now) == (1, 4)
    assert next_version([1, 2, 7], [3, 3, 3], now) == (8, 3)
    assert next_version([20250101000000], [14], now) == (20261121093000, 14)


def test_scaffold_creates_the_triad(tmp_path):
    p = scaffold(tmp_path, "shop", "add_orders")
    assert p.name == "0001_add_orders" and {f.name for f in p.iterdir()} == {"up.sql", "down.sql", "verify.sql"}
    assert scaffold(tmp_path, "shop", "next").name == "0002_next"
    with pytest.raises(ConfigError):
        scaffold(tmp_path, "Shop!", "Bad Name")


def test_library_failures_become_one_message_with_an_exit_code():
    """AWS and Pulumi failures reach the edge as OpsErrors (exit 4 or 7); anything else is a bug and
    is not disguised."""
    from botocore.exceptions import ClientError, NoCredentialsError

    from ops.cli import foreign_error
    no_creds = foreign_error(NoCredentialsError())
    assert no_creds.exit_code == 4 and "aws sts get-caller-identity" in str(no_creds)
    denied = foreign_error(ClientError({"Error": {"Code": "AccessDenied", "Message": "not allowed"}}, "CreateDBSnapshot"))
    assert denied.exit_code == 7 and "AccessDenied" in str(denied)
    assert foreign_error(ValueError("a bug")) is None
