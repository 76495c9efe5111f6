"""What a failed transaction means to its caller (uow._meaning), from the drivers' real errors."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from service.db.uow import _meaning
from service.errors import Conflict


def _locked_error(tmp_path) -> OperationalError:
    """SQLite's own refusal of a writer while another holds the database's write lock, its busy timeout 0."""
    engine = create_engine(f"sqlite:///{tmp_path / 'busy.db'}", connect_args={"timeout": 0})
    try:
        with engine.connect() as holder, engine.connect() as writer:
            holder.exec_driver_sql("CREATE TABLE t (x INTEGER)")
            holder.commit()
            holder.exec_driver_sql("BEGIN IMMEDIATE")
            with pytest.raises(OperationalError) as raised:
                writer.execute(text("INSERT INTO t VALUES (1)"))
            return raised.value
    finally:
        engine.dispose()


def test_sqlite_busy_is_a_conflict_to_retry(tmp_path):
    meaning = _meaning(_locked_error(tmp_path))
    assert isinstance(meaning, Conflict) and "busy" in str(meaning)


def test_a_message_merely_saying_blocked_is_not_called_busy():
    """PostgreSQL's details say "blocked by process …" (a deadlock, a lock timeout): those are no busy SQLite."""
    error = OperationalError("UPDATE users …", {}, Exception("Process 7 waits for ShareLock; blocked by process 8."))
    assert _meaning(error) is None
