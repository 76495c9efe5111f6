"""Deliver what cases sent each other (the outbox `between.after_step` writes): right after the sending
step commits, and again by the worker until a receiver takes it or it is given up. Each receiver gets
it in a transaction of its own, through the stepper like any other step."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import false, or_, select, update
from sqlalchemy.orm import Session

from service.db.models import Case, CaseWait, OutboxItem, utcnow
from service.db.uow import rows_changed
from service.errors import CaseIncident, Conflict, NotFound, ServiceError, Unavailable
from workflows.engine import NotWaiting, Step
from workflows.executor.protocol import raised_of

from .between import CALL_DONE, FINISHED, FIRST_RETRY, HOPS, LEASE, MAX_ATTEMPTS, MESSAGE, SIGNAL, wait_key
from .casehistory import lock_case, record
from .context import SYSTEM, Services
from .stepper import hold_if, run_step

log = logging.getLogger(__name__)


def deliver(services: Services, item_ids: list[int]) -> None:
    """Deliver outbox items now (after their step committed); what fails waits for the worker."""
    for item_id in item_ids:
        try:
            _deliver_one(services, item_id)
        except Exception:  # delivery never fails the step that sent it; the worker retries
            log.exception("outbox item %s not delivered yet", item_id)


def deliver_due(services: Services, limit: int = 200) -> int:
    """The worker's pass: deliver the outbox items due for another attempt; returns how many went."""
    with services.db.unit_of_work(write=False) as session:
        due = list(session.scalars(select(OutboxItem.id).where(OutboxItem.next_attempt_at <= utcnow())
                                   .order_by(OutboxItem.id).limit(limit)))
    return sum(_deliver_one(services, item_id) for item_id in due)


def _deliver_one(services: Services, item_id: int) -> bool:
    with services.db.unit_of_work() as session:
        leased = rows_changed(session, update(OutboxItem).where(
            OutboxItem.id == item_id, OutboxItem.next_attempt_at <= utcnow()).values(next_attempt_at=utcnow() + LEASE))
        item = session.get(OutboxItem, item_id) if leased == 1 else None
        if item is None:
            return False  # delivered meanwhile, or another worker holds it
        kind, name, payload = item.kind, item.name, {**item.payload, "source_case_id": item.source_case_id}
        targets = [item.target_case_id] if item.target_case_id else _receivers(session, item)
    delivered = [case_id for case_id in targets if _deliver_to(services, case_id, kind, name, payload)]
    return _settle(services, item_id, delivered, kind)


def _receivers(session: Session, item: OutboxItem) -> list[int]:
    waits = select(CaseWait.case_id).join(Case, Case.id == CaseWait.case_id).where(
        CaseWait.kind == item.kind, CaseWait.name == item.name, Case.status == "open",
        Case.id != item.source_case_id)
    if item.kind == MESSAGE:
        keyed = CaseWait.correlation.in_([wait_key(text) for text in item.payload.get("correlations") or []])
        cadre_id = item.payload.get("cadre_id")  # a case with no cadre (a public report) has no "same cadre"
        same_cadre = (CaseWait.correlation == "") & (Case.cadre_id == cadre_id) if cadre_id else false()
        waits = waits.where(or_(keyed, same_cadre))
    return sorted(set(session.scalars(waits)))


def _deliver_to(services: Services, case_id: int, kind: str, name: str, payload: dict[str, Any]) -> bool:
    """Hand one item to one case in a transaction of its own; False when it is not (or no longer) taken."""
    runner = services.runner
    calls: dict[str, Callable[..., Step]] = {
        CALL_DONE: lambda d, state, h: runner.resume_call(d, state, payload["task_id"], payload["outcome"], h,
                                                          raised),
        MESSAGE: lambda d, state, h: runner.deliver_message(d, state, name, payload.get("payload") or {}, h,
                                                            tuple(payload.get("correlations") or ())),
        SIGNAL: lambda d, state, h: runner.deliver_signal(d, state, name, payload.get("payload"), h),
    }
    raised = raised_of(payload.get("raised") or []) if kind == CALL_DONE else ()  # an item posted before: none
    detail = {"name": name} if kind != CALL_DONE else {"outcome": payload["outcome"]} | {
        event.kind: event.name for event in raised}
    try:
        with services.db.unit_of_work() as session:
            session.info[HOPS] = _hops(payload)  # what this step sends goes one hand-over further (between.MAX_HOPS)
            case = lock_case(session, case_id)
            if kind == CALL_DONE and case.status in FINISHED:
                return _drop_result(session, case, payload)
            if case.status != "open":
                return False
            try:
                run_step(services, session, case, calls[kind], (SYSTEM.username, kind, None, detail))
            except NotWaiting:
                if kind != CALL_DONE:
                    raise
                return _drop_result(session, case, payload)
    except (NotWaiting, NotFound):
        return False
    except CaseIncident as failure:  # stopped with nothing to store: held for a person, as a timer step's case is
        log.warning("case %s did not take a %s: %s", case_id, kind, failure.message)
        # It would fail so at every attempt until the outbox gave the item up, and be left waiting for it; held,
        # a call's end waits for it (`_caller_in_incident`). Only a case still open is held.
        hold_if(services, case_id, failure, lambda case: case.status == "open")
        return False
    except Conflict as exc:  # busy or failing: counted as not delivered, tried again later
        log.warning("case %s did not take a %s: %s", case_id, kind, exc.message)
        return False
    except Unavailable:  # the database, not the step: the item stays leased and is tried again, no attempt counted
        raise
    except ServiceError as exc:  # the step refused what it made: it would at every attempt, as a timer step's would
        log.warning("case %s did not take a %s: %s", case_id, kind, exc.message)
        refused = f"{REFUSED}: {exc.message}"
        hold_if(services, case_id, CaseIncident(refused, None, None), lambda case: case.status == "open")
        return False
    return True


REFUSED = "案件接收关联案件的结果、消息或信号时步骤失败 (the step taking another case's end, message or signal failed)"


def _hops(payload: dict[str, Any]) -> int:
    """The hand-overs an item took to come (0 for one a person's step or the API sent, or one posted before)."""
    hops = payload.get("hops")
    return hops if isinstance(hops, int) and not isinstance(hops, bool) else 0


DROPPED = ("本案已不再等待该关联案件的结果（已离开调用环节或已结束），结果未采用 "
           "(this case no longer waits for that case's result: it left the call activity or has ended; not taken)")


def _drop_result(session: Session, case: Case, payload: dict[str, Any]) -> bool:
    """Settle a called case's end that reached a caller no longer waiting at that call (the child ended just as the
    caller moved on, or was left open before callers withdrew their children): never applied to another task,
    noted in the caller's history."""
    record(session, case, SYSTEM.username, "call_result_dropped", None, {
        "child_case_id": payload.get("source_case_id"), "outcome": payload["outcome"], "reason": DROPPED})
    return True


def _settle(services: Services, item_id: int, delivered: list[int], kind: str) -> bool:
    """Done once delivered (a signal: once tried); otherwise try again later, up to MAX_ATTEMPTS."""
    with services.db.unit_of_work() as session:
        item = session.get(OutboxItem, item_id)
        if item is None:
            return bool(delivered)
        item.attempts += 1
        if delivered or kind == SIGNAL or (item.attempts >= MAX_ATTEMPTS and not _caller_in_incident(session, item)):
            if not delivered and kind != SIGNAL:
                _note_given_up(session, item)
            session.delete(item)
        else:
            item.next_attempt_at = utcnow() + min(FIRST_RETRY * 2 ** (item.attempts - 1), LONGEST_RETRY)
            item.last_error = "no receiver took it yet (尚无案件接收)"
    return bool(delivered)


LONGEST_RETRY = timedelta(minutes=10)


def _note_given_up(session: Session, item: OutboxItem) -> None:
    """Say in the sending case's history that what it sent reached no case (no receiver took it in MAX_ATTEMPTS
    tries): left unsaid, an inspector would read the sender's step and believe the message arrived."""
    log.warning("outbox item %s (%s %r from case %s) given up after %s attempts: no receiver took it",
                item.id, item.kind, item.name, item.source_case_id, item.attempts)
    if item.source_case_id is None:
        return
    sender = lock_case(session, item.source_case_id)
    record(session, sender, SYSTEM.username, "delivery_given_up", None, {
        "kind": item.kind, "name": item.name, "target_case_id": item.target_case_id, "attempts": item.attempts})


def _caller_in_incident(session: Session, item: OutboxItem) -> bool:
    """Whether the item is a child case's end for a caller stopped in an incident: the caller takes it once a
    person has resolved the incident, however long that takes, and without it would wait for the child for ever."""
    if item.kind != CALL_DONE or item.target_case_id is None:
        return False
    return session.scalar(select(Case.status).where(Case.id == item.target_case_id)) == "incident"


def broadcast_signal(services: Services, name: str, payload: Any) -> int:
    """Deliver a signal to every open case waiting for it now; how many took it."""
    with services.db.unit_of_work(write=False) as session:
        targets = sorted(set(session.scalars(select(CaseWait.case_id).join(Case, Case.id == CaseWait.case_id).where(
            CaseWait.kind == SIGNAL, CaseWait.name == name, Case.status == "open"))))
    return sum(_deliver_to(services, case_id, SIGNAL, name, {"payload": payload}) for case_id in targets)
