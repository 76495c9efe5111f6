"""Cases between cases: messages, signals, and a called child case's end reaching its caller.

A step never locks a second case to deliver to it (the one exception: a caller leaving a call activity
withdraws the called case in its own transaction, locking caller then child, never the other way; see
`stepper.withdraw_left_calls`). What it sends is written to the outbox in its own transaction
(with what the case now waits for, in `case_waits`); right after the commit each item is delivered
to its receivers, each receiver in a transaction of its own, and the worker retries what could not
be delivered yet (a receiver busy, or not yet at its catch event) with a growing delay.

Routing: a signal reaches every open case waiting for it. A message reaches the open cases waiting
for its name whose correlation it shares (BPMN correlation properties, e.g. on `cadre_id`); a
waiting catch without correlation properties takes messages from cases of the same cadre.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict
from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session

from service.db.models import Case, CaseWait, OutboxItem
from service.errors import CaseIncident
from workflows.engine import Step

from .context import Services

MAX_ATTEMPTS = 8
FIRST_RETRY = timedelta(seconds=5)
LEASE = timedelta(minutes=2)  # how long one deliverer holds an item before another may try it
CALL_DONE, MESSAGE, SIGNAL = "call_done", "message", "signal"
FINISHED = ("completed", "cancelled")
WITHDRAWN = "cadreflow.withdrawn"  # session.info: ids of called cases ended because their caller left the call
# Hand-overs in a row with no person in between: a step that took a delivered item and sent the next. Two cases
# answering each other's signal or message would otherwise do so for ever (each delivered right after the commit
# of the step before, from inside its delivery, and by the worker at every pass).
MAX_HOPS = 20
HOPS = "cadreflow.hops"  # session.info: the hand-overs that led to the step this transaction runs
LOOP = ("案件之间自动传递的消息或信号已连续往返 {hops} 次，中间无人办理，疑为循环，已停止 "
        "(messages or signals were handed on {hops} times in a row between cases with no person in between: "
        "a loop, stopped)")


MAX_WAIT_KEY = 500  # characters of case_waits.correlation


def wait_key(correlation: str) -> str:
    """A correlation as stored for lookup: itself, or a digest when it is longer than the column (a value such as
    a long reference number); only matched, never read back, so a digest serves as well."""
    if len(correlation) <= MAX_WAIT_KEY:
        return correlation
    return "sha256:" + hashlib.sha256(correlation.encode()).hexdigest()


def after_step(services: Services, session: Session, case: Case, step: Step) -> None:
    """Keep what the case waits for, and post what it sends, for delivery once this commits."""
    if case.has_waits:  # a case that never stored a wait (most of them) has none to clear
        session.execute(delete(CaseWait).where(CaseWait.case_id == case.id))
    waits = case.status == "open" and bool(step.waits)
    if case.has_waits != waits:  # an unchanged value is not set: setting it would cost the commit a flush
        case.has_waits = waits
    if waits:
        session.add_all(CaseWait(case_id=case.id, kind=wait.kind, name=wait.name, correlation=wait_key(text))
                        for wait in step.waits for text in (wait.correlations or ("",)))
    hops = session.info.get(HOPS, 0)
    if step.thrown and hops >= MAX_HOPS:  # the step rolls back; the case is held for a person to look at
        raise CaseIncident(LOOP.format(hops=hops), None, None)
    posted = [OutboxItem(kind=event.kind, source_case_id=case.id, name=event.name,
                         payload={"payload": event.payload, "correlations": list(event.correlations),
                                  "cadre_id": case.cadre_id, "hops": hops + 1}) for event in step.thrown]
    if case.parent_task_id and case.status in FINISHED and case.id not in session.info.get(WITHDRAWN, ()):
        outcome = case.outcome if case.status == "completed" else "cancelled"
        # The error or escalation its end threw reaches the caller's boundary events (workflows/engine/called.py).
        raised = [asdict(event) for event in step.raised] if case.status == "completed" else []
        posted.append(OutboxItem(kind=CALL_DONE, source_case_id=case.id, target_case_id=case.parent_case_id,
                                 payload={"task_id": case.parent_task_id, "outcome": outcome, "hops": hops + 1,
                                          "raised": raised}))
    if posted:
        session.add_all(posted)
        services.db.after_commit(session, lambda: _deliver_after_commit(services, [item.id for item in posted]))


def _deliver_after_commit(services: Services, item_ids: list[int]) -> None:
    from .delivery import deliver  # delivery runs steps through the stepper, which calls this module

    deliver(services, item_ids)
