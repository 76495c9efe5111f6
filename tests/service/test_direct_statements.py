"""service/db/direct.py: the rows a step writes, and those a task action locks, on the bare driver.

What it writes must be byte for byte what SQLAlchemy writes, its refusals must reach callers as before (a
stale case a Conflict, a taken key a WrittenMeanwhile), and what it reads must be what the ORM reads.
"""

import logging
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.db.direct import (
    LARGEST_DIRECT_BATCH,
    DirectStatement,
    _insert_columns,
    as_read,
    loaded_columns,
    pipelined,
    read_values,
)
from service.db.models import Case, CaseParticipant, HistoryEntry, Notification, ProcessVersion, Task
from service.errors import Conflict, Invalid, NotFound, WrittenMeanwhile
from service.usecases.casehistory import lock_case, record
from service.usecases.context import Actor
from service.usecases.notifications import tasks_opened
from service.usecases.tasks import _attach_version, complete_task, locked_task
from tests.api.support import start_admonishment
from tests.sql import round_trips, statements_sent

MOMENT = datetime(2026, 12, 6, 3, 4, 5, 678901, tzinfo=UTC)
DISCIPLINE = Actor("discipline", frozenset({"discipline"}))


@pytest.fixture
def intake(api, cadre) -> tuple[int, str]:
    """An admonishment case (of the `cadre`) and its open intake task."""
    case_id = start_admonishment(api)["id"]
    return case_id, api.open_task(case_id, "intake_review")["id"]


def raw_row(session: Session, table: str, where: str, **values: Any) -> dict[str, str | None]:
    """A row as the database holds it, every column but its id cast to text (no type of SQLAlchemy's reads it)."""
    result = session.execute(text(f"SELECT * FROM {table} LIMIT 0"))
    columns = [name for name in result.keys() if name != "id"]  # noqa: SIM118 - a result's column names
    casts = ", ".join(f"CAST({name} AS TEXT)" for name in columns)
    return dict(zip(columns, session.execute(text(f"SELECT {casts} FROM {table} WHERE {where}"), values).one(),
                    strict=True))


def shape(moment: str | None) -> str:
    """A stored time's format: its digits masked, its fraction of a second left out (PostgreSQL's text drops
    the fraction's trailing zeros)."""
    return re.sub(r"\d", "0", re.sub(r"\.\d+", "", moment or ""))


def task_values(case: Case, task_id: str) -> dict[str, Any]:
    return {"id": task_id, "case_id": case.id, "process_key": case.process_key,
            "process_version_id": case.process_version_id, "element_id": "conduct_talk", "name": "谈话「甲」",
            "role": "discipline", "assignee": None, "status": "open", "created_at": MOMENT,
            "due_at": MOMENT + timedelta(days=3), "overdue": True, "completed_by": None, "completed_at": None}


def test_rows_written_directly_are_what_sqlalchemy_writes(services, api, cadre):
    first, second = (start_admonishment(api)["id"] for _ in range(2))
    detail = {"说明": "群众反映", "nested": [1, 2.5, None, True], "at": "2026-12-06"}
    with services.db.unit_of_work() as session:
        case = lock_case(session, first)
        session.add(Task(**task_values(case, "direct-task")))  # through direct.py at the flush
        record(session, case, "discipline", "note", None, detail)
        case.data, case.next_timer_due = {"摘要": "直写", "n": 1}, MOMENT
        session.flush()
        other = session.get(Case, second)
        session.execute(insert(Task), [task_values(case, "core-task")])  # through SQLAlchemy's Core
        session.execute(insert(HistoryEntry), [{"case_id": second, "seq": 99, "at": MOMENT, "actor": "discipline",
                                                "action": "note", "task": None, "detail": detail, "hash": "h"}])
        session.execute(update(Case).where(Case.id == second).values(data={"摘要": "直写", "n": 1},
                                                                     next_timer_due=MOMENT))
        direct_entry = session.scalar(select(HistoryEntry.seq).where(HistoryEntry.case_id == first)
                                      .order_by(HistoryEntry.seq.desc()).limit(1))
        assert other is not None
    with services.db.unit_of_work() as session:
        assert raw_row(session, "tasks", "id = 'direct-task'") == raw_row(session, "tasks", "id = 'core-task'")
        direct_history = raw_row(session, "history", "case_id = :case AND seq = :seq", case=first, seq=direct_entry)
        core_history = raw_row(session, "history", "case_id = :case AND seq = 99", case=second)
        for column in ("actor", "action", "task", "detail"):  # the same words and JSON text
            assert direct_history[column] == core_history[column]
        assert shape(direct_history["at"]) == shape(core_history["at"])  # the same time format
        columns = "data, next_timer_due"
        direct_case = session.execute(text(f"SELECT {columns} FROM cases WHERE id = :id"), {"id": first}).one()
        core_case = session.execute(text(f"SELECT {columns} FROM cases WHERE id = :id"), {"id": second}).one()
        assert tuple(direct_case) == tuple(core_case)


def test_a_case_changed_meanwhile_is_a_conflict_and_nothing_is_written(services, api, cadre):
    case_id = start_admonishment(api)["id"]
    with pytest.raises(Conflict), services.db.unit_of_work() as session:
        case = lock_case(session, case_id)
        # Another writer moved the version on (what a lost lock would let happen).
        session.execute(text("UPDATE cases SET version = version + 1 WHERE id = :id"), {"id": case_id})
        case.data = {"overwritten": True}
        record(session, case, "discipline", "note", None, {})
    with services.db.unit_of_work(write=False) as session:
        assert session.get(Case, case_id).data != {"overwritten": True}
        assert [entry["action"] for entry in api.history(case_id)] == ["start"]


def test_a_taken_task_id_is_written_meanwhile_and_the_transaction_is_undone(services, api, intake):
    case_id, taken = intake
    with pytest.raises(WrittenMeanwhile), services.db.unit_of_work() as session:
        case = lock_case(session, case_id)
        record(session, case, "discipline", "note", None, {"written": "never"})
        session.add(Task(**task_values(case, taken)))
    assert [entry["action"] for entry in api.history(case_id)] == ["start"]


def test_statement_counters_see_what_is_sent_directly(services, api, cadre):
    case_id = start_admonishment(api)["id"]
    with statements_sent(services.db) as sent:
        api.complete(case_id, "intake_review", form="talk", reason="情况属实")
    assert sum(statement.starts("UPDATE cases") for statement in sent) == 1
    assert sum(statement.starts("INSERT INTO history") for statement in sent) == 1
    assert sum(statement.starts("UPDATE tasks") for statement in sent) == 1
    assert sum(statement.starts("INSERT INTO tasks") for statement in sent) == 1


def test_a_case_the_session_held_is_read_again_under_its_lock(services, api, intake):
    case_id, task_id = intake
    with services.db.unit_of_work() as session:
        early = session.get(Case, case_id)
        held_task = session.get(Task, task_id)
        assert early is not None and held_task is not None
        seq = early.history_seq
        session.execute(text("UPDATE cases SET history_seq = history_seq + 5 WHERE id = :id"), {"id": case_id})
        session.execute(text("UPDATE tasks SET assignee = 'someone' WHERE id = :id"), {"id": task_id})
        task, case = locked_task(session, DISCIPLINE, task_id)
        assert case is early and case.history_seq == seq + 5  # the session's object, as the database has it
        assert task is held_task and task.assignee == "someone"
        assert case.process_version.process_key == "admonishment"
        assert case.process_version.bpmn_xml.lstrip().startswith("<")  # a deferred column loads when used
        session.rollback()


def test_a_task_of_a_case_the_actor_may_not_read_is_not_found(services, intake):
    _, task_id = intake
    with pytest.raises(NotFound), services.db.unit_of_work() as session:
        locked_task(session, Actor("stranger", frozenset({"audit"})), task_id)


def test_a_change_pending_on_a_held_task_is_written_before_the_lock_reads_it_again(services, api, intake):
    case_id, task_id = intake
    with services.db.unit_of_work() as session:
        held_task = session.get(Task, task_id)
        assert held_task is not None
        held_task.assignee = "discipline"
        task, _ = locked_task(session, DISCIPLINE, task_id)
        assert task is held_task and task.assignee == "discipline"
    assert api.open_task(case_id, "intake_review")["assignee"] == "discipline"


def test_a_case_whose_version_row_did_not_join_gets_its_version_looked_up(services, api, cadre):
    """What a migration committed while the lock waited leaves: the locked row's new version id, no version
    columns beside it (PostgreSQL rechecks the join against the version row it had read before)."""
    case_id = start_admonishment(api)["id"]
    with services.db.unit_of_work() as session:
        case = session.get(Case, case_id)
        assert case is not None
        expected = case.process_version
        session.expunge_all()
        values = read_values(Case, [getattr(case, column.key) for column in loaded_columns(Case)])
        fresh = as_read(session, Case, values)
        _attach_version(session, fresh, {column.key: None for column in loaded_columns(ProcessVersion)})
        assert fresh.process_version.id == expected.id and fresh.process_version in session


def participants(services, case_id: int) -> set[str]:
    with services.db.unit_of_work(write=False) as session:
        return set(session.scalars(select(CaseParticipant.username).where(CaseParticipant.case_id == case_id)))


def test_a_completion_notes_its_participant_under_the_lock_and_a_refused_one_does_not(services, intake):
    case_id, task_id = intake
    before = participants(services, case_id)
    assert "discipline" not in before
    with pytest.raises(Invalid):  # the participant's row was sent with the lock: undone with the rest
        complete_task(services, DISCIPLINE, task_id, {"form": "no such form"})
    assert participants(services, case_id) == before
    complete_task(services, DISCIPLINE, task_id, {"form": "talk", "reason": "情况属实"})
    assert participants(services, case_id) == before | {"discipline"}


def test_notices_of_tasks_the_unit_of_work_writes_are_written_after_them(services, api, cadre):
    """A batch too large for direct.py goes through Core after its writes: the notices referring to its rows
    (a foreign key) must wait for it rather than join direct.py's round trip."""
    case_id = start_admonishment(api)["id"]
    with services.db.unit_of_work() as session:
        case = lock_case(session, case_id)
        batch = [Task(**task_values(case, f"batch-{n}")) for n in range(LARGEST_DIRECT_BATCH + 1)]
        session.add_all(batch)
        tasks_opened(session, case, batch)
    with services.db.unit_of_work(write=False) as session:
        noticed = set(session.scalars(select(Notification.task_id).where(Notification.task_id.like("batch-%"))))
    assert noticed == {task.id for task in batch}


def test_a_completion_takes_four_round_trips_on_postgresql(services, intake):
    """BEGIN (psycopg waits for it), the lock with the tasks under it and the participant, the step's writes with
    the new task's notices, COMMIT."""
    if services.db.is_sqlite:
        pytest.skip("SQLite's statements make no round trips; this runs on the suite's PostgreSQL pass")
    _, task_id = intake
    with round_trips(services.db) as ends, statements_sent(services.db) as sent:
        complete_task(services, DISCIPLINE, task_id, {"form": "talk", "reason": "情况属实"})
    assert sum(statement.starts("INSERT INTO notifications") for statement in sent) == 1
    assert ends == ["Sync", "Sync", "Sync", 'Query "COMMIT"']


def test_a_statement_refused_in_a_pipeline_is_named_in_the_error_and_nothing_it_sent_is_kept(services, intake):
    """On PostgreSQL the refusal arrives while a later statement is sent or when the pipeline ends: the error names
    the statements sent in it (the driver cannot say which one failed), not just the one being sent; on SQLite,
    the statement itself. Either way the unit of work reports a conflict and keeps nothing."""
    case_id, _ = intake
    adding = DirectStatement(insert(CaseParticipant.__table__))
    reading = DirectStatement(select(Case.id).where(Case.id == case_id))
    with pytest.raises(WrittenMeanwhile) as refused, services.db.unit_of_work() as session:
        connection = session.connection()
        with pipelined(connection):
            reading.send(connection, [{}])
            with pipelined(connection):  # nested, as psycopg allows: one pipeline's statements
                adding.send(connection, [{"username": "twice", "case_id": case_id}])
                adding.send(connection, [{"username": "twice", "case_id": case_id}])
            reading.send(connection, [{}])
    cause = refused.value.__cause__
    assert isinstance(cause, IntegrityError)
    statement = cause.statement or ""
    assert "INSERT INTO case_participants" in statement
    if not services.db.is_sqlite:
        assert statement.startswith("(a pipeline of: ") and "SELECT cases.id" in statement
    assert "twice" not in participants(services, case_id)


def test_a_task_the_actor_may_not_read_gets_no_participant_row_even_inside_the_transaction(services, intake):
    case_id, task_id = intake
    with services.db.unit_of_work() as session:
        with pytest.raises(NotFound):
            locked_task(session, Actor("stranger", frozenset({"audit"})), task_id, taking_part=True)
        assert session.scalar(select(CaseParticipant.username).where(
            CaseParticipant.case_id == case_id, CaseParticipant.username == "stranger")) is None
        session.rollback()


def test_a_table_whose_column_only_the_database_fills_is_refused_before_any_row_is_written():
    filled_by_database = Table("filled", MetaData(), Column("id", Integer, primary_key=True),
                               Column("kind", String, server_default="plain"))
    with pytest.raises(TypeError, match="kind take a database default"):
        _insert_columns(filled_by_database)
    both = Table("both", MetaData(), Column("id", Integer, primary_key=True),
                 Column("kind", String, default="plain", server_default="plain"))
    assert _insert_columns(both) == ("kind",)
    assert "created_at" in _insert_columns(Task.__table__)  # the models written here pass


def test_sql_logging_shows_the_statements_sent_directly_and_never_their_values(services, api, cadre, caplog):
    """The service's engines hide parameters: SQL logging, when on, shows every statement of a completion, those
    sent on the bare driver too, and none of the case's data or the actor's name."""
    case_id = start_admonishment(api)["id"]
    api.open_task(case_id, "intake_review")
    services.db.dispose()  # a connection takes the logger's level when it is checked out
    with caplog.at_level(logging.INFO, logger="sqlalchemy.engine"):
        api.complete(case_id, "intake_review", form="talk", reason="情况属实，需谈话")
    logged = [record.getMessage() for record in caplog.records if record.name.startswith("sqlalchemy.engine")]
    assert any(line.startswith("UPDATE cases") for line in logged)
    assert any(line.startswith("INSERT INTO history") for line in logged)
    assert "[direct] [SQL parameters hidden due to hide_parameters=True]" in logged
    assert not [line for line in logged if "情况属实" in line or "'discipline'" in line]


def test_an_engine_showing_parameters_logs_direct_ones_shortened(tmp_path, caplog):
    engine = create_engine(f"sqlite:///{tmp_path / 'shown.db'}")
    table = Table("notes", MetaData(), Column("id", Integer, primary_key=True), Column("body", String))
    table.metadata.create_all(engine)
    with caplog.at_level(logging.INFO, logger="sqlalchemy.engine"), engine.begin() as connection:
        DirectStatement(insert(table)).run(connection, [{"id": 1, "body": "甲" * 5000}])
    direct = [record.getMessage() for record in caplog.records if record.getMessage().startswith("[direct] ")]
    assert len(direct) == 1 and "甲甲甲" in direct[0] and len(direct[0]) < 1000
    engine.dispose()


def test_a_refused_direct_statement_names_no_value_in_its_error(services, api, intake):
    """A driver error raised through direct.py carries the statement, not its values (the engine hides them)."""
    case_id, task_id = intake
    with pytest.raises(WrittenMeanwhile) as refused, services.db.unit_of_work() as session:
        case = lock_case(session, case_id)
        session.add(Task(**{**task_values(case, task_id), "name": "秘密的任务名"}))  # the intake task's id: taken
    error = refused.value.__cause__
    assert isinstance(error, IntegrityError) and "INSERT INTO tasks" in str(error)
    assert "秘密的任务名" not in str(error)
