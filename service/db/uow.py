"""The unit of work: one transaction per use case, on SQLite or PostgreSQL.

On SQLite, writing use cases open their transaction with BEGIN IMMEDIATE so two writers are
serialised up front (the second then sees the first's result) instead of both reading, both
computing, and one failing to upgrade its lock. Within one process they also queue on a lock:
SQLite's own busy handler polls with growing sleeps, which put the p99 of a completion near a
second under four concurrent clients. On PostgreSQL, case rows are locked with
SELECT ... FOR UPDATE and the case's version column catches any lost update; reading use cases
run in autocommit (no BEGIN/COMMIT round trips; READ COMMITTED gives each statement its own
snapshot either way).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar, cast

from sqlalchemy import CursorResult, Engine, Executable, FromClause, Insert, Row, Table, create_engine, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from service.errors import Conflict, ServiceError, Unavailable, WrittenMeanwhile
from service.private_files import private_file, tighten

from .credentials import LISTENER_NAME, CredentialCache, NotifiedCache, PolledCache
from .direct import write_before_flush
from .schema import upgrade

_AFTER_COMMIT = "cadreflow.after_commit"
log = logging.getLogger(__name__)

M = TypeVar("M")


class Database:
    """Engines and session factories for one database URL."""

    def __init__(self, url: str, credential_seconds: float = 0.0) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            _keep_sqlite_files_private(url)
        self.write_engine = self._engine(url, immediate=True)
        # Reading on PostgreSQL runs in autocommit: at READ COMMITTED every statement takes its own snapshot
        # inside a transaction too, so BEGIN and COMMIT would only add two round trips to every read.
        self.read_engine = self._engine(url, immediate=False) if self.is_sqlite else \
            self.write_engine.execution_options(isolation_level="AUTOCOMMIT")
        self._write = sessionmaker(self.write_engine, expire_on_commit=False)
        event.listen(self._write, "before_flush", write_before_flush)  # a step's rows on the bare driver
        self._writers = threading.RLock() if self.is_sqlite else contextlib.nullcontext()
        self._read = sessionmaker(self.read_engine, expire_on_commit=False)
        # Who holds a token or session, kept between requests while every change to them is seen.
        self.credentials = self._credential_cache(credential_seconds)

    def _engine(self, url: str, immediate: bool) -> Engine:
        # hide_parameters: a statement's values (case data, personal reports, password and token hashes) never reach
        # a log line or an error's text, which end up in places with fewer readers' checks than the database.
        if not self.is_sqlite:
            engine = create_engine(url, pool_size=10, max_overflow=10, hide_parameters=True)
            _ping_when_idle(engine)
            return engine
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, hide_parameters=True)
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

    def read_rows(self, statement: Executable, parameters: Mapping[str, Any]) -> Sequence[Row[Any]]:
        """The rows of one read statement, on a bare connection: for a lookup every request makes (who holds
        this token), where setting up and tearing down an ORM session costs more than the query itself."""
        try:
            with self.read_engine.connect() as connection:
                return connection.execute(statement, parameters).all()
        except DBAPIError as exc:
            meaning = _meaning(exc) if unreachable(exc) else None
            if meaning is None:
                raise
            raise meaning from exc

    def refresh_statistics(self, *models: type[Any]) -> None:
        """Let PostgreSQL's planner see the rows a bulk job has just written (ANALYZE). Autovacuum analyses a
        table at most once a minute, never where it is switched off, and a plan chosen on the figures of a
        near-empty table can read the whole table in every statement of the job. A failure only loses the
        refresh. SQLite keeps no statistics unless asked: nothing to refresh."""
        if self.is_sqlite:
            return
        try:
            with self.write_engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                for model in models:
                    table = connection.dialect.identifier_preparer.format_table(cast(Table, model.__table__))
                    connection.execute(text(f"ANALYZE {table}"))
        except SQLAlchemyError:
            log.warning("could not refresh the planner's statistics of %s", [m.__name__ for m in models], exc_info=True)

    @staticmethod
    def after_commit(session: Session, callback: Callable[[], None]) -> None:
        """Run `callback` once this session's transaction has committed (never if it rolls back)."""
        session.info.setdefault(_AFTER_COMMIT, []).append(callback)

    def _transaction(self, session: Session) -> Iterator[Session]:
        try:
            yield session
            session.commit()
            for callback in session.info.pop(_AFTER_COMMIT, []):
                callback()
        except SQLAlchemyError as exc:
            session.rollback()
            meaning = _meaning(exc)
            if meaning is None:
                raise
            raise meaning from exc
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def credentials_changed(self, session: Session) -> None:
        """Tokens, sessions, users or roles change in this transaction: forget the kept holders at its commit
        (other processes learn of it through the database's triggers)."""
        if self.credentials is not None:
            self.after_commit(session, self.credentials.forget_all)

    def _credential_cache(self, seconds: float) -> CredentialCache | None:
        if seconds <= 0:
            return None
        if not self.is_sqlite:
            return NotifiedCache(self._listening_connection, seconds)
        path = self.write_engine.url.database
        return PolledCache(path, seconds) if path and path != ":memory:" else None

    def _listening_connection(self) -> Any:
        """A connection of its own, outside the pool, for the credential cache to LISTEN on."""
        import psycopg

        url = self.write_engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        return psycopg.connect(url, autocommit=True, application_name=LISTENER_NAME, keepalives=1,
                               keepalives_idle=10, keepalives_interval=5, keepalives_count=3)

    def dispose(self) -> None:
        if self.credentials is not None:
            self.credentials.close()
        self.write_engine.dispose()
        if self.is_sqlite:  # on PostgreSQL the read engine shares the write engine's pool
            self.read_engine.dispose()


# SQLSTATEs of PostgreSQL and messages of SQLite for a unique key taken, or a referenced row gone, meanwhile.
_RACE_STATES = frozenset({"23505", "23503"})
_RACE_MESSAGES = ("UNIQUE constraint failed", "FOREIGN KEY constraint failed")


def _lost_a_race(exc: IntegrityError) -> bool:
    """Whether a constraint refused a write because of another transaction's (not a NOT NULL or CHECK: a bug)."""
    state = getattr(exc.orig, "sqlstate", None)
    return state in _RACE_STATES if state is not None else any(text in str(exc.orig) for text in _RACE_MESSAGES)


# SQLSTATE classes and codes of a server that cannot be reached or is going away: connection exceptions (08...),
# an administrator's or a crash's shutdown, a server still starting.
_GONE_STATES = ("08", "57P01", "57P02", "57P03")


def unreachable(exc: DBAPIError) -> bool:
    """Whether a failure is the database being out of reach (restarting, down, the network), not the statement:
    the request can be retried as it is in a moment. Checked in a writing transaction too: a connection lost
    there loses the transaction, never half of it."""
    if exc.connection_invalidated:
        return True
    state = getattr(exc.orig, "sqlstate", None)
    if isinstance(state, str) and state:
        return state.startswith(_GONE_STATES)
    # psycopg reports a failure to connect (refused, reset, a server shutting down) with no SQLSTATE.
    return isinstance(exc, OperationalError) and type(exc.orig).__module__.startswith("psycopg")


# SQLSTATEs of PostgreSQL undoing a transaction for another's sake: a deadlock it broke (40P01; a writer taking a
# user's row after a case's, racing a deactivation taking them the other way) or a serialization failure (40001).
_RETRY_STATES = frozenset({"40P01", "40001"})


def _meaning(exc: SQLAlchemyError) -> ServiceError | None:
    """What a failed transaction means to its caller, when it is not a bug (None: a bug, raised as it is)."""
    if isinstance(exc, StaleDataError):
        return Conflict("the case was changed by someone else; reload and retry (案件已被他人修改，请刷新后重试)")
    if isinstance(exc, IntegrityError):
        # Two requests created the same record (or one removed what the other referred to) at the same moment:
        # each checked first, but only the database's constraint saw both.
        return WrittenMeanwhile("this conflicts with a change made at the same moment; reload and retry "
                                "(与同时发生的修改冲突，请刷新后重试)") if _lost_a_race(exc) else None
    if isinstance(exc, DBAPIError) and getattr(exc.orig, "sqlstate", None) in _RETRY_STATES:
        return Conflict("this collided with a change made at the same moment and was undone; retry "
                        "(与同时进行的修改相互冲突，操作已撤销，请重试)")
    # SQLite's "database is locked" (or "database table is locked"): its busy timeout ran out. Matched on the
    # driver's own message, not on the text anywhere: PostgreSQL's say "blocked by process" in their details.
    if isinstance(exc, OperationalError) and " is locked" in str(exc.orig).lower():
        return Conflict("the database is busy; retry (数据库繁忙，请重试)")
    if isinstance(exc, DBAPIError) and unreachable(exc):
        return Unavailable("the database cannot be reached right now; retry in a moment "
                           "(数据库暂时无法连接，请稍后重试)")
    return None


IDLE_BEFORE_PING = 5.0  # seconds a pooled connection may rest before its next checkout checks it is alive


def _ping_when_idle(engine: Engine) -> None:
    """Check a pooled PostgreSQL connection before use only if it rested a while: one that came back a moment
    ago is alive (a round trip per request saved), while one idle across a server restart is found dead here
    and replaced, instead of failing the request that drew it."""
    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["checked_in_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        rested = time.monotonic() - record.info.get("checked_in_at", time.monotonic())
        if rested < IDLE_BEFORE_PING:
            return
        try:
            dbapi_connection.execute("SELECT 1")
            dbapi_connection.rollback()
        except Exception as exc:  # any failure of a ping means the connection is unusable
            raise DisconnectionError("a pooled connection died while idle") from exc


# Every SQLite connection's settings (bench/bench_floor.py opens bare connections with them too).
SQLITE_PRAGMAS = ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", "busy_timeout=30000")


def _keep_sqlite_files_private(url: str) -> None:
    """The database file made 0600 before SQLite first opens it (SQLite gives its -wal and -shm files the database
    file's mode), and those files of an earlier, world-readable start tightened."""
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    if path.parent.is_dir():  # else SQLite reports the missing folder itself, as before
        private_file(path)
    for suffix in ("-wal", "-shm", "-journal"):
        tighten(path.with_name(path.name + suffix))


def _configure_sqlite(engine: Engine, begin: str) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql(begin)


def existing(session: Session, model: type[M], key: Any) -> M:
    """The row `key` names, for a key the caller holds from the database itself (a missing row is a bug)."""
    row = session.get(model, key)
    if row is None:
        raise LookupError(f"{model.__name__} {key!r} vanished inside its own transaction")
    return row


# The two databases' own INSERT, which alone takes ON CONFLICT; keyed by dialect name.
_INSERTS: dict[str, Callable[[Any], postgresql.Insert | sqlite.Insert]] = {"postgresql": postgresql.insert,
                                                                           "sqlite": sqlite.insert}


def insert_skipping_duplicates(dialect_name: str, table: FromClause | type[Any]) -> Insert:
    """An INSERT into `table` that leaves out rows whose key is already there (ON CONFLICT DO NOTHING), in the
    SQL of the named dialect: concurrent writers of the same rows (seeding, noting a participant) both succeed."""
    return _INSERTS[dialect_name](table).on_conflict_do_nothing()


def rows_changed(session: Session, statement: Executable) -> int:
    """Run an UPDATE or DELETE and say how many rows it touched (a claim taken once, a lease won)."""
    result = session.execute(statement)
    return cast(CursorResult[Any], result).rowcount
