"""Apply an engine step to the database: the case row, the task read model, history, effects.

Every writing use case ends here, inside its one transaction, so a step is saved whole or not
at all: case state, open tasks, history entries, cadre changes and linked child cases together.
Its parts: effects.py (what a step does outside its case), readmodel.py (the `tasks` rows),
casehistory.py (the case lock and the chained history).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from service.db.models import Cadre, Case, Task, utcnow
from service.errors import CaseIncident, Conflict, Invalid
from workflows.engine import DataRefused, EngineEvent, Incident, LoopLimitExceeded, ProcessDefinition, Step

from . import search
from .casehistory import SYSTEM_NAME, record
from .context import Actor, Services
from .effects import Effects
from .readmodel import parse_time, sync_tasks

T = TypeVar("T")


class LoopRefused(Conflict):
    """The engine refused a step in which the case looped too often (409, nothing stored). A person's action is
    refused so; a worker's timer step would run into the same loop at every poll, so it holds the case instead."""


def run_engine(operation: Callable[[], T]) -> T:
    """Run an engine operation, turning failures of BPMN code into a case incident (409)."""
    try:
        return operation()
    except Incident as exc:
        raise CaseIncident(f"automatic step failed (自动步骤执行失败): {exc.message}",
                           exc.element_id, exc.line) from exc
    except LoopLimitExceeded as exc:
        raise LoopRefused(str(exc)) from exc
    except DataRefused as exc:
        raise Invalid(str(exc), {"data": str(exc)}) from exc


def rule_checker(services: Services) -> Callable[[list[str], dict[str, Any]], list[bool]]:
    """Evaluate a form's rules in the engine's sandbox, all in one step; a rule that fails to evaluate is a 409
    incident."""
    def check(expressions: list[str], scope: dict[str, Any]) -> list[bool]:
        return run_engine(lambda: services.runner.check_rules(expressions, scope)) if expressions else []
    return check


def apply_step(session: Session, case: Case, step: Step, effects: Effects,
               start_child: Callable[[Case, str, dict[str, Any], str | None], None],
               opened: list[Task] | None = None) -> None:
    """Store a step: case row, task read model, history of automatic steps, deferred effects. With
    `opened`, the tasks it opens are added to that list for the caller to announce (a batch of new
    cases tells their people with one lookup). Nothing is flushed here: the next statement or the commit writes
    the case with its tasks and history in one flush."""
    now = utcnow()
    case.state, case.data, case.updated_at = step.state, step.data, now
    _link_cadre(session, case)
    case.search_text = search.search_text(case.process_version.name, case.cadre_id, step.data, case.process_key)
    _set_status(case, step)
    case.outcome = step.outcome
    case.next_timer_due = parse_time(step.next_timer_due) if not step.completed else None
    sync_tasks(session, case, step, now, opened)
    for event in step.events:
        record(session, case, SYSTEM_NAME, event.action, event.element_id, _event_detail(event))
    if step.incident is not None:
        record(session, case, SYSTEM_NAME, "incident", step.incident.element_id, case.incident)
    for deferred in effects.deferred:
        deferred(case)
    for process, data, parent_task_id in effects.children:
        if parent_task_id is None or parent_task_id in step.calls:  # else the step left that call as it reached it
            start_child(case, process, data, parent_task_id)


# Processes whose cadre a task names, never the start (a public report's triage, §7; start_rules.py refuses
# a start that names one).
CADRE_FROM_TASK = frozenset({"public_report"})


def _link_cadre(session: Session, case: Case) -> None:
    """A case opened without a cadre takes the one its data names once a task links it; a case whose cadre a
    task names follows that task's answer, so a triage naming a cadre wins over one named earlier."""
    cadre_id = case.data.get("cadre_id") if isinstance(case.data, dict) else None
    if not isinstance(cadre_id, str) or cadre_id == case.cadre_id:
        return
    if case.cadre_id is not None and case.process_key not in CADRE_FROM_TASK:
        return  # every other case keeps the cadre it was opened for
    if session.get(Cadre, cadre_id) is not None:
        detail = {"cadre_id": cadre_id, **({"previous_cadre_id": case.cadre_id} if case.cadre_id else {})}
        case.cadre_id = cadre_id
        record(session, case, SYSTEM_NAME, "link_cadre", None, detail)


def held_since(case: Case) -> str:
    """When the case was last held as an incident, kept across failed retries (each a new incident): the time a
    retry gives back to a period the hold stopped (portal.retry_call); now for a case not held yet."""
    if case.status == "incident" and case.incident:
        kept = case.incident.get("held_since") or case.incident.get("at")
        if isinstance(kept, str):
            return kept
    return utcnow().isoformat()


def _set_status(case: Case, step: Step) -> None:
    if step.incident is not None:
        since = held_since(case)
        case.status = "incident"
        case.incident = {"message": step.incident.message, "element_id": step.incident.element_id,
                         "line": step.incident.line, "at": utcnow().isoformat(), "held_since": since}
        return
    if step.failed_elements:
        return  # still failed (e.g. migrated but not yet retried): the incident stands
    if case.status == "incident":
        case.status, case.incident = "open", None
    if step.completed and case.status == "open":
        case.status = "completed"


def _event_detail(event: EngineEvent) -> dict[str, Any]:
    return {"name": event.name, **event.detail}


def definition_of(services: Services, case: Case) -> ProcessDefinition:
    """The parsed process version a case runs on."""
    return services.definitions.get(case.process_version)


def actor_name(actor: Actor) -> str:
    return actor.username
