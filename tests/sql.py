"""The SQL statements a piece of code sends, caught with SQLAlchemy's `before_cursor_execute` event."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

from sqlalchemy import event

from service.db.uow import Database


class Sent(NamedTuple):
    statement: str
    parameters: Any

    def starts(self, keyword: str) -> bool:
        """Whether the statement begins with `keyword` (case-insensitive), e.g. "SELECT" or "INSERT INTO tasks"."""
        return self.statement.lstrip().upper().startswith(keyword.upper())


@contextmanager
def statements_sent(db: Database) -> Iterator[list[Sent]]:
    """Every statement sent on `db` while the block runs, reads and writes, each once."""
    sent: list[Sent] = []

    def note(_connection: Any, _cursor: Any, statement: str, parameters: Any, *_rest: Any) -> None:
        sent.append(Sent(statement, parameters))

    # SQLite reads on an engine of their own; on PostgreSQL the read engine is the write engine with
    # options, whose statements already reach the write engine's listeners.
    engines = [db.write_engine, db.read_engine] if db.is_sqlite else [db.write_engine]
    for engine in engines:
        event.listen(engine, "before_cursor_execute", note)
    try:
        yield sent
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", note)
