"""pgops' own sessions are pooler-safe whatever ``--dsn`` points at: ``ops.dsn.connect`` never uses
server-side prepared statements (psycopg docs, "Prepared statements": ``prepare_threshold=None``), since
PgBouncer before 1.21 in transaction pooling hands each transaction any server connection, where a
statement prepared by another client exists (DuplicatePreparedStatement) or one of ours does not."""
from __future__ import annotations

import pytest

from ops.dsn import connect

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("autocommit", [True, False])
def test_interleaved_tool_sessions_repeat_a_query_through_the_pooler(pg, autocommit):
    a = connect(pg.pooler_conninfo(), dbname="postgres", autocommit=autocommit)
    b = connect(pg.pooler_conninfo(), dbname="postgres", autocommit=autocommit)
    try:
        for i in range(12):  # psycopg prepares a query after 5 executions by default
            for conn in (a, b, b, a):
                assert conn.execute("SELECT %s::int + 1", (i,)).fetchone()[0] == i + 1
                if not autocommit:
                    conn.commit()
    finally:
        a.close()
        b.close()
