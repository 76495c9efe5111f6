"""Fire due timers: each case in its own transaction, each timer exactly once; and set again the due time the
worker finds them by, where a case's stored one has drifted from its engine's (`cadreflow resync-timers`)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.db.models import Case, utcnow
from service.errors import CaseIncident, Conflict, ServiceError, Unavailable
from workflows.engine import EngineError

from .casehistory import held, lock_case
from .context import Services
from .readmodel import parse_time
from .stepper import hold_as_incident, hold_if, run_step
from .steps import LoopRefused, definition_of

log = logging.getLogger(__name__)
T = TypeVar("T")


def due_case_ids(services: Services, now: datetime | None = None, limit: int = 500) -> list[int]:
    """Open cases whose earliest timer is due."""
    now = now or datetime.now(UTC)
    with services.db.unit_of_work(write=False) as session:
        return list(session.scalars(select(Case.id).where(Case.status == "open", Case.next_timer_due <= now)
                                    .order_by(Case.next_timer_due).limit(limit)))


def fire_due_timers(services: Services, now: datetime | None = None) -> int:
    """Fire every due timer; returns how many cases moved."""
    return sum(fire_one(services, case_id) for case_id in due_case_ids(services, now))


def fire_one(services: Services, case_id: int) -> int:
    """Fire the due timers of one case in a transaction of its own, a failure held or logged as the worker does;
    1 if it moved. Also used by a person's act that finds a deadline passed before the worker fired it."""
    try:
        return fire_case_timers(services, case_id)
    except CaseIncident as failure:  # nothing coherent to store: held with the state it had, the step undone
        log.warning("timers of case %s failed: %s", case_id, failure.message)
        hold_if(services, case_id, failure, timer_due)
    except LoopRefused as exc:  # the same loop at every poll, each time up to the engine's guard: held
        log.warning("timers of case %s looped: %s", case_id, exc.message)
        looped = f"定时步骤陷入循环，已停止 (the timer step looped and was stopped): {exc.message}"
        hold_if(services, case_id, CaseIncident(looped, None, None), timer_due)
    except Conflict as exc:  # another worker took it, or an automatic step failed
        log.warning("timers of case %s not fired: %s", case_id, exc.message)
    except Unavailable as exc:  # the database, not the step: the case stays due for the next poll
        log.warning("timers of case %s not fired: %s", case_id, exc.message)
    except ServiceError as exc:  # the step refused what it made: hold the case, it would fail at every poll
        log.warning("timers of case %s failed: %s", case_id, exc.message)
        hold_if(services, case_id, CaseIncident(f"timer step failed (定时步骤失败): {exc.message}", None, None),
                timer_due)
    except Exception:  # one case's failure must not hold back the timers of every case due after it
        log.exception("timers of case %s failed", case_id)
    return 0


class DeadlinePassed(Exception):
    """A person's act found its case's deadline passed before the worker fired it; nothing of the act written."""

    def __init__(self, case_id: int) -> None:
        super().__init__(case_id)
        self.case_id = case_id


def deadlines_first(services: Services, act: Callable[[bool], T]) -> T:
    """Run a person's act on a task (`act(fire_first)`) as if the worker had fired every deadline that passed
    before it: an act that finds one (raising DeadlinePassed with `fire_first`) is tried again once that case's
    timers fired in their own transaction. A reply after its interrupting deadline then finds its task gone."""
    try:
        return act(True)
    except DeadlinePassed as passed:
        fire_one(services, passed.case_id)
    return act(False)


def check_deadlines(case: Case, fire_first: bool) -> None:
    """Raise DeadlinePassed when `fire_first` and the locked case has a timer due (see `deadlines_first`)."""
    if fire_first and timer_due(case):
        raise DeadlinePassed(case.id)


def timer_due(case: Case) -> bool:
    """Whether an open case has a timer due now (a case whose timer step failed is still to be held only then: not
    one a person completed, cancelled or retried between the failed step's rollback and the hold's lock)."""
    return case.status == "open" and case.next_timer_due is not None and case.next_timer_due <= datetime.now(UTC)


def fire_case_timers(services: Services, case_id: int) -> int:
    """Fire the due timers of one case, if no other worker holds it; 1 if it moved."""
    with services.db.unit_of_work() as session:
        query = select(Case).where(Case.id == case_id, Case.status == "open",
                                   Case.next_timer_due <= datetime.now(UTC))
        case = session.scalar(query.with_for_update(skip_locked=True, of=Case))
        if case is None:
            return 0
        if not _hold_if_looping(services, session, held(session, case)):
            fire_timers_of(services, session, case)
        return 1


# A timer step within this of the case's previous step counts toward MAX_TIMER_FIRINGS_WITHOUT_PERSON; one after a
# longer quiet starts the count again, so a slow repeating timer (a daily reminder on a task nobody takes) never
# adds up to a hold, while a loop through a short timer (PT1S, PT10M) does.
TIMER_LOOP_GAP = timedelta(hours=1)
TIMER_LOOP = ("定时器已连续触发 {0} 次而无人办理，案件已暂停，请检查流程中经过定时器的循环 "
              "(timers fired {0} times with no person acting on the case: held; look for a loop through a timer)")


def _hold_if_looping(services: Services, session: Session, case: Case) -> bool:
    """Hold a case whose timers fired MAX_TIMER_FIRINGS_WITHOUT_PERSON times since a person last acted on it. A loop
    through a short timer is no loop to the engine's guard, which counts within one step: it fires once per poll
    for ever, each time a step and its history. A person's act (casehistory.record) counts from 0 again."""
    limit = int(services.settings["MAX_TIMER_FIRINGS_WITHOUT_PERSON"])
    if case.timer_firings < limit or not _looping(case):
        return False
    log.warning("timers of case %s fired %s times with no person acting: held", case.id, case.timer_firings)
    hold_as_incident(session, case, CaseIncident(TIMER_LOOP.format(case.timer_firings), None, None))
    return True


def _looping(case: Case) -> bool:
    """Whether a timer step now would follow the case's previous step within TIMER_LOOP_GAP."""
    return case.updated_at > utcnow() - TIMER_LOOP_GAP


def fire_timers_of(services: Services, session: Session, case: Case) -> None:
    """Fire the due timers of a case already locked in this session. A step that fails with nothing coherent to
    save (CaseIncident) may have stored part of itself by then (a child case that cannot start fails while its
    caller's step is being stored): it is raised, the transaction rolled back whole, and the worker holds the case
    as an incident in a transaction of its own instead of trying it again at every poll."""
    looping = _looping(case)  # read before the step sets updated_at to now
    run_step(services, session, case, services.runner.fire_timers)
    # The case row is written with the step anyway: no statement of its own.
    case.timer_firings = case.timer_firings + 1 if looping else 1


RESYNC_BATCH = 200


@dataclass(frozen=True)
class Resynced:
    """One open case whose stored `next_timer_due` differed from its engine's: set to `engine` (or, with `error`,
    left alone because its saved state does not load)."""

    case_id: int
    stored: datetime | None
    engine: datetime | None
    error: str | None = None


def resync_timer_dues(services: Services) -> tuple[int, list[Resynced]]:
    """Set each open case's `next_timer_due` to the engine's where they differ; returns how many open cases were
    read, and what was set or could not be read. The worker finds due cases by that column alone, so a stale
    one leaves a deadline unfired for ever (say, a timer an older release's migration left fired but not run);
    the timer then fires through the worker as any other, with its history entry. Cases are read in batches
    without a lock; each one that differs is locked and read again before it is written."""
    read, last_id, found = 0, 0, []
    while True:
        with services.db.unit_of_work(write=False) as session:  # inspected while attached: its version loads
            batch = list(session.scalars(select(Case).where(Case.status == "open", Case.id > last_id)
                                         .order_by(Case.id).limit(RESYNC_BATCH)))
            differing = []
            for case in batch:
                due, error = _engine_due(services, case)
                if error is not None:
                    found.append(Resynced(case.id, case.next_timer_due, None, error))
                elif due != case.next_timer_due:
                    differing.append(case.id)
        if not batch:
            return read, found
        read, last_id = read + len(batch), batch[-1].id
        found.extend(fixed for case_id in differing if (fixed := _resync(services, case_id)) is not None)


def _engine_due(services: Services, case: Case) -> tuple[datetime | None, str | None]:
    try:
        return parse_time(services.runner.inspect(definition_of(services, case), case.state).next_timer_due), None
    except EngineError as exc:
        return None, f"saved state does not load (案件状态无法载入): {exc}"


def _resync(services: Services, case_id: int) -> Resynced | None:
    with services.db.unit_of_work() as session:
        case = lock_case(session, case_id)
        due, error = _engine_due(services, case)
        if case.status != "open" or error is not None or due == case.next_timer_due:
            return None  # a step moved it meanwhile, and stored the engine's time itself
        stored, case.next_timer_due = case.next_timer_due, due
        return Resynced(case_id, stored, due)
