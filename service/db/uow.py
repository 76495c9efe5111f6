"""The unit of work: one transaction per use case, on SQLite or PostgreSQL.

On SQLite, writing use cases open their transaction with BEGIN IMMEDIATE so two writers are
serialised up front (the second then sees the first's result) instead of both reading, both
computing, and one failing to upgrade its lock. Within one process they also queue on a lock:
SQLite's own busy handler polls with growing sleeps, which put the p99 of a completion near a
second under four concurrent clients. On PostgreSQL, case rows are locked with
SELECT ... FOR UPDATE and the case's version column catches any lost update.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from service.errors import Conflict

from .schema import upgrade


class Database:
    """Engines and session factories for one database URL."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.write_engine = self._engine(url, immediate=True)
        self.read_engine = self._engine(url, immediate=False) if self.is_sqlite else self.write_engine
        self._write = sessionmaker(self.write_engine, expire_on_commit=False)
        self._writers = threading.RLock() if self.is_sqlite else contextlib.nullcontext()
        self._read = sessionmaker(self.read_engine, expire_on_commit=False)

    def _engine(self, url: str, immediate: bool) -> Engine:
        if not self.is_sqlite:
            return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        _configure_sqlite(engine, "BEGIN IMMEDIATE" if immediate else "BEGIN")
        return engine

    def create_schema(self) -> None:
        """Create the schema, or upgrade it to the newest migration."""
        upgrade(self.write_engine)

    @contextmanager
    def unit_of_work(self, write: bool = True) -> Iterator[Session]:
        """A session whose work is committed together or not at all."""
        with self._writers if write else contextlib.nullcontext():
            yield from self._transaction((self._write if write else self._read)())

    def _transaction(self, session: Session) -> Iterator[Session]:
        try:
            yield session
            session.commit()
        except StaleDataError as exc:
            session.rollback()
            raise Conflict("the case was changed by someone else; reload and retry "
                           "(案件已被他人修改，请刷新后重试)") from exc
        except OperationalError as exc:
            session.rollback()
            if "locked" in str(exc).lower():
                raise Conflict("the database is busy; retry (数据库繁忙，请重试)") from exc
            raise
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def dispose(self) -> None:
        self.write_engine.dispose()
        if self.read_engine is not self.write_engine:
            self.read_engine.dispose()


def _configure_sqlite(engine: Engine, begin: str) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", "busy_timeout=30000"):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql(begin)
