"""Consistency check of every case: the saved state, the task read model, timers, history.

Used by `cadreflow check` after a crash, a restore or a load test: it reads everything and
changes nothing, and reports each fault with the case it concerns.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.db.models import Case, HistoryEntry, Task
from workflows.engine import EngineError, Step

from .context import Services
from .steps import definition_of

BATCH = 200


def check_cases(services: Services, grace_seconds: float | None = None) -> tuple[int, list[str]]:
    """Check every case; returns how many were checked and the faults found."""
    grace = timedelta(seconds=grace_seconds if grace_seconds is not None
                      else float(services.settings["WORKER_POLL_SECONDS"]))
    checked, faults, last_id = 0, [], 0
    while True:
        with services.db.unit_of_work(write=False) as session:
            batch = list(session.scalars(select(Case).where(Case.id > last_id).order_by(Case.id).limit(BATCH)))
            for case in batch:
                faults.extend(f"case {case.id}: {fault}" for fault in _case_faults(services, session, case, grace))
        if not batch:
            return checked, faults
        checked += len(batch)
        last_id = batch[-1].id


def _case_faults(services: Services, session: Session, case: Case, grace: timedelta) -> Iterator[str]:
    try:
        step = services.runner.inspect(definition_of(services, case), case.state)
    except EngineError as exc:
        yield f"saved state does not load: {exc}"
        return
    yield from _task_faults(session, case, step)
    yield from _timer_faults(case, step, grace)
    yield from _history_faults(session, case)


def _task_faults(session: Session, case: Case, step: Step) -> Iterator[str]:
    rows = set(session.scalars(select(Task.id).where(Task.case_id == case.id, Task.status == "open")))
    ready = {task.id for task in step.open_tasks} if case.status == "open" else set()
    if case.status in ("completed", "cancelled") and rows:
        yield f"{case.status} but has open task rows {sorted(rows)}"
    if case.status == "open" and rows != ready:
        yield f"open task rows {sorted(rows)} differ from the engine's ready tasks {sorted(ready)}"
    if case.status == "completed" and not step.completed:
        yield "marked completed but the engine has it running"
    if case.status == "open" and step.completed:
        yield "marked open but the engine has it finished"
    if case.status == "incident" and not step.failed_elements:
        yield "in incident but no element has failed"


def _timer_faults(case: Case, step: Step, grace: timedelta) -> Iterator[str]:
    if case.status != "open":
        return
    due = datetime.fromisoformat(step.next_timer_due) if step.next_timer_due else None
    if due != case.next_timer_due:
        yield f"next_timer_due {case.next_timer_due} differs from the engine's {due}"
    if due is not None and due < datetime.now(UTC) - grace:
        yield f"timer overdue since {due.isoformat()} (more than {grace.total_seconds():g} s)"


def _history_faults(session: Session, case: Case) -> Iterator[str]:
    entries = list(session.execute(select(HistoryEntry.action, HistoryEntry.detail)
                                   .where(HistoryEntry.case_id == case.id).order_by(HistoryEntry.id)))
    if not entries or entries[0].action != "start":
        yield "history does not begin with its start"
    recorded = {e.detail.get("task_id") for e in entries if e.action == "complete"}
    completed = set(session.scalars(select(Task.id).where(Task.case_id == case.id, Task.status == "completed")))
    for task_id in sorted(completed - recorded):
        yield f"task {task_id} completed without a history entry"
