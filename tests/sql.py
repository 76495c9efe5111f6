"""The SQL statements a piece of code sends, caught with SQLAlchemy's `before_cursor_execute` event, and on
PostgreSQL the round trips they take."""

from __future__ import annotations

import tempfile
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


@contextmanager
def round_trips(db: Database) -> Iterator[list[str]]:
    """What ended each round trip to PostgreSQL while the block ran ("Sync" for an extended query or a pipeline,
    `Query "COMMIT"` for a simple one), read from libpq's trace of every connection checked out meanwhile;
    filled in when the block ends. PostgreSQL only: SQLite makes no trips."""
    ends: list[str] = []
    with tempfile.TemporaryFile("w+") as trace:
        def start(dbapi: Any, *_rest: Any) -> None:
            dbapi.pgconn.trace(trace.fileno())

        def stop(dbapi: Any, *_rest: Any) -> None:
            dbapi.pgconn.untrace()

        event.listen(db.write_engine, "checkout", start)
        event.listen(db.write_engine, "checkin", stop)
        try:
            yield ends
        finally:
            event.remove(db.write_engine, "checkout", start)
            event.remove(db.write_engine, "checkin", stop)
        trace.seek(0)
        for line in trace:  # timestamp, direction, length, message, its fields
            fields = line.rstrip("\n").split("\t")
            if len(fields) > 3 and fields[1] == "F" and fields[3].split()[0] in ("Sync", "Query"):
                ends.append(" ".join(field.strip() for field in fields[3:]))
