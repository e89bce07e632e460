"""Redaction that URL or conninfo syntax cannot defeat, and a secret type that never prints (issue 9 §4).

The property: for any password of ≥ 4 printable characters (including ``@ : / ' \\ " = &`` and
spaces), in every form a DSN can carry it, ``redact`` of the DSN — and of a message embedding the
DSN — contains neither the password nor its percent-encoded spelling."""
from __future__ import annotations

import copy
import json
import pickle
from urllib.parse import quote

import pytest
from hypothesis import assume, given, settings, strategies as st
from psycopg.conninfo import make_conninfo

from ops.dsn import redact
from ops.secrets import Secret, forget_secrets, reveal

PASSWORDS = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x17F, blacklist_categories=("Cc", "Cs")),
                    min_size=4, max_size=24)


def dsn_forms(pw: str) -> list[str]:
    enc = quote(pw, safe="")
    return [
        make_conninfo(host="db.example", port=5432, user="ops", password=pw, dbname="app"),   # libpq quoting
        make_conninfo(host="db.example", sslpassword=pw, dbname="app"),
        f"postgresql://ops:{enc}@db.example:5432/app",                                        # encoded URL
        # raw, unencoded URL: a URL ends at whitespace (libpq refuses a raw space in one, and
        # ops.dsn.parse refuses the unencoded '@'/'/' forms without echoing them: issue 20 §1)
        *([f"postgresql://ops:{pw}@db.example:5432/app",
           f"postgres://ops:{pw}@db1.example:5432,db2.example:5433/app?sslmode=require"]
          if not any(c.isspace() for c in pw) else []),
        f"postgresql://db.example/app?user=ops&password={enc}&sslmode=require",               # URL query
        f"postgresql://db.example/app?sslpassword={enc}",
        json.dumps({"username": "ops", "password": pw}),                                      # a secret's JSON
        repr({"host": "db.example", "password": pw}),                                        # a params dict's repr
        f"PGPASSWORD={make_conninfo(password=pw).split('=', 1)[1]}",
    ]


def messages(dsn: str) -> str:
    return f"could not connect to {dsn}: timeout expired\nerror: {dsn}\nnext line"


@pytest.fixture(autouse=True)
def _no_registry():
    forget_secrets()  # the property must hold from the rules alone, not from remembered values
    yield
    forget_secrets()


@settings(max_examples=300, deadline=None)
@given(pw=PASSWORDS)
def test_redact_never_shows_a_password_in_any_dsn_form(pw):
    skeleton = " ".join(messages(d) for d in dsn_forms("\x00"))
    assume(pw not in skeleton and quote(pw, safe="") not in skeleton)  # a password the message itself spells
    for dsn in dsn_forms(pw):
        for text in (dsn, messages(dsn)):
            out = redact(text)
            assert pw not in out, (text, out)
            assert quote(pw, safe="") not in out, (text, out)
            forget_secrets()


@settings(max_examples=150, deadline=None)
@given(pw=PASSWORDS)
def test_botocore_response_body_never_shows_the_master_password(pw):
    assume(pw not in 'Response body: b\'{"ARN": "arn:aws:secretsmanager:eu-west-1:1:secret:x", "Name": "x", '
                     '"SecretString": "{\\\\"username\\\\": \\\\"pgops_admin\\\\", "VersionId": "v1"}\'')
    body = json.dumps({"ARN": "arn:aws:secretsmanager:eu-west-1:1:secret:x", "Name": "x",
                       "SecretString": json.dumps({"username": "pgops_admin", "password": pw}),
                       "VersionId": "v1"}).encode()
    for text in (f"Response body:\n{body!r}", f"Response body:\n{body.decode()}",
                 repr({"SecretString": json.dumps({"password": pw}), "Name": "x"})):
        out = redact(text)
        assert pw not in out and "***" in out, (text, out)


def test_unencoded_at_in_a_url_password_is_masked_whole():
    assert redact("postgresql://u:p@ss@word@host/db") == "postgresql://u:***@host/db"
    assert redact("connecting to postgresql://u:p@ss@word@host/db failed") == \
        "connecting to postgresql://u:***@host/db failed"


@pytest.mark.parametrize("text", [
    "host=db password='s3 \\'cr3t\\' x' dbname=app",
    "host=db sslpassword=s3cr3t-key dbname=app",
    "postgresql://db/app?sslmode=require&password=s3cr3t",
    '{"password": "s3\\"cr3t"}',
])
def test_quoted_escaped_and_query_forms(text):
    out = redact(text)
    assert "cr3t" not in out and "***" in out


def test_text_without_secrets_is_unchanged():
    for text in ("postgresql://db.example:5432/app", "host=db port=5432 dbname=app user=ops",
                 'password authentication failed for user "ops"', ""):
        assert redact(text) == text


def test_a_registered_secret_is_masked_in_any_text():
    Secret("Tr0ub4dor&3")
    assert redact("the value Tr0ub4dor&3 appeared in a traceback") == "the value *** appeared in a traceback"


def test_secret_never_renders_its_value():
    s = Secret("hunter2-long")
    rendered = [str(s), repr(s), f"{s}", f"{s!r}", "%s" % s, "%r" % (s,), "{}".format(s), format(s, ">20"),
                json.dumps({"password": s}, default=str), repr({"password": s}), str([s])]
    assert all("hunter2" not in r for r in rendered), rendered
    assert s.reveal() == "hunter2-long" and reveal(s) == "hunter2-long" and reveal("plain") == "plain"
    with pytest.raises(TypeError):
        "prefix" + s  # noqa: B018 — concatenation would expose the characters: refused
    with pytest.raises(TypeError):
        json.dumps({"password": s})
    with pytest.raises(TypeError):
        pickle.dumps(s)
    assert copy.deepcopy(s) == s == Secret("hunter2-long") and s != Secret("other-value")
    assert Secret(s).reveal() == "hunter2-long"


def test_connect_reveals_the_secret_only_to_the_driver(monkeypatch):
    import psycopg

    from ops import dsn
    seen = {}

    def fake_connect(**kwargs):
        seen.update(kwargs)
        raise psycopg.OperationalError(f"connection failed: password={kwargs['password']} rejected")
    monkeypatch.setattr(psycopg, "connect", fake_connect)
    from ops.errors import ConnectError
    with pytest.raises(ConnectError) as info:
        dsn.connect({"host": "h", "user": "u", "password": Secret("pa ss@word")}, dbname="d")
    assert seen["password"] == "pa ss@word"
    assert "pa ss@word" not in str(info.value) and "ss@word" not in repr(info.value)


def test_protect_params_wraps_only_the_secret_keywords():
    from ops.dsn import parse
    from ops.secrets import protect_params
    params = protect_params(parse("host=db user=ops password='pa ss' sslpassword=keypass dbname=app"))
    assert isinstance(params["password"], Secret) and isinstance(params["sslpassword"], Secret)
    assert params["host"] == "db" and params["user"] == "ops"
    assert "pa ss" not in repr(params) and "keypass" not in repr(params)
    assert protect_params(params) == params and reveal(params["password"]) == "pa ss"
