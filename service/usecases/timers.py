"""Fire due timers: each case in its own transaction, each timer exactly once."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.db.models import Case
from service.errors import CaseIncident, Conflict, ServiceError

from .casehistory import held, lock_case
from .context import Services
from .stepper import hold_as_incident, run_step

log = logging.getLogger(__name__)


def due_case_ids(services: Services, now: datetime | None = None, limit: int = 500) -> list[int]:
    """Open cases whose earliest timer is due."""
    now = now or datetime.now(UTC)
    with services.db.unit_of_work(write=False) as session:
        return list(session.scalars(select(Case.id).where(Case.status == "open", Case.next_timer_due <= now)
                                    .order_by(Case.next_timer_due).limit(limit)))


def fire_due_timers(services: Services, now: datetime | None = None) -> int:
    """Fire every due timer; returns how many cases moved."""
    fired = 0
    for case_id in due_case_ids(services, now):
        try:
            fired += fire_case_timers(services, case_id)
        except Conflict as exc:  # another worker took it, or an automatic step failed
            log.warning("timers of case %s not fired: %s", case_id, exc.message)
        except ServiceError as exc:  # the step refused what it made: hold the case, it would fail at every poll
            log.warning("timers of case %s failed: %s", case_id, exc.message)
            _hold(services, case_id, exc.message)
        except Exception:  # one case's failure must not hold back the timers of every case due after it
            log.exception("timers of case %s failed", case_id)
    return fired


def _hold(services: Services, case_id: int, message: str) -> None:
    with services.db.unit_of_work() as session:
        hold_as_incident(session, lock_case(session, case_id),
                         CaseIncident(f"timer step failed (定时步骤失败): {message}", None, None))


def fire_case_timers(services: Services, case_id: int) -> int:
    """Fire the due timers of one case, if no other worker holds it; 1 if it moved."""
    with services.db.unit_of_work() as session:
        query = select(Case).where(Case.id == case_id, Case.status == "open",
                                   Case.next_timer_due <= datetime.now(UTC))
        case = session.scalar(query.with_for_update(skip_locked=True, of=Case))
        if case is None:
            return 0
        fire_timers_of(services, session, held(session, case))
        return 1


def fire_timers_of(services: Services, session: Session, case: Case) -> None:
    """Fire the due timers of a case already locked in this session; a step that fails with nothing
    to save holds the case as an incident instead of being tried again at every poll."""
    try:
        run_step(services, session, case, services.runner.fire_timers)
    except CaseIncident as failure:
        hold_as_incident(session, case, failure)
