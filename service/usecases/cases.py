"""Use cases on cases: start, read, list, history, diagram, cancel."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from service.db.models import Cadre, Case, HistoryEntry, ProcessVersion, Task
from service.errors import Conflict, Forbidden, Invalid, NotFound

from . import views
from .context import SYSTEM, Actor, Services
from .forms import validate_form
from .steps import Effects, apply_step, definition_of, lock_case, record, run_engine, service_handler
from .users import user_has_role_in

CASE_STATUSES = ("open", "completed", "cancelled", "incident")


def start_case(services: Services, actor: Actor, process: Any, cadre_id: Any, data: Any) -> dict[str, Any]:
    """Open a case of the newest version of a process for a cadre."""
    if not isinstance(process, str) or not process:
        raise Invalid("process is required (必须指定流程)", {"process": "必填 (required)"})
    _check_may_start(services, actor, process)
    with services.db.unit_of_work() as session:
        case = start_in_session(services, session, actor, process, cadre_id, data, parent=None)
        return views.case_view(services, session, case)


def _check_may_start(services: Services, actor: Actor, process: str) -> None:
    allowed = services.settings["START_ROLES"].get(process, [])
    if not actor.has_any(*allowed):
        raise Forbidden(f"your roles may not start {process} (无权发起此流程)")


def start_in_session(services: Services, session: Session, actor: Actor, process: str, cadre_id: Any,
                     data: Any, parent: Case | None) -> Case:
    """Start a case inside an open transaction (also used for linked child cases)."""
    if not isinstance(data, dict | None):
        raise Invalid("data must be a JSON object (数据必须是对象)", {"data": "必须是对象 (must be an object)"})
    version = _newest_version(session, process)
    definition = services.definitions.get(version)
    start_data = {**(data or {}), "cadre_id": cadre_id}
    validate_form(definition.start_form, start_data, user_has_role_in(session))
    if session.get(Cadre, cadre_id) is None:
        raise Invalid("unknown cadre (干部不存在)", {"cadre_id": "干部不存在 (no such cadre)"})
    effects = Effects(session, services.today())
    step = run_engine(lambda: services.runner.start(definition, start_data,
                                                    service_handler(process, effects)))
    case = Case(process_key=process, process_version_id=version.id, process_version=version,
                cadre_id=cadre_id, status="open", parent_case_id=parent.id if parent else None,
                data={}, state="", created_by=actor.username)
    session.add(case)
    session.flush()
    record(session, case, actor.username, "start", None, {"data": start_data,
                                                           "parent_case_id": case.parent_case_id})
    apply_step(session, case, step, effects, child_starter(services, session))
    return case


def child_starter(services: Services, session: Session) -> Callable[[Case, str, dict[str, Any]], None]:
    def start_child(parent: Case, process: str, data: dict[str, Any]) -> None:
        child = start_in_session(services, session, SYSTEM, process, data.pop("cadre_id"), data, parent)
        record(session, parent, SYSTEM.username, "child_started", None,
               {"child_case_id": child.id, "process": process})
    return start_child


def _newest_version(session: Session, process: str) -> ProcessVersion:
    version = session.scalar(select(ProcessVersion).where(ProcessVersion.process_key == process)
                             .order_by(ProcessVersion.version.desc()).limit(1))
    if version is None:
        raise Invalid(f"unknown process {process} (流程不存在)", {"process": "流程不存在 (no such process)"})
    return version


def get_case(services: Services, actor: Actor, case_id: int) -> dict[str, Any]:
    """One case with its data, links and open tasks."""
    with services.db.unit_of_work(write=False) as session:
        return views.case_view(services, session, _case(session, case_id))


def list_cases(services: Services, actor: Actor, filters: dict[str, Any]) -> dict[str, Any]:
    """Cases matching the filters, newest first, one page at a time."""
    query = select(Case)
    if filters.get("process"):
        query = query.where(Case.process_key == filters["process"])
    if filters.get("status"):
        query = query.where(Case.status == filters["status"])
    if filters.get("cadre_id"):
        query = query.where(Case.cadre_id == filters["cadre_id"])
    if filters.get("outcome"):
        query = query.where(Case.outcome == filters["outcome"])
    if filters.get("created_from"):
        query = query.where(Case.created_at >= _day_start(filters["created_from"]))
    if filters.get("created_to"):
        query = query.where(Case.created_at < _day_start(filters["created_to"] + timedelta(days=1)))
    if filters.get("overdue"):
        now = datetime.now(UTC)
        overdue = select(Task.case_id).where(Task.status == "open",
                                             or_(Task.overdue.is_(True), Task.due_at < now))
        query = query.where(Case.id.in_(overdue))
    page, per_page = filters["page"], filters["per_page"]
    with services.db.unit_of_work(write=False) as session:
        total = session.scalar(select(func.count()).select_from(query.subquery()))
        rows = session.scalars(query.order_by(Case.id.desc()).offset((page - 1) * per_page).limit(per_page))
        return {"items": [views.case_view(services, session, case, with_tasks=False) for case in rows],
                "total": total, "page": page, "per_page": per_page}


def _day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def case_history(services: Services, actor: Actor, case_id: int) -> list[dict[str, Any]]:
    """Every entry of the case's history, oldest first."""
    with services.db.unit_of_work(write=False) as session:
        _case(session, case_id)
        entries = session.scalars(select(HistoryEntry).where(HistoryEntry.case_id == case_id)
                                  .order_by(HistoryEntry.id))
        return [views.history_view(entry) for entry in entries]


def case_diagram(services: Services, actor: Actor, case_id: int) -> dict[str, Any]:
    """The case's BPMN with the elements it completed and those it is at."""
    with services.db.unit_of_work(write=False) as session:
        case = _case(session, case_id)
        diagram = services.runner.diagram(definition_of(services, case), case.state)
        return {"bpmn": case.process_version.bpmn_xml, "completed": list(diagram.completed),
                "active": list(diagram.active)}


def cancel_case(services: Services, actor: Actor, case_id: int, reason: Any) -> dict[str, Any]:
    """Cancel an open case and all its open tasks (admin)."""
    if not actor.has_any("admin"):
        raise Forbidden("only an admin may cancel a case (仅管理员可撤销案件)")
    if not isinstance(reason, str) or not reason.strip():
        raise Invalid("a reason is required (必须填写撤销理由)", {"reason": "必填 (required)"})
    with services.db.unit_of_work() as session:
        case = lock_case(session, case_id)
        _require_open(case)
        step = run_engine(lambda: services.runner.cancel(definition_of(services, case), case.state))
        case.status = "cancelled"
        record(session, case, actor.username, "cancel", None, {"reason": reason})
        apply_step(session, case, step, Effects(session, services.today()), child_starter(services, session))
        return views.case_view(services, session, case)


def _require_open(case: Case) -> None:
    if case.status not in ("open", "incident"):
        raise Conflict(f"case {case.id} is {case.status} (案件已结束)")


def _case(session: Session, case_id: int) -> Case:
    case = session.get(Case, case_id)
    if case is None:
        raise NotFound(f"case {case_id} not found (案件不存在)")
    return case
