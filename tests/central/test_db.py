from __future__ import annotations

import pytest

from central.db import Database, DatabaseError, open_database


def test_a_committed_row_is_there_after_reopening(db: Database, db_url: str) -> None:
    with db.transaction() as tx:
        tx.execute("INSERT INTO meta (key, value) VALUES (?, ?)", ("k", "v"))
    db.close()
    with open_database(db_url) as again:
        assert again.one("SELECT value FROM meta WHERE key = ?", ("k",)) == {"value": "v"}


def test_a_failed_transaction_changes_nothing(db: Database) -> None:
    with pytest.raises(RuntimeError), db.transaction() as tx:
        tx.execute("INSERT INTO meta (key, value) VALUES (?, ?)", ("k", "v"))
        raise RuntimeError("boom")
    assert db.query("SELECT * FROM meta") == []


def test_a_nested_transaction_joins_the_outer_one(db: Database) -> None:
    with pytest.raises(RuntimeError), db.transaction() as outer:
        outer.execute("INSERT INTO meta (key, value) VALUES (?, ?)", ("a", "1"))
        with db.transaction() as inner:
            inner.execute("INSERT INTO meta (key, value) VALUES (?, ?)", ("b", "2"))
        raise RuntimeError("boom")
    assert db.query("SELECT * FROM meta") == []


def test_opening_twice_keeps_the_schema_and_data(db: Database, db_url: str) -> None:
    with db.transaction() as tx:
        tx.execute("INSERT INTO meta (key, value) VALUES (?, ?)", ("k", "100%"))
    with open_database(db_url) as again:
        assert again.one("SELECT value FROM meta WHERE value LIKE ?", ("100%",)) == {
            "value": "100%"
        }


def test_an_unknown_url_is_refused_with_what_to_use() -> None:
    with pytest.raises(DatabaseError, match="sqlite:///path or postgresql://"):
        open_database("mysql://x/y")


def test_an_unreachable_postgresql_says_so() -> None:
    with pytest.raises(DatabaseError, match="is the server running"):
        open_database("postgresql://postgres@127.0.0.1:1/nothing?connect_timeout=2")


def test_a_snapshot_reads_while_another_connection_writes(db: Database, db_url: str) -> None:
    with db.transaction() as tx:
        tx.execute("INSERT INTO meta (key, value) VALUES (?, ?)", ("a", "1"))
    with open_database(db_url) as writer, db.snapshot() as view:
        before = view.query("SELECT key FROM meta ORDER BY key")
        with writer.transaction() as tx:  # not blocked by the open read
            tx.execute("INSERT INTO meta (key, value) VALUES (?, ?)", ("b", "2"))
        assert view.query("SELECT key FROM meta ORDER BY key") == before  # one consistent view
    assert [r["key"] for r in db.query("SELECT key FROM meta ORDER BY key")] == ["a", "b"]


def test_a_snapshot_cannot_write(db: Database) -> None:
    with pytest.raises(Exception), db.snapshot() as view:  # noqa: B017 - driver-specific error
        view.execute("INSERT INTO meta (key, value) VALUES (?, ?)", ("x", "1"))
    assert db.query("SELECT * FROM meta") == []
