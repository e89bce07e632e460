"""What a refused erasure advises (issue 20 §4): an erase rule only for a table sql/<db>/gdpr.json does not
name (no rule for it or its columns, no owned_by declaration) — never one that already exists — whatever
the tables left, the rules and declarations, and table names that prefix one another."""
from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ops.gdpr.engine import leftover_error
from ops.gdpr.graph import ACTIONS, Ownership, has_rule

pytestmark = pytest.mark.unit
TABLES = ["public.a", "public.ab", "public.users", "app.a", "public.audit_log"]  # names that prefix one another


@st.composite
def ownership_and_leftovers(draw):
    rules = {}
    for t in draw(st.lists(st.sampled_from(TABLES), unique=True)):
        rules[t] = draw(st.sampled_from(ACTIONS))
    for t in draw(st.lists(st.sampled_from(TABLES), unique=True)):
        rules[f"{t}.{draw(st.sampled_from(['user_id', 'created_by']))}"] = draw(st.sampled_from(ACTIONS))
    declared = {t: ("user_id",) for t in draw(st.lists(st.sampled_from(TABLES), unique=True))}
    own = Ownership("public.users", "id", declared, rules)
    left = draw(st.dictionaries(st.sampled_from(TABLES), st.integers(1, 10**6), min_size=1))
    return own, left


@given(ownership_and_leftovers())
def test_an_erase_rule_is_advised_only_for_tables_without_one(case):
    own, left = case
    err = leftover_error(own, "00000000-0000-0000-0000-000000000002", "futuresync", left, "invoke gdpr.erase --yes")
    text = str(err)
    ruleless = sorted(t for t in left if not has_rule(own, t))
    advised = re.search(r"add an erase rule \(delete, nullify or pseudonymize\) for (.+?) to sql/", text)
    assert (advised.group(1).split(", ") if advised else []) == ruleless
    for t in left:
        declared = (t in own.rules or t in own.declared
                    or any(k.rsplit(".", 1)[0] == t for k in own.rules if k.count(".") == 2))
        assert has_rule(own, t) == declared
    assert err.exit_code == 12 and "nothing was erased" in text and "`invoke gdpr.erase --yes`" in text
    assert f"{sum(left.values())} row(s)" in text and "\n" not in text


def test_futuresync_policy_names_every_table_the_issue_was_told_to_add_a_rule_for():
    from ops.gdpr.engine import load_ownership
    from ops.settings import DEFAULT_SQL_ROOT
    own = load_ownership(DEFAULT_SQL_ROOT, "futuresync")
    text = str(leftover_error(own, "u", "futuresync", {"public.analytics_events": 29, "public.audit_log": 1}, "x"))
    assert "add an erase rule" not in text and "public.analytics_events" in text
