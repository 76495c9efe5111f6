"""Incidents that retry themselves: a failed service task (the outside world may answer later) is
tried again by the worker after a growing delay, INCIDENT_RETRIES times; after that, or for any
other failure, the incident stays for a person (fix, deploy, migrate, retry)."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.db.models import Case, utcnow
from service.errors import CaseIncident, Conflict
from workflows.engine import TaskNotReady

from . import portal
from .casehistory import lock_case, record
from .context import SYSTEM, Services
from .stepper import Entry, plan_next_retry, run_step

log = logging.getLogger(__name__)


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
            if not _due(case):
                return 0  # retried meanwhile
            case.retry_attempts += 1
            entry = _entry(case, {})
            run_step(services, session, case, portal.retry_call(services, session, case, entry[3]), entry)
            _note_exhausted(session, case)
            return int(case.status != "incident")
    except CaseIncident as failure:  # stopped with nothing to store (its time limit): an attempt all the same
        _count_stopped(services, case_id, failure)
        return 0
    except (Conflict, TaskNotReady):
        return 0
    except Exception:  # one case's failure must not hold back the retries of every incident due after it
        log.exception("retry of case %s failed", case_id)
        return 0


def _count_stopped(services: Services, case_id: int, failure: CaseIncident) -> None:
    """Count a retry that stopped with nothing to store, and plan the next one (or none, once they are spent)."""
    with services.db.unit_of_work() as session:
        case = lock_case(session, case_id)
        if not _due(case):
            return
        case.retry_attempts += 1
        record(session, case, *_entry(case, {"stopped": failure.message}))
        plan_next_retry(services, case)
        _note_exhausted(session, case)


def _due(case: Case) -> bool:
    return case.status == "incident" and case.retry_at is not None and case.retry_at <= utcnow()


def _entry(case: Case, detail: dict[str, Any]) -> Entry:
    return (SYSTEM.username, "retry", (case.incident or {}).get("element_id"),
            {"attempt": case.retry_attempts, "automatic": True, **detail})


def _note_exhausted(session: Session, case: Case) -> None:
    if case.status == "incident" and case.retry_at is None:
        record(session, case, SYSTEM.username, "retries_exhausted", (case.incident or {}).get("element_id"),
               {"attempts": case.retry_attempts})
