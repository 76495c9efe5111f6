"""Apply an engine step to the database: the case row, the task read model, history, effects.

Every writing use case ends here, inside its one transaction, so a step is saved whole or not
at all: case state, open tasks, history entries, cadre changes and linked child cases together.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any, TypeVar

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

import workflows.glue as glue
from service.db.models import Assessment, Cadre, Case, ClearedAudit, HistoryEntry, Sanction, Task, utcnow
from service.errors import CaseIncident, Conflict, Invalid, NotFound
from workflows.engine import DataRefused, EngineEvent, Incident, LoopLimitExceeded, ProcessDefinition, Step

from .context import Actor, Services

Deferred = Callable[[Case], None]
T = TypeVar("T")


class Effects:
    """The service's implementation of the glue's CaseEffects port, for one case in one session."""

    def __init__(self, session: Session, today: date) -> None:
        self.session = session
        self.today = today
        self.deferred: list[Deferred] = []
        self.children: list[tuple[str, dict[str, Any]]] = []

    def cadre_facts(self, cadre_id: str) -> dict[str, Any]:
        cadre = self.session.get(Cadre, cadre_id)
        open_accountability = self.session.scalar(select(exists().where(
            Case.process_key == "accountability", Case.status == "open", Case.cadre_id == cadre_id)))
        grades = sorted(cadre.assessments, key=lambda a: (a.year, a.id)) if cadre else []
        ban = cadre.promotion_ban_until if cadre else None
        return {"promotion_ban_until": ban.isoformat() if ban else "", "today": self.today.isoformat(),
                "open_accountability": bool(open_accountability),
                "latest_grade": grades[-1].grade if grades else ""}

    def set_post(self, cadre_id: str, post: str, started_on: date | None) -> None:
        cadre = self.session.get(Cadre, cadre_id)
        cadre.post, cadre.post_started_on = post, started_on

    def record_sanction(self, cadre_id: str, sanction: str, ban_until: date) -> None:
        cadre = self.session.get(Cadre, cadre_id)
        cadre.promotion_ban_until = max(ban_until, cadre.promotion_ban_until or ban_until)
        self.deferred.append(lambda case: self.session.add(
            Sanction(cadre_id=cadre_id, case_id=case.id, sanction=sanction, decided_on=self.today)))

    def record_cleared_audit(self, cadre_id: str) -> None:
        self.deferred.append(lambda case: self.session.add(
            ClearedAudit(cadre_id=cadre_id, case_id=case.id, cleared_on=self.today)))

    def record_assessment(self, cadre_id: str, year: int, grade: str) -> None:
        self.deferred.append(lambda case: self.session.add(
            Assessment(cadre_id=cadre_id, case_id=case.id, year=year, grade=grade)))

    def record_measure(self, cadre_id: str, year: int, measure: str) -> None:
        def apply(case: Case) -> None:
            self.session.flush()
            assessment = self.session.scalar(select(Assessment).where(
                Assessment.case_id == case.id, Assessment.year == year))
            if assessment is None:  # a redesigned diagram may handle before recording the grade
                assessment = Assessment(cadre_id=cadre_id, case_id=case.id, year=year, grade="incompetent")
                self.session.add(assessment)
            assessment.measure = measure
        self.deferred.append(apply)

    def start_child_case(self, process: str, data: dict[str, Any]) -> None:
        self.children.append((process, dict(data)))


def service_handler(process_key: str, effects: Effects) -> Callable[[str, dict, dict], dict]:
    """The callback the engine uses for service tasks: glue by name, with this case's effects."""
    def handle(name: str, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        return glue.operation(process_key, name)(effects, data, params)
    return handle


def run_engine(operation: Callable[[], T]) -> T:
    """Run an engine operation, turning failures of BPMN code into a case incident (409)."""
    try:
        return operation()
    except Incident as exc:
        raise CaseIncident(f"automatic step failed (自动步骤执行失败): {exc.message}",
                           exc.element_id, exc.line) from exc
    except LoopLimitExceeded as exc:
        raise Conflict(str(exc)) from exc
    except DataRefused as exc:
        raise Invalid(str(exc), {"data": str(exc)}) from exc


def rule_checker(services: Services) -> Callable[[str, dict[str, Any]], bool]:
    """Evaluate form rules in the engine's sandbox; a rule that fails to evaluate is a 409 incident."""
    def check(expression: str, scope: dict[str, Any]) -> bool:
        return run_engine(lambda: services.runner.check_rule(expression, scope))
    return check


def apply_step(session: Session, case: Case, step: Step, effects: Effects,
               start_child: Callable[[Case, str, dict[str, Any]], None]) -> None:
    """Store a step: case row, task read model, history of automatic steps, deferred effects."""
    now = utcnow()
    case.state, case.data, case.updated_at = step.state, step.data, now
    _set_status(case, step)
    case.outcome = step.outcome
    case.next_timer_due = _parse_time(step.next_timer_due) if not step.completed else None
    session.flush()
    _sync_tasks(session, case, step, now)
    for event in step.events:
        record(session, case, SYSTEM_NAME, event.action, event.element_id, _event_detail(event))
    if step.incident is not None:
        record(session, case, SYSTEM_NAME, "incident", step.incident.element_id, case.incident)
    for deferred in effects.deferred:
        deferred(case)
    for process, data in effects.children:
        start_child(case, process, data)


SYSTEM_NAME = "system"


def _set_status(case: Case, step: Step) -> None:
    if step.incident is not None:
        case.status = "incident"
        case.incident = {"message": step.incident.message, "element_id": step.incident.element_id,
                         "line": step.incident.line, "at": utcnow().isoformat()}
        return
    if step.failed_elements:
        return  # still failed (e.g. migrated but not yet retried): the incident stands
    if case.status == "incident":
        case.status, case.incident = "open", None
    if step.completed and case.status == "open":
        case.status = "completed"


def record(session: Session, case: Case, actor: str, action: str, task: str | None = None,
           detail: dict[str, Any] | None = None) -> None:
    """Append one entry to the case's history."""
    session.add(HistoryEntry(case_id=case.id, at=utcnow(), actor=actor, action=action, task=task,
                             detail=detail or {}))


def _event_detail(event: EngineEvent) -> dict[str, Any]:
    return {"name": event.name, **event.detail}


def _sync_tasks(session: Session, case: Case, step: Step, now: datetime) -> None:
    rows = {row.id: row for row in session.scalars(
        select(Task).where(Task.case_id == case.id, Task.status == "open"))}
    wanted = {task.id: task for task in step.open_tasks}
    for row_id, row in rows.items():
        if row_id not in wanted:
            row.status, row.completed_at = "cancelled", now
    for task in step.open_tasks:
        row = rows.get(task.id)
        if row is None:
            session.add(Task(id=task.id, case_id=case.id, process_key=case.process_key,
                             process_version_id=case.process_version_id, element_id=task.element_id,
                             name=task.name, role=task.role, assignee=task.assignee, status="open",
                             created_at=now, due_at=_parse_time(task.due_at), overdue=False))
        else:  # still open; after a migration it belongs to the new version
            row.process_version_id, row.name, row.role = case.process_version_id, task.name, task.role
            row.due_at = _parse_time(task.due_at) if task.due_at is not None else row.due_at
    for element_id in step.overdue_elements:
        for row in rows.values():
            if row.element_id == element_id and row.status == "open":
                row.overdue = True


def _parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def definition_of(services: Services, case: Case) -> ProcessDefinition:
    """The parsed process version a case runs on."""
    return services.definitions.get(case.process_version)


def lock_case(session: Session, case_id: int) -> Case:
    """Load a case for writing (row-locked on PostgreSQL, serialised by BEGIN IMMEDIATE on SQLite)."""
    case = session.scalar(select(Case).where(Case.id == case_id).with_for_update(of=Case))
    if case is None:
        raise NotFound(f"case {case_id} not found (案件不存在)")
    return case


def actor_name(actor: Actor) -> str:
    return actor.username
