"""The statements every step sends, on the bare driver: SQL compiled once by SQLAlchemy, run without its
per-statement machinery.

A completion locks its case, reads the tasks under the lock, changes the case row, closes a task, opens the next
and appends a history entry. Through the ORM and Core each of those statements costs 60-120 µs of Python (its cache
key, execution context, result object, the flush's bookkeeping) against 10-40 µs in the driver: most of a
completion's database time. Here:

- before each flush (`write_before_flush`, installed on the writing sessions by uow.py) the session's changed cases
  and tasks and its new task rows and history entries are written, and their objects held as written, so the unit
  of work finds nothing left of them; every other model, a case's first insert (its id comes from the database)
  and a row whose relationship changed stay with the unit of work;
- `DirectStatement` runs any statement (`rows` for a query, whose rows `as_read` turns into the session's objects
  as the ORM's loader would), and `pipelined` sends several to PostgreSQL in one round trip;
- `flush_then` runs a statement that refers to rows the flush writes (new tasks' notices) right after it, in the
  flush's own round trip when this module wrote all of it;
- `settle` writes what the session holds pending before such a statement, as the ORM's autoflush would.

What SQLAlchemy would send is what is sent: each statement is compiled by SQLAlchemy for the connection's
dialect, its values go through their column types' bind processors, a case's update checks and moves its version
column as the ORM's versioning does (StaleDataError when another transaction moved it), and driver errors are
raised as SQLAlchemy's `DBAPIError`s, so the unit of work reports them as before. `before_cursor_execute` and
`after_cursor_execute` listeners (the tests' and benchmarks' statement counters) see each statement, without an
execution context; SQLAlchemy's echo logging (`echo=True`, or its `sqlalchemy.engine` logger at INFO) logs each
with its parameters (unless the engine hides them, as the service's do), marked `[direct]` where SQLAlchemy's own
say how they were cached.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, TypeVar, cast

from sqlalchemy import Column, Connection, Table, bindparam, insert, inspect, update
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import PassiveFlag, Session, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.exc import StaleDataError
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.util import _repr_params

from .models import Case, HistoryEntry, Task

# Rows appended in bulk (a batch of new cases) go through Core's multi-row INSERT, which beats the driver's
# executemany there; a step's one or two rows do not.
LARGEST_DIRECT_BATCH = 8

M = TypeVar("M")


@dataclass(frozen=True)
class _Compiled:
    """A statement as one kind of dialect's driver takes it: its SQL, how values become its parameters, and how
    a query's raw values become its columns' values."""

    sql: str
    names: tuple[str, ...]  # bind names, in the order of a positional driver's parameters
    positional: bool
    required: frozenset[str]  # the names each run must give; the others are the statement's own values
    fixed: Mapping[str, Any]
    processors: Mapping[str, Callable[[Any], Any]]
    results: tuple[Callable[[Any], Any] | None, ...]  # per column of a query's rows

    def parameters(self, values: Mapping[str, Any]) -> Sequence[Any] | dict[str, Any]:
        if missing := self.required - values.keys():
            raise KeyError(f"no value for {sorted(missing)}")
        given = {**self.fixed, **values}
        processed = {name: (self.processors[name](given[name]) if name in self.processors else given[name])
                     for name in self.names}
        return [processed[name] for name in self.names] if self.positional else processed

    def row(self, raw: Sequence[Any]) -> tuple[Any, ...]:
        return tuple(value if process is None else process(value) for value, process in zip(raw, self.results,
                                                                                                  strict=True))


class Sent:
    """A statement sent on a driver cursor: what it did, read once."""

    def __init__(self, connection: Connection, cursor: Any, compiled: _Compiled, parameters: list[Any]) -> None:
        self.connection, self.cursor, self.compiled, self.parameters = connection, cursor, compiled, parameters

    def touched(self) -> int:
        """How many rows it inserted, changed or deleted."""
        try:
            return int(self.cursor.rowcount)
        except self.connection.dialect.loaded_dbapi.Error as exc:
            raise self.failed(exc) from exc
        finally:
            self.cursor.close()

    def rows(self) -> list[tuple[Any, ...]]:
        """The rows it selected, each value as its column's type reads it."""
        try:
            return [self.compiled.row(raw) for raw in self.cursor.fetchall()]
        except self.connection.dialect.loaded_dbapi.Error as exc:
            raise self.failed(exc) from exc
        finally:
            self.cursor.close()

    def failed(self, exc: Exception) -> Exception:
        """The driver's error as SQLAlchemy raises it (a lost connection invalidated), so the unit of work tells a
        constraint's refusal or an unreachable database apart as it does for its own statements; the cursor
        closed. (Plain try blocks where this is used: a context manager per statement costs more than the
        statement's own Python.)"""
        self.cursor.close()
        return _as_sqlalchemy(self.connection, exc, self.compiled.sql, self.parameters, self.cursor)


_PIPELINE = "cadreflow.pipeline"  # in a connection's info while `pipelined` runs: the statements sent in it


@contextmanager
def pipelined(connection: Connection) -> Iterator[None]:
    """Statements sent inside go to PostgreSQL together and their outcomes come back together, in one round trip
    (psycopg's pipeline mode; read each with `Sent` after the block). On SQLite, whose statements make no trip,
    they simply run one by one."""
    start = getattr(connection.connection.driver_connection, "pipeline", None)
    if start is None:
        yield
        return
    info = connection.info  # held: a connection lost in the pipeline answers no more questions
    outermost = _PIPELINE not in info  # psycopg nests pipelines: an inner one's statements are the outer one's too
    sent: list[Sent] = info.setdefault(_PIPELINE, [])
    try:
        with start():
            yield
    except connection.dialect.loaded_dbapi.Error as exc:
        raise _pipeline_failed(connection, exc, sent) from exc
    finally:
        if outermost:
            info.pop(_PIPELINE, None)


def _pipeline_failed(connection: Connection, exc: Exception, sent: list[Sent]) -> Exception:
    """A pipeline's error as SQLAlchemy raises it, naming the statements the pipeline sent so far, in order: the
    driver raises a refusal when it next reads results, while sending a later statement or at the end, and does
    not say which statement it was (the database's message names the table or constraint). Their cursors are
    closed: nothing more is read from them."""
    for one in sent:
        one.cursor.close()
    statements = "; ".join(one.compiled.sql for one in sent)
    return _as_sqlalchemy(connection, exc, f"(a pipeline of: {statements})" if sent else "(a pipeline)", [], None)


def _as_sqlalchemy(connection: Connection, exc: Exception, sql: str, parameters: list[Any], cursor: Any) -> Exception:
    dialect = connection.dialect
    gone = bool(dialect.is_disconnect(cast(Any, exc), connection.connection, cursor))
    if gone:
        connection.invalidate(exc)
    return cast(Exception, DBAPIError.instance(sql, parameters, exc, dialect.loaded_dbapi.Error,
                                               hide_parameters=connection.engine.hide_parameters,
                                               connection_invalidated=gone, dialect=dialect))


def _echo(connection: Connection, sql: str, parameters: list[Any], many: bool) -> None:
    """Log a statement as SQLAlchemy's echo logs its own: the SQL, then its parameters shortened as it shortens
    them (a case's saved state would fill pages), or only that they are hidden when the engine hides them."""
    connection._log_info(sql)
    if connection.engine.hide_parameters:
        connection._log_info("[direct] [SQL parameters hidden due to hide_parameters=True]")
    else:
        connection._log_info("[direct] %r", _repr_params(parameters if many else parameters[0], batches=10,
                                                         ismulti=many))


class DirectStatement:
    """A statement compiled once per dialect and run on the driver's own cursor."""

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self._compiled: dict[Hashable, _Compiled] = {}

    def run(self, connection: Connection, values: Sequence[Mapping[str, Any]]) -> int:
        """Run for each set of values (one execute, or one executemany); returns the rows it touched."""
        return self.send(connection, values).touched()

    def rows(self, connection: Connection, values: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """A query's rows, each value as its column's type reads it (as SQLAlchemy's result would give it)."""
        return self.send(connection, [values]).rows()

    def send(self, connection: Connection, values: Sequence[Mapping[str, Any]]) -> Sent:
        """Send the statement for each set of values; its outcome is read from what this returns (inside
        `pipelined`, once the pipeline has gone)."""
        dialect = connection.dialect
        compiled = self._compiled.get(_kind(dialect)) or self._compile(dialect)
        parameters = [compiled.parameters(one) for one in values]
        sent = Sent(connection, connection.connection.cursor(), compiled, parameters)
        pipeline = connection.info.get(_PIPELINE)
        if pipeline is not None:
            pipeline.append(sent)
        many = len(parameters) > 1
        try:
            if connection._echo:  # SQLAlchemy's SQL logging is on: these show beside its own statements
                _echo(connection, compiled.sql, parameters, many)
            if connection.dispatch.before_cursor_execute:  # only statement counters listen: free otherwise
                connection.dispatch.before_cursor_execute(connection, sent.cursor, compiled.sql,
                                                          parameters if many else parameters[0], None, many)
            if many:
                sent.cursor.executemany(compiled.sql, cast(Any, parameters))
            else:
                sent.cursor.execute(compiled.sql, parameters[0])
            if connection.dispatch.after_cursor_execute:  # sent, not yet answered inside a pipeline
                connection.dispatch.after_cursor_execute(connection, sent.cursor, compiled.sql,
                                                         parameters if many else parameters[0], None, many)
        except dialect.loaded_dbapi.Error as exc:  # in a pipeline, maybe an earlier statement's refusal
            raise (sent.failed(exc) if pipeline is None else _pipeline_failed(connection, exc, pipeline)) from exc
        return sent

    def _compile(self, dialect: Dialect) -> _Compiled:
        compiled = cast(SQLCompiler, self.statement.compile(dialect=dialect))
        required = frozenset(name for name, bind in compiled.binds.items() if bind.required)
        # The statement as the driver gets it, an IN over a list given when it was built written out in full.
        state = compiled.construct_expanded_state({name: None for name in required}, escape_names=False)
        types = {name: bind.type for name, bind in compiled.binds.items()}
        for name, bind in compiled.binds.items():
            if bind.expanding:
                types.update((expanded, bind.type) for expanded in state.parameters if expanded.startswith(f"{name}_"))
        names = tuple(state.positiontup) if state.positiontup is not None else tuple(state.parameters)
        fixed = {name: value for name, value in state.parameters.items() if name not in required}
        processors = {name: processor for name in names
                      if (processor := types[name].dialect_impl(dialect).bind_processor(dialect)) is not None}
        selected = getattr(self.statement, "selected_columns", ())
        results = tuple(column.type.dialect_impl(dialect).result_processor(dialect, None) for column in selected)
        result = self._compiled[_kind(dialect)] = _Compiled(state.statement, names, bool(compiled.positional), required,
                                                         fixed, processors, results)
        return result


_LOADED_COLUMNS: dict[type[Any], tuple[Column[Any], ...]] = {}


def loaded_columns(model: type[Any]) -> tuple[Column[Any], ...]:
    """The columns a query of `model` loads at once (not its deferred ones), in the order of its mapping."""
    columns = _LOADED_COLUMNS.get(model)
    if columns is None:
        columns = _LOADED_COLUMNS[model] = tuple(cast(Column[Any], attribute.columns[0])
                                                 for attribute in inspect(model).column_attrs if not attribute.deferred)
    return columns


def read_values(model: type[Any], row: Sequence[Any], start: int = 0) -> dict[str, Any]:
    """The values of `model`'s `loaded_columns` in a row that selected them from `start` on, by attribute name."""
    return {column.key: value for column, value in zip(loaded_columns(model), row[start:], strict=False)}


def settle(session: Session) -> None:
    """Before a statement sent here reads or refers to rows: write what the session holds pending first, as the
    ORM's autoflush does before its own statements (unless autoflush is off, as in `no_autoflush`)."""
    if session.autoflush:
        session.flush()


_AFTER_WRITES = "cadreflow.direct.after_writes"  # statements waiting for the flush under way, and their values


def flush_then(session: Session, statement: DirectStatement, values: Sequence[Mapping[str, Any]]) -> None:
    """Flush the session, then run the statement for each set of values: for a statement referring to the rows
    the flush writes. When `write_before_flush` writes all of the flush, the statement joins its round trip."""
    session.info[_AFTER_WRITES] = [(statement, values)]
    try:
        session.flush()
    finally:
        left = session.info.pop(_AFTER_WRITES, [])
    for waiting, its_values in left:
        waiting.run(session.connection(), its_values)


def _kind(dialect: Dialect) -> Hashable:
    """What a statement's compiled form depends on: the dialect and driver, and the server's version (several
    engines, of several databases, may live in one process; an id could be reused)."""
    return type(dialect), dialect.paramstyle, dialect.server_version_info


def as_read(session: Session, model: type[M], values: dict[str, Any]) -> M:
    """A row read on the bare driver as the session's object of it: the object the session already holds,
    refreshed to these values (as a query with populate_existing refreshes it), or a new one, held as read.
    Columns not in `values` load when first used, as deferred ones do."""
    mapper = inspect(model)
    key = mapper.identity_key_from_primary_key([values[column.key] for column in mapper.primary_key])
    held = session.identity_map.get(key)
    if held is not None:
        for name, value in values.items():
            set_committed_value(held, name, value)
        return cast(M, held)
    # As the ORM's own loader builds a row: no constructor, no attribute events.
    return cast(M, _hold_as_read(session, mapper.class_manager.new_instance(), values))


def _hold_as_read(session: Session, row: Any, values: dict[str, Any]) -> Any:
    """A row not in the session (new, or taken out of it) held by it as just read with these values: its identity
    from its key, no change left for a flush; a column not among them loads when first used."""
    row.__dict__.update(values)  # unseen by attribute events: the history they would keep is reset below anyway
    make_transient_to_detached(row)
    session.add(row)
    return row


# Models whose rows this module writes, and for each the version column its updates check, if any.
DIRECT_MODELS: dict[type[Any], str | None] = {Case: "version", Task: None, HistoryEntry: None}
_APPENDED = (HistoryEntry, Task)  # new rows written here, in this order


def write_before_flush(session: Session, _context: Any, _instances: Any) -> None:
    """Write the session's changed cases and tasks and its new task rows and history entries (of cases already
    in the database) before the unit of work flushes the rest: on PostgreSQL in one round trip. Everything is
    read off the objects first, so nothing loads while the pipeline waits. Inside a savepoint the unit of work
    writes everything: its bookkeeping, not this, undoes a savepoint's rows in the session when it is rolled
    back (the unit of work of uow.py closes its session after any rollback)."""
    if session.in_nested_transaction():
        return
    updates = [(row, change) for row in session.dirty if type(row) in DIRECT_MODELS
               if (change := _changes(row)) is not None]
    new_cases = {row.id for row in session.new if isinstance(row, Case)}
    appended = [row for row in session.new if type(row) in _APPENDED and row.case_id is not None
                and row.case_id not in new_cases]
    if not updates and not appended:
        return
    connection = session.connection()
    batches = [(model, _inserted(session, model, rows)) for model in _APPENDED
               if (rows := [row for row in appended if type(row) is model])]
    for row, _ in updates:
        _mark_written(session, row)
    # Statements waiting for this flush (`flush_then`) follow the writes in their round trip, unless the unit of
    # work has rows of its own to write after these: they may refer to those. Asked only when one waits.
    following = session.info.pop(_AFTER_WRITES) if session.info.get(_AFTER_WRITES) \
        and not _left_for_unit_of_work(session, batches) else []
    with pipelined(connection):
        sent_updates = [(row, statement.send(connection, [values])) for row, (statement, values) in updates]
        sent_inserts = [_insert_statement(_table(model)).send(connection, values)
                        for model, values in batches if len(values) <= LARGEST_DIRECT_BATCH]
        sent_inserts += [statement.send(connection, values) for statement, values in following]
    for model, values in batches:  # Core's multi-row INSERT reads its outcome at once: never inside a pipeline
        if len(values) > LARGEST_DIRECT_BATCH:
            connection.execute(insert(_table(model)), values)
    for sent in sent_inserts:
        sent.touched()
    for row, sent in sent_updates:
        if sent.touched() != 1:  # the row's version moved on since it was read: another writer's change
            raise StaleDataError(f"UPDATE statement on table '{_table(type(row)).name}' expected to update 1 row(s); "
                                 "0 were matched.")


def _left_for_unit_of_work(session: Session, batches: list[tuple[type[Any], list[dict[str, Any]]]]) -> bool:
    """Whether the unit of work writes anything after this module's writes: a batch too large for them, a row
    of another kind or a case's first insert, a deletion, a change only it knows how to write."""
    return (any(len(values) > LARGEST_DIRECT_BATCH for _, values in batches) or bool(session.new)
            or bool(session.deleted) or any(session.is_modified(row) for row in session.dirty))


def _changes(row: Any) -> tuple[DirectStatement, dict[str, Any]] | None:
    """The UPDATE of the row's changed columns and its values (a versioned row: only at the version it was read at,
    and moved on; the row's version is moved on in memory too); None when there is nothing to write, or a change
    only the unit of work knows how to write."""
    state = inspect(row)
    table = _table(type(row))
    modified = state.committed_state.keys()  # each attribute set since it was loaded, with the value it had then
    if modified - table.c.keys():
        return None  # a relationship changed: the unit of work, which keeps its key columns in step, writes the row
    changes = {}
    for key in sorted(modified):
        # What `state.attrs[key].history` gives, without building an attribute state for every column first.
        history = state.get_history(key, PassiveFlag.PASSIVE_NO_INITIALIZE)
        if history.added and not (history.deleted and table.c[key].type.compare_values(history.added[0],
                                                                                       history.deleted[0])):
            changes[key] = history.added[0]
    if not changes:
        return None
    version = DIRECT_MODELS[type(row)]
    values = {**changes, "_key": getattr(row, _primary_key(table))}
    if version is not None:
        values["_version"] = getattr(row, version)
        values[version] = values["_version"] + 1
        set_committed_value(row, version, values[version])
    return _update_statement(table, tuple(changes), version), values


def _mark_written(session: Session, row: Any) -> None:
    """Let the session hold the row as it now is in the database, with no change left for its flush. This is
    what the unit of work does to the rows it has just written; the public way (expunge the row, make it
    transient, then detached, add it back) walks every relationship's cascade twice, at several times the cost."""
    state = inspect(row)
    state._commit_all(state.dict, session.identity_map)


@lru_cache(maxsize=256)
def _update_statement(table: Table, columns: tuple[str, ...], version: str | None) -> DirectStatement:
    key = _primary_key(table)
    statement = update(table).where(table.c[key] == bindparam("_key"))
    if version is not None:
        statement = statement.where(table.c[version] == bindparam("_version"))
        columns = (*columns, version)
    return DirectStatement(statement.values({name: bindparam(name) for name in columns}))


def _inserted(session: Session, model: type[Any], rows: list[Any]) -> list[dict[str, Any]]:
    """The values to INSERT for new rows, in the order they were added; those with a key of their own then stay
    in the session as written rows (the same objects), the others (history entries, whose ids nobody reads)
    leave it."""
    table = _table(model)
    columns = _insert_columns(table)
    values = [{name: _value(row, table, name) for name in columns} for row in rows]
    for row in rows:
        session.expunge(row)
    if _primary_key(table) in columns:  # a key of its own: the same object is the written row from now on
        for row, written in zip(rows, values, strict=True):
            _hold_as_read(session, row, written)  # every column given: none is read again on first use
    return values


def _value(row: Any, table: Table, name: str) -> Any:
    """A new row's value of a column: as set, else the column's Python default, else NULL."""
    if name in row.__dict__:
        return row.__dict__[name]
    default = cast(Any, table.c[name].default)  # a ColumnDefault: a value, or a callable given the context
    if default is None:
        return None
    return default.arg(None) if default.is_callable else default.arg


@lru_cache(maxsize=16)
def _insert_columns(table: Table) -> tuple[str, ...]:
    """The columns an INSERT names: all but a key the database numbers. A column the database fills by its own
    default is refused: every row of a batch names every column, so a row that left it unset would write NULL
    over that default (`_value` knows only the model's Python defaults)."""
    columns = tuple(column for column in table.c if column is not table.autoincrement_column)
    if unfilled := [column.key for column in columns if column.server_default is not None and column.default is None]:
        raise TypeError(f"{table.name}: {', '.join(unfilled)} take a database default but no Python default; rows "
                        "written here would store NULL instead (give the model a Python default too)")
    return tuple(column.key for column in columns)


@lru_cache(maxsize=16)
def _insert_statement(table: Table) -> DirectStatement:
    return DirectStatement(insert(table).values({name: bindparam(name) for name in _insert_columns(table)}))


def _table(model: type[Any]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


def _primary_key(table: Table) -> str:
    (column,) = table.primary_key.columns
    return str(column.key)

