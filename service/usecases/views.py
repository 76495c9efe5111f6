"""Read models: plain dictionaries built from rows, never from deserialised workflows."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.db.models import Cadre, Case, HistoryEntry, ProcessVersion, Task

from . import learning
from .context import Services

MAX_ID = 2**63 - 1  # the largest id a database integer column holds


def iso(value: datetime | date | None) -> str | None:
    return value.isoformat() if value is not None else None


def task_view(services: Services, session: Session, task: Task) -> dict[str, Any]:
    """A task row as the API shows it, with its form schema."""
    now = datetime.now(UTC)
    return {
        "id": task.id, "case_id": task.case_id, "process": task.process_key,
        "element_id": task.element_id, "name": task.name, "role": task.role,
        "assignee": task.assignee, "status": task.status, "created_at": iso(task.created_at),
        "due_at": iso(task.due_at),
        "overdue": task.status == "open" and (task.overdue or (task.due_at is not None and task.due_at < now)),
        "form": services.definitions.by_id(session, task.process_version_id).forms.get(task.element_id, {}),
        "completed_by": task.completed_by, "completed_at": iso(task.completed_at),
    }


def case_view(services: Services, session: Session, case: Case, with_tasks: bool = True) -> dict[str, Any]:
    """A case as the API shows it."""
    children = session.scalars(select(Case.id).where(Case.parent_case_id == case.id).order_by(Case.id))
    view = {
        "id": case.id, "process": case.process_key, "process_version": case.process_version.version,
        "cadre_id": case.cadre_id, "status": case.status, "outcome": case.outcome, "data": case.data,
        "created_at": iso(case.created_at), "updated_at": iso(case.updated_at),
        "parent_case_id": case.parent_case_id, "child_case_ids": list(children),
        "next_timer_due": iso(case.next_timer_due), "incident": case.incident,
    }
    if with_tasks:
        tasks = session.scalars(select(Task).where(Task.case_id == case.id, Task.status == "open")
                                .order_by(Task.created_at, Task.id))
        context = task_context(session, case)
        view["open_tasks"] = [{**task_view(services, session, t), "context": context} for t in tasks]
    return view


def history_view(entry: HistoryEntry) -> dict[str, Any]:
    view = {"at": iso(entry.at), "actor": entry.actor, "action": entry.action, "detail": entry.detail}
    if entry.task:
        view["task"] = entry.task
    return view


def task_context(session: Session, case: Case) -> dict[str, Any]:
    """What a person needs beside a task's form: here, the cadre's study record for an assessment."""
    if case.process_key == "annual_assessment":
        return {"learning": learning.yearly_compliance(session, case.cadre_id, case.data.get("year"))}
    return {}


def cadre_view(session: Session, cadre: Cadre) -> dict[str, Any]:
    """A cadre with its sanctions, cleared audits, assessments and cases."""
    cases = session.scalars(select(Case).where(Case.cadre_id == cadre.id).order_by(Case.id))
    return {
        "id": cadre.id, "name": cadre.name, "unit": cadre.unit, "post": cadre.post,
        "post_level": cadre.post_level, "post_started_on": iso(cadre.post_started_on),
        "promotion_ban_until": iso(cadre.promotion_ban_until),
        "sanctions": [{"sanction": s.sanction, "case_id": s.case_id, "decided_on": iso(s.decided_on)}
                      for s in cadre.sanctions],
        "cleared_audits": [{"case_id": a.case_id, "cleared_on": iso(a.cleared_on)} for a in cadre.cleared_audits],
        "assessments": [{"year": a.year, "grade": a.grade, "case_id": a.case_id, "measure": a.measure}
                        for a in cadre.assessments],
        "cases": [{"id": c.id, "process": c.process_key, "status": c.status, "outcome": c.outcome}
                  for c in cases],
        "learning": learning.yearly_compliance(session, cadre.id),
    }


def version_view(version: ProcessVersion) -> dict[str, Any]:
    return {"key": version.process_key, "name": version.name, "version": version.version,
            "deployed_at": iso(version.deployed_at), "deployed_by": version.deployed_by,
            "content_hash": version.content_hash}
