"""Redaction that follows libpq, not a pattern (issue 20 §1).

Property: for a password drawn from every URL- and conninfo-special character (``@ : / ? # % = ' " \\``,
space, non-ASCII), a DSN in URL (percent-encoded) or key=value (quoted) form that :func:`ops.dsn.parse`
accepted is masked by value: ``redact`` of any message holding the DSN or the bare password shows neither
the password nor any 4-character piece of it, and every character not derived from it is unchanged.
A URL with the password left unencoded is refused without echoing any of it."""
from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import assume, given, settings, strategies as st

from ops.dsn import parse, redact, redacted_dsn
from ops.errors import ConfigError
from ops.secrets import MASK, forget_secrets

pytestmark = pytest.mark.unit

SPECIAL = "@:/?#%='\"\\ éß€中"
PASSWORDS = st.text(st.sampled_from(SPECIAL) | st.sampled_from("abcXYZ019"), min_size=4, max_size=20)
AROUND = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyz:@/'\"=. -0123456789"), max_size=30)


def grams(pw: str) -> set[str]:
    return {pw[i:i + 4] for i in range(len(pw) - 3)}


def kv(pw: str) -> str:
    return "'" + pw.replace("\\", "\\\\").replace("'", "\\'") + "'"


def forms(pw: str) -> list[tuple[str, str]]:
    """(DSN, the same DSN with the password's spelling replaced by the mask)."""
    url = "postgresql://ops:{}@db.example:5432/app"
    key = "host=db.example port=5432 user=ops password={} dbname=app"
    return [(url.format(quote(pw, safe="")), url.format(MASK)), (key.format(kv(pw)), key.format(f"'{MASK}'"))]


@pytest.fixture(autouse=True)
def _registry():
    forget_secrets()
    yield
    forget_secrets()


@settings(max_examples=200, deadline=None)
@given(pw=PASSWORDS, before=AROUND, after=AROUND)
def test_a_parsed_password_is_masked_by_value_and_nothing_else_changes(pw, before, after):
    assume("password" not in before + after and "://" not in before + after and "*" not in pw)
    for dsn, masked in forms(pw):
        forget_secrets()
        assert parse(dsn)["password"] == pw
        for message, expected in ((f"{before} {dsn} {after}", f"{before} {masked} {after}"),
                                  (f"{before} {pw} {after}", f"{before} {MASK} {after}")):
            assume(not any(g in expected for g in grams(pw)))
            out = redact(message)
            assert pw not in out and not any(g in out for g in grams(pw)), (message, out)
            assert out == expected, (message, out)


@settings(max_examples=200, deadline=None)
@given(pw=PASSWORDS.filter(lambda p: "@" in p or "/" in p))
def test_an_unencoded_at_or_slash_in_a_url_password_is_refused_without_echo(pw):
    dsn = f"postgresql://ops:{pw}@127.0.0.1:5432/app"
    with pytest.raises(ConfigError) as info:
        parse(dsn)
    text = str(info.value)
    assert info.value.exit_code == 2 and "%40" in text and "\n" not in text
    problems = " ".join(info.value.problems)  # the problem itself names the user-info, not only the hint
    assert "encode '@' in the password" in problems or "user name or password holds" in problems, problems
    assert pw not in text and not any(g in text for g in grams(pw)), text
    assert redacted_dsn(dsn) == "<DSN>"


@pytest.mark.parametrize("dsn, says", [
    ("postgresql://u:Qq7:k/Zz@Rr9@127.0.0.1:5999/db", "%40"),
    ("postgresql://u:p@ss:w/rd#1@127.0.0.1/db", "%40"),
    ("postgresql://u:Xy@Zw1@127.0.0.1/db", "%40"),
    ("postgresql://u:50%zzoff@127.0.0.1/db", "%25"),
    ("postgresql://u:a/b?cdef@127.0.0.1/db", "%2F"),
    ("postgresql://u:7/%?cdef@127.0.0.1/db", "password holds '/', '?' or '@'"),  # libpq stops at the '%'
    ("postgresql://u:%@/'cdef@127.0.0.1/db", "'%' as %25; and the URL has an '@'"),  # both problems at once
    ("host=127.0.0.1 password=ab cdef dbname=db", "single-quoted"),
    ("host=127.0.0.1 password='abcdef dbname=db", "not closed"),
])
def test_a_dsn_libpq_rejects_or_misreads_names_the_part_and_never_echoes(dsn, says):
    with pytest.raises(ConfigError) as info:
        parse(dsn)
    text = str(info.value)
    assert says in text
    for piece in ("Qq7:k", "Zz@Rr9", "ss:w", "Zw1", "zzoff", "cdef"):
        assert piece not in text, text


def test_a_short_password_does_not_mangle_the_driver_message(monkeypatch):
    import psycopg

    from ops import dsn
    from ops.errors import ConnectError
    from ops.secrets import protect_params

    def refuse(**kwargs):
        raise psycopg.OperationalError("could not translate host name: Servname not supported for ai_socktype")
    monkeypatch.setattr(psycopg, "connect", refuse)
    with pytest.raises(ConnectError) as info:
        dsn.connect(protect_params(parse("postgresql://u:p@127.0.0.1/db")))
    assert "Servname not supported" in str(info.value)
