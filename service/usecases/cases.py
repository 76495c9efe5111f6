"""Use cases on cases: start, read, list, history, diagram, cancel."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.db.models import Case, HistoryEntry, Task
from service.errors import Conflict, Invalid

from . import access_log, casefile, policy, queries, roles, search, views
from .casehistory import lock_case
from .context import Actor, Services
from .forms import TEXT_LIMIT
from .stepper import cancel_in_session, start_in_session
from .steps import definition_of

CASE_STATUSES = ("open", "completed", "cancelled", "incident")


def start_case(services: Services, actor: Actor, process: Any, cadre_id: Any, data: Any) -> dict[str, Any]:
    """Open a case of the newest version of a process for a cadre; returns the case, or to a starter that may not
    read it (its roles own no lane of the process) only what it may know (`_started_blind`)."""
    if not isinstance(process, str) or not process:
        raise Invalid("process is required (必须指定流程)", {"process": "必填 (required)"})
    policy.require(actor, "case.start", roles.policy_tables(services), process)
    with services.db.unit_of_work() as session:
        case = start_in_session(services, session, actor, process, cadre_id, data, parent=None)
        if policy.readable_case_ids(session, actor, [case.id]):
            return views.case_view(services, session, case, actor)
        return _started_blind(session, case)


def _started_blind(session: Session, case: Case) -> dict[str, Any]:
    """A case as told to a starter that may not read it: its id and process and the start data it sent (as
    recorded), nothing its first step did: not even its status, since a case ended at once (an ineligible cadre)
    would tell what a start rule's refusal keeps from such a starter; no tasks, holders, outcome or links."""
    start = session.scalar(select(HistoryEntry.detail).where(HistoryEntry.case_id == case.id,
                                                              HistoryEntry.action == "start"))
    return {"id": case.id, "process": case.process_key, "cadre_id": case.cadre_id,
            "data": (start or {}).get("data", {})}


def may_read(services: Services, actor: Actor, case_id: int) -> bool:
    """Whether the caller may read the case (a starter without a lane of it may not, once it is started)."""
    with services.db.unit_of_work(write=False) as session:
        return bool(policy.readable_case_ids(session, actor, [case_id]))


def get_case(services: Services, actor: Actor, case_id: int) -> dict[str, Any]:
    """One case with its data, links and open tasks (if the actor may read it)."""
    return access_log.read_case(services, actor, case_id, "case",
                                lambda session, case: views.case_view(services, session, case, actor))


def list_cases(services: Services, actor: Actor, filters: dict[str, Any], what: str | None = None) -> dict[str, Any]:
    """The cases the actor may read that match the filters, newest first, one page at a time (past the last: empty).

    Each is the whole case, its data included; `what` logs each returned case as a read of it (one INSERT for the
    page), for a caller that hands them on whole (the API); None, for one showing only a summary line of each."""
    page = _list_cases(services, actor, filters)
    if what is not None:
        access_log.note_cases(services, actor, what, [(case["id"], case["cadre_id"]) for case in page["items"]])
    return page


def _list_cases(services: Services, actor: Actor, filters: dict[str, Any]) -> dict[str, Any]:
    policy.require(actor, "case.list")
    query = select(Case).where(policy.case_filter(actor))
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
    if search.clean_query(filters.get("q")):  # a case number, or text in its data, cadre or process
        query = query.where(search.case_match(search.clean_query(filters["q"])))
    if filters.get("overdue"):
        now = datetime.now(UTC)
        overdue = select(Task.case_id).where(queries.overdue(now))
        query = query.where(Case.id.in_(overdue))
    with services.db.unit_of_work(write=False) as session:
        rows, where = queries.page_of(session, query.order_by(Case.id.desc()), filters["page"], filters["per_page"],
                                      clamp=False)
        return {"items": [views.case_view(services, session, case, actor, with_tasks=False) for case in rows], **where}


def _day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def case_history(services: Services, actor: Actor, case_id: int) -> list[dict[str, Any]]:
    """Every entry of the case's history, oldest first."""
    def read(session: Session, case: Case) -> list[dict[str, Any]]:
        entries = session.scalars(select(HistoryEntry).where(HistoryEntry.case_id == case.id)
                                  .order_by(HistoryEntry.id))
        hidden = views.hidden_fields(case, actor)
        return casefile.unlinked_unreadable(session, actor, [views.history_view(entry, hidden) for entry in entries])

    return access_log.read_case(services, actor, case_id, "history", read)


def case_diagram(services: Services, actor: Actor, case_id: int) -> dict[str, Any]:
    """The case's BPMN with the elements it completed and those it is at."""
    return access_log.read_case(services, actor, case_id, "diagram", lambda _session, case: diagram_of(services, case))


def diagram_of(services: Services, case: Case) -> dict[str, Any]:
    """A case's BPMN with its completed and active elements (inside an open session)."""
    diagram = services.runner.diagram(definition_of(services, case), case.state)
    return {"bpmn": case.process_version.bpmn_xml, "completed": list(diagram.completed),
            "active": list(diagram.active)}


def cancel_case(services: Services, actor: Actor, case_id: int, reason: Any) -> dict[str, Any]:
    """Cancel an open case and all its open tasks (admin)."""
    policy.require(actor, "case.cancel")
    if not isinstance(reason, str) or not reason.strip():
        raise Invalid("a reason is required (必须填写撤销理由)", {"reason": "必填 (required)"})
    if len(reason) > TEXT_LIMIT:
        raise Invalid(f"the reason is too long (撤销理由最多 {TEXT_LIMIT} 个字符)",
                      {"reason": f"最多 {TEXT_LIMIT} 个字符 (at most {TEXT_LIMIT} characters)"})
    with services.db.unit_of_work() as session:
        policy.check_case(session, actor, case_id)
        case = lock_case(session, case_id)
        _require_open(case)
        cancel_in_session(services, session, case, (actor.username, "cancel", None, {"reason": reason}))
        return views.case_view(services, session, case, actor)


def _require_open(case: Case) -> None:
    if case.status not in ("open", "incident"):
        raise Conflict(f"case {case.id} is {case.status} (案件已结束)")
