"""Use cases that change who holds a task, when it is due, or send it back: reassign (delegate), extend, return.

Each runs under its case's lock, is recorded in the case's history, and answers the task (or the case).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.db.models import Task, User, utcnow
from service.errors import Conflict, Invalid
from workflows.engine import NotReturnable, TaskNotReady

from . import absence, notifications, policy, queries, reminders, views
from .casehistory import record
from .check import require_unaltered
from .context import Actor, Services
from .stepper import run_step
from .steps import definition_of
from .tasks import locked_task, not_actionable
from .timers import check_deadlines, deadlines_first

MAX_REASON = 2000


def assign_task(services: Services, actor: Actor, task_id: str, username: Any) -> dict[str, Any]:
    """Give an open task to another user holding its lane's role (or, while they are away, their substitute)."""
    with services.db.unit_of_work() as session:
        task, case = locked_task(session, actor, task_id)
        _require_open(task)
        policy.require_task_action(session, actor, "task.assign", task)
        wanted = absence.active_user(session, username, "username")
        standing_in = queries.substitutes_now(session, [wanted.username], utcnow()).get(wanted.username)
        holder = absence.active_user(session, standing_in, "username") if standing_in else wanted
        _require_lane_role(holder, task, standing_in is not None)
        if holder.username == task.assignee:  # a repeat (a double click, a retry): nothing changes, nobody is told
            return views.task_view(services, session, task)
        previous, task.assignee = task.assignee, holder.username
        policy.note_participant(session, case.id, holder.username)
        detail = {"task_id": task.id, "from": previous, "to": holder.username}
        if standing_in:
            detail["instead_of"] = wanted.username
        record(session, case, actor.username, "assign", task.element_id, detail)
        notifications.notify(session, notifications.holders(session, [task])[task.id], "new_task", task,
                             notifications.assigned_texts(task, case.process_version.name, actor.username))
        return views.task_view(services, session, task)


def extend_task(services: Services, actor: Actor, task_id: str, until: Any, reason: Any) -> dict[str, Any]:
    """Move an open task's deadline later (the lane's head role, admin): the read model's and its boundary
    timers'; its reminders are sent anew. A task without a deadline is refused (409), not given one. A deadline
    that passed before the worker fired it fires first (timers.deadlines_first): an interrupting one is not revived."""
    return deadlines_first(services, lambda fire_first: _extend(services, actor, task_id, until, reason, fire_first))


def _extend(services: Services, actor: Actor, task_id: str, until: Any, reason: Any,
            fire_first: bool) -> dict[str, Any]:
    with services.db.unit_of_work() as session:
        task, case = locked_task(session, actor, task_id)
        _require_open(task)
        if case.status != "open":  # its step would clear an incident that waits for a person (steps._set_status)
            raise Conflict(not_actionable(case, " (案件当前状态不允许延期)"))
        policy.require_task_action(session, actor, "task.extend", task)
        check_deadlines(case, fire_first)
        reason = _reason(reason)
        due = absence.parse_moment(until, "until", reminders.local_zone(services), end_of_day=True)
        if task.due_at is None:  # "extending" would set a deadline the process never gave (and its reminders)
            raise Conflict("this task has no deadline to extend (此任务没有办理期限，无法延期)")
        if due == task.due_at:  # a repeat (a double click, a retry): extended to this already, nothing to record
            return views.task_view(services, session, task)
        _require_later(due, task.due_at)
        previous, task.due_at, task.overdue = task.due_at, due, False
        reminders.forget(session, [task.id])
        entry = (actor.username, "extend", task.element_id,
                 {"task_id": task.id, "from": views.iso(previous), "until": views.iso(due), "reason": reason})
        try:  # the diagram's deadline timers on the task move too, so the escalation (督办) follows
            run_step(services, session, case, lambda definition, state, _handler: services.runner.extend(
                definition, state, task.id, due.isoformat()), entry)
        except TaskNotReady as exc:
            raise Conflict("the task is no longer open (任务已结束)") from exc
        return views.task_view(services, session, task)


def return_task(services: Services, actor: Actor, task_id: str, reason: Any) -> dict[str, Any]:
    """Send an open task back to the person step before it, where the process allows it (allowReturn); the
    earlier task opens again for whoever completed it; returns the case. A deadline that passed before the worker
    fired it fires first (timers.deadlines_first), as for a completion: an interrupting one has closed the task."""
    return deadlines_first(services, lambda fire_first: _return(services, actor, task_id, reason, fire_first))


def _return(services: Services, actor: Actor, task_id: str, reason: Any, fire_first: bool) -> dict[str, Any]:
    with services.db.unit_of_work() as session:
        task, case = locked_task(session, actor, task_id)
        _require_open(task)
        if case.status != "open":
            raise Conflict(not_actionable(case, " (案件当前状态不允许退回)"))
        policy.require_task_action(session, actor, "task.return", task)
        check_deadlines(case, fire_first)
        require_unaltered(services, session, case)  # it reopens tasks for their completers as the rows name them
        detail: dict[str, Any] = {"task_id": task.id, "reason": _reason(reason)}
        definition = definition_of(services, case)
        if task.element_id not in definition.returnable:
            raise Conflict(f"{task.element_id} may not be returned to an earlier step (此步骤不允许退回)")
        reopened: list[Task] = []

        def call(definition: Any, state: str, handler: Any) -> Any:
            step = services.runner.return_task(definition, state, task_id, handler)
            reopened.extend(_reopen(session, [t.id for t in step.open_tasks]))
            detail["to"] = [row.element_id for row in reopened]
            # who holds each again (its last completer, their substitute, or its role's pool): nothing else records
            # it, and `check` holds the rows to it
            detail["holders"] = {row.id: row.assignee for row in reopened}
            return step
        try:
            run_step(services, session, case, call, (actor.username, "return", task.element_id, detail), definition)
        except (NotReturnable, TaskNotReady) as exc:
            raise Conflict(f"{exc} (无法退回)") from exc
        people = notifications.holders(session, reopened)
        for row in reopened:
            notifications.notify(session, people[row.id], "new_task", row,
                                 notifications.returned_texts(row, case.process_version.name, actor.username))
        return views.case_view(services, session, case, actor)


def _reopen(session: Session, open_ids: list[str]) -> list[Task]:
    """Rows of tasks the step opens again (a return reuses the earlier task's id): open once more, held by
    whoever completed them while they still hold the task's role (or, while they are away, their substitute
    holding it), else in the role's pool; due as the step says."""
    rows = list(session.scalars(select(Task).where(Task.id.in_(open_ids), Task.status != "open")))
    def person(row: Task) -> str | None:
        return row.completed_by if row.completed_by not in (None, "system") else None
    holding = queries.holders_now(session, {(name, row.role) for row in rows if (name := person(row))}, utcnow(),
                                  named_need_role=True)
    reminders.forget(session, [row.id for row in rows])  # its new deadline is reminded as a new task's is
    for row in rows:
        name = person(row)
        row.status, row.due_at, row.overdue = "open", None, False
        row.assignee = holding[(name, row.role)] if name else None
        row.completed_by, row.completed_at, row.created_at = None, None, utcnow()
    session.flush()
    return rows


def _require_open(task: Task) -> None:
    if task.status != "open":
        raise Conflict("the task is no longer open (任务已结束)")


def _require_lane_role(holder: User, task: Task, substituted: bool) -> None:
    roles = set(holder.role_keys)
    if "admin" in roles or (task.role is not None and task.role in roles):
        return
    who = f"{holder.username} (standing in, 代理人)" if substituted else holder.username
    raise Invalid(f"{who} does not hold this task's role {task.role or 'admin'} (该用户没有此任务所属角色)",
                  {"username": f"没有角色 {task.role or 'admin'} (lacks the task's role)"})


def _require_later(due: datetime, current: datetime | None) -> None:
    if due <= utcnow() or (current is not None and due <= current):
        raise Invalid("the new deadline must be later than now and than the current one "
                      "(新的期限须晚于现在和原期限)",
                      {"until": "须晚于原期限 (must be later than the current deadline)"})


def _reason(reason: Any) -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise Invalid("a reason is required (必须填写理由)", {"reason": "必填 (required)"})
    if len(reason) > MAX_REASON:
        raise Invalid(f"the reason has at most {MAX_REASON} characters (理由过长)",
                      {"reason": f"最多 {MAX_REASON} 字 (too long)"})
    return reason.strip()
