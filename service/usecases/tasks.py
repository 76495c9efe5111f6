"""Use cases on tasks: the inbox, claim, unclaim, complete."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from service.db.models import Case, Task, utcnow
from service.errors import Conflict, Forbidden, NotFound
from workflows.engine import TaskNotReady

from . import views
from .cases import child_starter
from .context import Actor, Services
from .forms import validate_form
from .steps import (
    Effects,
    apply_step,
    definition_of,
    lock_case,
    record,
    rule_checker,
    run_engine,
    service_handler,
)
from .users import user_has_role_in


def list_tasks(services: Services, actor: Actor, filters: dict[str, Any]) -> list[dict[str, Any]]:
    """The open tasks the actor may act on: its roles' lanes, or assigned to it."""
    query = select(Task).where(Task.status == "open")
    if "admin" not in actor.roles:
        query = query.where(or_(Task.assignee == actor.username,
                                and_(Task.role.in_(actor.roles), Task.assignee.is_(None))))
    if filters.get("case_id"):
        query = query.where(Task.case_id == filters["case_id"])
    if filters.get("process"):
        query = query.where(Task.process_key == filters["process"])
    if filters.get("overdue"):
        query = query.where(or_(Task.overdue.is_(True), Task.due_at < datetime.now(UTC)))
    query = query.order_by(Task.due_at.asc().nulls_last(), Task.created_at, Task.id)
    if filters.get("per_page"):  # the most urgent first, a page at a time
        query = query.offset((filters.get("page", 1) - 1) * filters["per_page"]).limit(filters["per_page"])
    with services.db.unit_of_work(write=False) as session:
        return [views.task_view(services, session, task) for task in session.scalars(query)]


def get_task(services: Services, actor: Actor, task_id: str) -> dict[str, Any]:
    """One task (open or closed) with its form."""
    with services.db.unit_of_work(write=False) as session:
        task = _task(session, task_id)
        case = session.get(Case, task.case_id)
        return {**views.task_view(services, session, task), "context": views.task_context(session, case)}


def claim_task(services: Services, actor: Actor, task_id: str) -> dict[str, Any]:
    """Take an open task of one's role so nobody else completes it."""
    with services.db.unit_of_work() as session:
        task = _task(session, task_id)
        _require_role(actor, task)
        claimed = session.execute(update(Task).where(
            Task.id == task_id, Task.status == "open",
            or_(Task.assignee.is_(None), Task.assignee == actor.username)).values(assignee=actor.username))
        if claimed.rowcount != 1:
            session.refresh(task)
            raise Conflict(_why_not_claimable(task))
        case = session.get(Case, task.case_id)
        record(session, case, actor.username, "claim", task.element_id, {"task_id": task_id})
        session.refresh(task)
        return views.task_view(services, session, task)


def unclaim_task(services: Services, actor: Actor, task_id: str) -> dict[str, Any]:
    """Give a claimed task back to its role."""
    with services.db.unit_of_work() as session:
        task = _task(session, task_id)
        if task.status != "open":
            raise Conflict("the task is no longer open (任务已结束)")
        if task.assignee != actor.username and "admin" not in actor.roles:
            raise Forbidden("only its holder may give a task back (只有认领人可以退回任务)")
        task.assignee = None
        case = session.get(Case, task.case_id)
        record(session, case, actor.username, "unclaim", task.element_id, {"task_id": task_id})
        return views.task_view(services, session, task)


def complete_task(services: Services, actor: Actor, task_id: str, data: Any) -> dict[str, Any]:
    """Complete an open task with its form data and run the case on; returns the case."""
    with services.db.unit_of_work() as session:
        case_id = session.scalar(select(Task.case_id).where(Task.id == task_id))
        if case_id is None:
            raise NotFound(f"task {task_id} not found (任务不存在)")
        case = lock_case(session, case_id)
        task = session.get(Task, task_id, populate_existing=True)
        if task.status != "open":
            raise Conflict("the task was already completed (任务已被办理)")
        if case.status != "open":
            raise Conflict(f"case {case.id} is {case.status}; its tasks cannot be completed now "
                           "(案件当前状态不允许办理)")
        _require_holder(actor, task)
        definition = definition_of(services, case)
        fields = validate_form(definition.forms.get(task.element_id, {}), data, user_has_role_in(session),
                               rule_checker(services), case.data)
        effects = Effects(session, services.today())
        handler = service_handler(case.process_key, effects)
        try:
            step = run_engine(lambda: services.runner.complete(definition, case.state, task_id, fields, handler))
        except TaskNotReady as exc:
            raise Conflict("the task is no longer open (任务已结束)") from exc
        task.status, task.completed_by, task.completed_at = "completed", actor.username, utcnow()
        record(session, case, actor.username, "complete", task.element_id, {"task_id": task_id, "data": fields})
        apply_step(session, case, step, effects, child_starter(services, session))
        return views.case_view(services, session, case)


def _task(session: Session, task_id: str) -> Task:
    task = session.get(Task, task_id)
    if task is None:
        raise NotFound(f"task {task_id} not found (任务不存在)")
    return task


def _require_role(actor: Actor, task: Task) -> None:
    if not actor.has_any(task.role or "admin") and task.assignee != actor.username:
        raise Forbidden(f"this task belongs to role {task.role} (此任务属于角色 {task.role})")


def _require_holder(actor: Actor, task: Task) -> None:
    _require_role(actor, task)
    if task.assignee and task.assignee != actor.username and "admin" not in actor.roles:
        raise Forbidden(f"the task is held by {task.assignee} (任务已由 {task.assignee} 认领)")


def _why_not_claimable(task: Task) -> str:
    if task.status != "open":
        return "the task is no longer open (任务已结束)"
    return f"the task is already claimed by {task.assignee} (任务已被 {task.assignee} 认领)"
