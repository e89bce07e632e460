"""ops.logs: the PGOPS_LOG_LEVEL syntax, quiet AWS/HTTP loggers, and redaction of every record part."""
from __future__ import annotations

import io
import logging

import pytest

from ops.errors import ConfigError
from ops.logs import QUIET_LOGGERS, configure_logging, parse_spec


@pytest.fixture
def root_saved():
    root = logging.getLogger()
    saved = (list(root.handlers), root.level, {n: logging.getLogger(n).level for n in (*QUIET_LOGGERS, "ops.x")})
    yield root
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    for n, lvl in saved[2].items():
        logging.getLogger(n).setLevel(lvl)


def test_spec_syntax():
    assert parse_spec(None) == ("WARNING", {}) and parse_spec("") == ("WARNING", {})
    assert parse_spec("debug") == ("DEBUG", {})
    assert parse_spec("INFO,botocore=DEBUG, ops.migrations=debug") == ("INFO", {"botocore": "DEBUG",
                                                                                "ops.migrations": "DEBUG"})
    with pytest.raises(ConfigError) as info:
        parse_spec("LOUD,botocore=,=DEBUG")
    assert len(info.value.problems) == 3 and info.value.exit_code == 2


def test_aws_loggers_stay_quiet_unless_named(root_saved):
    configure_logging("DEBUG", stream=io.StringIO())
    assert root_saved.level == logging.DEBUG
    assert all(logging.getLogger(n).getEffectiveLevel() == logging.WARNING for n in QUIET_LOGGERS)
    configure_logging("DEBUG,botocore=DEBUG", stream=io.StringIO())
    assert logging.getLogger("botocore").level == logging.DEBUG and logging.getLogger("urllib3").level == logging.WARNING


def test_every_part_of_a_record_is_redacted(root_saved):
    stream = io.StringIO()
    configure_logging("DEBUG", stream=stream)
    configure_logging("DEBUG", stream=stream)  # idempotent: one handler, one line per record
    log = logging.getLogger("ops.x")
    log.debug("connecting with %s", "host=h password='a b\\'c-secret' dbname=d")
    log.info('{"username": "u", "password": "json-secret"}')
    try:
        raise RuntimeError("failed: postgresql://u:p@ss@word-secret@h/db")
    except RuntimeError:
        log.exception("boom sslpassword=key-secret")
    log.warning("stack of password=stack-secret", stack_info=True)
    text = stream.getvalue()
    assert not any(s in text for s in ("stack-secret", "c-secret", "json-secret", "word-secret", "key-secret")), text
    assert text.count("connecting with") == 1 and "Traceback" in text and "RuntimeError" in text


def test_other_root_handlers_get_the_filter_too(root_saved):
    other = io.StringIO()
    root_saved.addHandler(logging.StreamHandler(other))
    configure_logging("INFO", stream=io.StringIO())
    logging.getLogger("ops.x").warning("PGPASSWORD=hunter2-secret")
    assert "hunter2" not in other.getvalue() and "PGPASSWORD=***" in other.getvalue()
