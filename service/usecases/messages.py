"""Messages and signals from outside: to a waiting case (such as a report received during public
notice), to every case waiting for a signal, or opening a case of a process that starts on a message."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from service.db.models import Case
from service.errors import Conflict, Invalid, NotFound
from workflows.engine import NotWaiting

from . import delivery, policy, queries, roles
from .casehistory import lock_case
from .context import Actor, Services
from .stepper import run_step, start_in_session
from .timers import fire_timers_of
from .views import MAX_ID


def deliver_message(services: Services, actor: Actor, name: Any, case_id: Any, data: Any) -> None:
    """Hand a named message to a case; Conflict when the case waits for no such message."""
    with services.db.unit_of_work() as session:
        delivered = deliver_in_session(services, session, actor, name, case_id, data)
    if not delivered:  # refused only now, so the timers fired meanwhile are committed
        raise Conflict(f"case {case_id} is not waiting for message {name} (案件当前不接收此消息)")


def deliver_in_session(services: Services, session: Session, actor: Actor, name: Any, case_id: Any,
                       data: Any) -> bool:
    """`deliver_message` inside the caller's unit of work, so what it writes with the message commits with it
    or not at all: whether the case took it (False when it waits for no such message, after firing the timers
    that came due, which the caller should commit); Conflict for a case that has ended."""
    _check_input(name, case_id, data)
    policy.require(actor, "case.message", services.settings, name)
    policy.check_case(session, actor, case_id)
    case = lock_case(session, case_id)
    if case.status != "open":
        raise Conflict(f"case {case_id} is {case.status} (案件已结束)")
    if case.next_timer_due is not None and case.next_timer_due <= datetime.now(UTC):
        fire_timers_of(services, session, case)  # a deadline that passed first wins, even with no worker yet
    return case.status == "open" and _deliver(services, session, case, actor, name, data or {})


def _deliver(services: Services, session: Session, case: Case, actor: Actor, name: str, data: dict[str, Any]) -> bool:
    try:
        run_step(services, session, case,
                 lambda definition, state, handler: services.runner.deliver_message(definition, state, name, data,
                                                                                    handler),
                 (actor.username, "message", None, {"name": name, "data": data}))
    except NotWaiting:
        return False
    return True



def start_by_message(services: Services, actor: Actor, name: Any, data: Any) -> list[int]:
    """Open a case of every process whose start event catches this message (`data.cadre_id` names
    the cadre); NotFound when no deployed process starts on it."""
    if not isinstance(name, str) or not name:
        raise Invalid("invalid message (消息格式错误)", {"name": "必填 (required)"})
    if not isinstance(data, dict):
        raise Invalid("invalid message (消息格式错误)", {"data": "必须是对象，含 cadre_id (an object with cadre_id)"})
    with services.db.unit_of_work() as session:
        versions = [v for v in session.scalars(queries.newest_versions())
                    if name in services.definitions.get(v).start_messages]
        if not versions:
            raise NotFound(f"no deployed process starts on message {name} (没有以此消息启动的流程)")
        tables = roles.tables_in(session, services.settings)
        for version in versions:
            _check_may_open(tables, actor, name, version.process_key)
        payload = {k: v for k, v in data.items() if k != "cadre_id"}
        return [start_in_session(services, session, actor, version.process_key, data.get("cadre_id"), payload,
                                 parent=None).id for version in versions]


def _check_may_open(tables: dict[str, Any], actor: Actor, name: str, process: str) -> None:
    """Whoever may send the message, or may start the process, may open a case of it with the message."""
    if not policy.allows(actor, "case.message", tables, name):
        policy.require(actor, "case.start", tables, process)


def send_signal(services: Services, actor: Actor, name: Any, data: Any) -> int:
    """Deliver a signal to every case waiting for it; how many took it."""
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise Invalid("invalid signal (信号格式错误)", {"name": "必填，至多 200 字 (required, at most 200)"})
    policy.require(actor, "signal.send", services.settings, name)
    return delivery.broadcast_signal(services, name, data)


def _check_input(name: Any, case_id: Any, data: Any) -> None:
    fields = {}
    if not isinstance(name, str) or not name:
        fields["name"] = "必填 (required)"
    if not isinstance(case_id, int) or isinstance(case_id, bool):
        fields["case_id"] = "必须是整数 (must be an integer)"
    elif not 0 < case_id <= MAX_ID:
        raise NotFound(f"case {case_id} not found (案件不存在)")
    if data is not None and not isinstance(data, dict):
        fields["data"] = "必须是对象 (must be an object)"
    if fields:
        raise Invalid("invalid message (消息格式错误)", fields)
