"""Dashboard aggregates for inspectors: open cases, overdue tasks, monthly flow, time per step.

Counted in Python over narrow column reads so the same code runs on SQLite and PostgreSQL
(month and interval arithmetic differ between them); a county's case volume is small. Each count
covers only the cases (and their tasks) the actor may read, filtered in SQL.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from service.db.models import Case, Task

from . import casefile, health, policy, queries
from .context import Actor, Services

Clause = ColumnElement[bool]

MONTHS = 12
SLOWEST_STEPS = 12


def dashboard(services: Services, actor: Actor, months: int = MONTHS) -> dict[str, Any]:
    """The four charts of the dashboard and its headline numbers, over the cases the actor may read; and whether a
    worker polls (`health.worker_state`), without which no deadline moves."""
    policy.require(actor, "report.dashboard")
    now = datetime.now(UTC)
    cases, tasks = policy.case_filter(actor), policy.task_filter(actor)
    with services.db.unit_of_work(write=False) as session:
        names = casefile.process_names(session)
        by_process = open_cases_by_process(session, names, cases)
        overdue = overdue_tasks_by_role(session, now, tasks)
        return {"open_by_process": by_process, "overdue_by_role": overdue,
                "per_month": cases_per_month(session, _month_keys(services.today(), months), cases),
                "step_days": average_days_per_step(session, names, tasks),
                "totals": {"open": sum(r["count"] for r in by_process),
                           "overdue": sum(r["count"] for r in overdue)},
                "worker": health.worker_state_in(session, services.settings, now)}


def open_cases_by_process(session: Session, names: dict[str, str], readable: Clause) -> list[dict[str, Any]]:
    rows = session.execute(select(Case.process_key, func.count()).where(Case.status == "open", readable)
                           .group_by(Case.process_key).order_by(Case.process_key))
    return [{"process": key, "name": names.get(key, key), "count": count} for key, count in rows]


def overdue_tasks_by_role(session: Session, now: datetime, readable: Clause) -> list[dict[str, Any]]:
    rows = session.execute(select(Task.role, func.count()).where(
        queries.overdue(now), readable).group_by(Task.role)
        .order_by(Task.role))
    return [{"role": role or "", "count": count} for role, count in rows]


def cases_per_month(session: Session, months: list[str], readable: Clause) -> list[dict[str, Any]]:
    """Cases opened, and cases closed (completed or cancelled), in each of the given months."""
    start = datetime.fromisoformat(months[0] + "-01").replace(tzinfo=UTC)
    opened = Counter(_month(at) for at in session.scalars(select(Case.created_at).where(
        Case.created_at >= start, readable)))
    closed = Counter(_month(at) for at in session.scalars(select(Case.updated_at).where(
        Case.status.in_(("completed", "cancelled")), Case.updated_at >= start, readable)))
    return [{"month": m, "opened": opened.get(m, 0), "closed": closed.get(m, 0)} for m in months]


def average_days_per_step(session: Session, names: dict[str, str], readable: Clause) -> list[dict[str, Any]]:
    """Mean days from a user task's opening to its completion, slowest steps first."""
    rows = session.execute(select(Task.process_key, Task.element_id, Task.name, Task.created_at,
                                  Task.completed_at).where(Task.status == "completed",
                                                           Task.completed_at.is_not(None), readable))
    spans: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    for process, element, name, created, completed in rows:
        if completed is not None:  # the WHERE clause already says so; this tells the type checker
            spans[(process, element, name)].append((completed - created).total_seconds() / 86400)
    steps: list[dict[str, Any]] = [{"process": p, "process_name": names.get(p, p), "element_id": e, "name": n,
              "days": round(sum(v) / len(v), 2), "count": len(v)} for (p, e, n), v in spans.items()]
    return sorted(steps, key=lambda s: -s["days"])[:SLOWEST_STEPS]


def _month(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m")


def _month_keys(today: date, months: int) -> list[str]:
    """The last `months` months up to today's, oldest first, as YYYY-MM."""
    index = today.year * 12 + today.month - 1
    return [f"{i // 12:04d}-{i % 12 + 1:02d}" for i in range(index - months + 1, index + 1)]
