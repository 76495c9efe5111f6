"""Deliver a message (such as a report received during public notice) to a waiting case."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from service.errors import Conflict, Forbidden, Invalid, NotFound
from workflows.engine import NotWaiting

from .cases import child_starter
from .context import Actor, Services
from .steps import Effects, apply_step, definition_of, lock_case, record, run_engine, service_handler
from .timers import fire_timers_of
from .views import MAX_ID


def deliver_message(services: Services, actor: Actor, name: Any, case_id: Any, data: Any) -> None:
    """Hand a named message to a case; Conflict when the case waits for no such message."""
    _check_input(name, case_id, data)
    allowed = services.settings["MESSAGE_ROLES"].get(name, [])
    if not actor.has_any(*allowed):
        raise Forbidden(f"your roles may not send {name} (无权发送此消息)")
    with services.db.unit_of_work() as session:
        case = lock_case(session, case_id)
        if case.status != "open":
            raise Conflict(f"case {case_id} is {case.status} (案件已结束)")
        if case.next_timer_due is not None and case.next_timer_due <= datetime.now(UTC):
            fire_timers_of(services, session, case)  # a deadline that passed first wins, even with no worker yet
        effects = Effects(session, services.today())
        handler = service_handler(case.process_key, effects)
        try:
            step = run_engine(lambda: services.runner.deliver_message(
                definition_of(services, case), case.state, name, data or {}, handler))
        except NotWaiting:
            step = None  # refused below, after the timers fired above are committed
        if step is not None:
            record(session, case, actor.username, "message", None, {"name": name, "data": data or {}})
            apply_step(session, case, step, effects, child_starter(services, session))
    if step is None:
        raise Conflict(f"case {case_id} is not waiting for message {name} (案件当前不接收此消息)")



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
