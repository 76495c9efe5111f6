"""Incidents that retry themselves: a failed service task (the outside world may answer later) is
tried again by the worker after a growing delay, INCIDENT_RETRIES times; after that, or for any
other failure, the incident stays for a person (fix, deploy, migrate, retry)."""

from __future__ import annotations

from sqlalchemy import select

from service.db.models import Case, utcnow
from service.errors import Conflict
from workflows.engine import TaskNotReady

from .casehistory import lock_case, record
from .context import SYSTEM, Services
from .stepper import run_step


def retry_due(services: Services, limit: int = 100) -> int:
    """The worker's pass: retry the incidents whose time has come; returns how many recovered."""
    with services.db.unit_of_work(write=False) as session:
        due = list(session.scalars(select(Case.id).where(Case.status == "incident", Case.retry_at <= utcnow())
                                   .order_by(Case.retry_at).limit(limit)))
    return sum(_retry(services, case_id) for case_id in due)


def _retry(services: Services, case_id: int) -> int:
    try:
        with services.db.unit_of_work() as session:
            case = lock_case(session, case_id)
            if case.status != "incident" or case.retry_at is None or case.retry_at > utcnow():
                return 0  # retried meanwhile
            case.retry_attempts += 1
            run_step(services, session, case, services.runner.retry,
                     (SYSTEM.username, "retry", (case.incident or {}).get("element_id"),
                      {"attempt": case.retry_attempts, "automatic": True}))
            if case.status == "incident" and case.retry_at is None:
                record(session, case, SYSTEM.username, "retries_exhausted", (case.incident or {}).get("element_id"),
                       {"attempts": case.retry_attempts})
            return int(case.status != "incident")
    except (Conflict, TaskNotReady):
        return 0
