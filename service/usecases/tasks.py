"""Use cases on tasks: the inbox, claim, unclaim, complete."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Select, bindparam, exists, or_, select
from sqlalchemy.orm import Session, aliased
from sqlalchemy.orm.attributes import set_committed_value

from service.db.direct import DirectStatement, as_read, loaded_columns, pipelined, read_values, settle
from service.db.models import Case, CaseParticipant, ProcessVersion, Task, utcnow
from service.db.uow import existing
from service.errors import Conflict, NotFound
from workflows.engine import TaskNotReady

from . import access_log, policy, queries, views
from .casehistory import hand_back, held, record
from .context import Actor, Services
from .forms import form_seconds, validate_form
from .readmodel import open_task_rows, remember_locked
from .stepper import cadre_exists_in, run_step
from .steps import definition_of, rule_checker
from .timers import check_deadlines, deadlines_first
from .users import lock_own_account, user_has_role_in


def list_tasks(services: Services, actor: Actor, filters: dict[str, Any]) -> list[dict[str, Any]]:
    """The open tasks the actor may act on: its roles' lanes, or assigned to it."""
    query = actionable_tasks(actor, filters).order_by(*MOST_URGENT)
    if filters.get("per_page"):  # the most urgent first, a page at a time
        query = query.offset((filters.get("page", 1) - 1) * filters["per_page"]).limit(filters["per_page"])
    with services.db.unit_of_work(write=False) as session:
        return [views.task_view(services, session, task) for task in session.scalars(query)]


MOST_URGENT = (Task.due_at.asc().nulls_last(), Task.created_at, Task.id)


def actionable_tasks(actor: Actor, filters: dict[str, Any]) -> Select[Task]:
    """The query of the open tasks the actor may act on, filtered (the API's and the web inbox's). Tasks of a case
    held as an incident wait for its retry and nobody may claim or complete them: left out, unless `held` asks for
    those alone."""
    policy.require(actor, "task.list")
    held_case = queries.of_held_case()
    query = select(Task).where(Task.status == "open", policy.task_action_filter(actor, "task.complete"),
                               held_case if filters.get("held") else ~held_case)
    if filters.get("case_id"):
        query = query.where(Task.case_id == filters["case_id"])
    if filters.get("process"):
        query = query.where(Task.process_key == filters["process"])
    if filters.get("overdue"):
        query = query.where(queries.overdue(datetime.now(UTC)))
    return query


def get_task(services: Services, actor: Actor, task_id: str) -> dict[str, Any]:
    """One task (open or closed) with its form, if the actor may read its case."""
    view, cadre_id = read_task(services, actor, task_id)
    access_log.note(services, actor, "task", view["case_id"], cadre_id)
    return view


def read_task(services: Services, actor: Actor, task_id: str) -> tuple[dict[str, Any], str | None]:
    """A task's view and its case's cadre, without noting the read (for pages that note their own)."""
    with services.db.unit_of_work(write=False) as session:
        task = policy.readable_task(session, actor, task_id)
        case = existing(session, Case, task.case_id)
        context = views.task_context(session, case, task.element_id, services.today(), actor)
        return {**views.task_view(services, session, task), "context": context}, case.cadre_id


def claim_task(services: Services, actor: Actor, task_id: str) -> dict[str, Any]:
    """Take an open task of one's role so nobody else completes it."""
    with services.db.unit_of_work() as session:
        lock_own_account(session, actor)  # before the case's lock, as a deactivation takes them
        task, case = locked_task(session, actor, task_id, taking_part=True)
        policy.require_task_action(session, actor, "task.claim", task)
        if task.status != "open" or task.assignee not in (None, actor.username):
            raise Conflict(_why_not_claimable(task))
        if case.status != "open":  # held as an incident: claimed, it could not be completed until a retry
            raise Conflict(not_actionable(case))
        if task.assignee == actor.username:  # a repeat (a double click, a retry): held already, nothing to record
            return views.task_view(services, session, task)
        task.assignee = actor.username
        record(session, case, actor.username, "claim", task.element_id, {"task_id": task_id})
        return views.task_view(services, session, task)


def unclaim_task(services: Services, actor: Actor, task_id: str) -> dict[str, Any]:
    """Give a claimed task back to its role."""
    with services.db.unit_of_work() as session:
        task, case = locked_task(session, actor, task_id)
        if task.status != "open":
            raise Conflict("the task is no longer open (任务已结束)")
        policy.require_task_action(session, actor, "task.unclaim", task)
        hand_back(session, case, task, actor.username)
        return views.task_view(services, session, task)


def complete_task(services: Services, actor: Actor, task_id: str, data: Any) -> dict[str, Any]:
    """Complete an open task with its form data and run the case on; returns the case. A deadline of the case that
    passed before the completion fires first, even with no worker yet, as the worker would have: a reply after its
    interrupting deadline is then refused (409) with the case moved on, a late answer taken as overdue."""
    return deadlines_first(services, lambda fire_first: _complete(services, actor, task_id, data, fire_first))


def _complete(services: Services, actor: Actor, task_id: str, data: Any, fire_first: bool) -> dict[str, Any]:
    with services.db.unit_of_work() as session:
        task, case = locked_task(session, actor, task_id, completing=True, taking_part=True)
        if task.status != "open":
            raise Conflict(_why_not_completable(task))
        if case.status != "open":
            raise Conflict(not_actionable(case))
        policy.require_task_action(session, actor, "task.complete", task)
        check_deadlines(case, fire_first)
        definition = definition_of(services, case)
        fields = validate_form(definition.forms.get(task.element_id, {}), data, user_has_role_in(session),
                               rule_checker(services), case.data, cadre_exists_in(session),
                               form_seconds(services.settings))
        task.status, task.completed_by, task.completed_at = "completed", actor.username, utcnow()
        try:
            run_step(services, session, case,
                     lambda definition, state, handler: services.runner.complete(definition, state, task_id, fields,
                                                                                 handler),
                     (actor.username, "complete", task.element_id, {"task_id": task_id, "data": fields}), definition)
        except TaskNotReady as exc:
            raise Conflict("the task is no longer open (任务已结束)") from exc
        return views.case_view(services, session, case, actor, open_tasks=open_task_rows(session, case))


def locked_task(session: Session, actor: Actor, task_id: str, completing: bool = False,
                taking_part: bool = False) -> tuple[Task, Case]:
    """A task the actor may read (else 404) and its case, the case locked first so every change to it and
    its history is serialised: the case is found through the task and locked in one statement, then the
    task is read under that lock. `completing`: the step that follows only closes and opens tasks (no task
    reopened, as a return does), so it may take the open tasks read here as the case's. `taking_part`: the
    action makes the actor a participant of the case (a claim, a completion), noted under the lock too; an
    action refused after this rolls it back with everything else. The statements run on the bare driver
    (service/db/direct.py): every action on a task sends them."""
    settle(session)  # a change pending on an object read below would be lost to the refresh
    connection = session.connection()
    # In one round trip on PostgreSQL: the server runs the others once the first holds the lock.
    with pipelined(connection):
        locking = _lock_through_task(actor.roles).send(connection, [{"task_id": task_id, "reader": actor.username}])
        # Under the lock, in one statement: the task, the case's other open tasks (the step's sync reuses them),
        # whether the actor is already a participant and whether the case has child cases (the reply lists them).
        reading = _TASKS_UNDER_LOCK.send(connection, [{"task_id": task_id, "username": actor.username}])
        noting = policy.send_participation(connection, actor, task_id) if taking_part else None
    found, rows = locking.rows(), reading.rows()
    if noting is not None:
        noting.touched()
    if not found:
        raise NotFound(f"task {task_id} not found (任务不存在)")
    # Refreshed if the session held it: a case read earlier must not keep its pre-lock history head.
    case = as_read(session, Case, read_values(Case, found[0]))
    _attach_version(session, case, read_values(ProcessVersion, found[0], len(loaded_columns(Case))))
    tasks = [as_read(session, Task, read_values(Task, row)) for row in rows]
    task = next((row for row in tasks if row.id == task_id), None)
    if task is None:
        raise LookupError(f"task {task_id} vanished under its case's lock")
    participant, has_children = rows[0][-2:]
    if participant or noting is not None:
        policy.known_participant(session, case.id, actor.username)
    remember_locked(session, case, tasks if completing else None, bool(has_children))
    return task, held(session, case)


def _attach_version(session: Session, case: Case, values: dict[str, Any]) -> None:
    """The case's process version, read with it; looked up instead when its columns came back empty: the case
    moved to another version while the lock waited, and PostgreSQL checked the locked row's new values against
    the version row it had joined before, which no longer matches."""
    version = as_read(session, ProcessVersion, values) if values["id"] is not None else \
        existing(session, ProcessVersion, case.process_version_id)
    set_committed_value(case, "process_version", version)


@lru_cache(maxsize=256)
def _lock_through_task(roles: frozenset[str]) -> DirectStatement:
    """The statement finding a task's case with its process version, if readable, and locking it, for callers
    holding these roles (built once per set of roles: building a statement costs more than running it)."""
    of_task = select(Task.case_id).where(Task.id == bindparam("task_id")).scalar_subquery()
    readable = policy.case_filter(Actor("", roles), reader=bindparam("reader"))
    return DirectStatement(select(*loaded_columns(Case), *loaded_columns(ProcessVersion))
                           .outerjoin_from(Case, ProcessVersion, Case.process_version_id == ProcessVersion.id)
                           .where(Case.id == of_task, readable).with_for_update(of=Case))


_THE_TASK = aliased(Task)
_TASK_CASE = select(_THE_TASK.case_id).where(_THE_TASK.id == bindparam("task_id")).scalar_subquery()
_TASKS_UNDER_LOCK = DirectStatement(select(  # built once: every action on a task reads this
    *loaded_columns(Task),
    exists().where(CaseParticipant.case_id == _TASK_CASE, CaseParticipant.username == bindparam("username"))
    .label("participant"), exists().where(Case.parent_case_id == _TASK_CASE).label("has_children")).where(
    Task.case_id == _TASK_CASE, or_(Task.id == bindparam("task_id"), Task.status == "open")))


def not_actionable(case: Case, refused: str = "; its tasks cannot be completed now (案件当前状态不允许办理)") -> str:
    """Why a task of a case that is not open may not be acted on (claimed, completed, extended, returned): for one
    held as an incident, that an admin must retry it first; else its status and `refused`."""
    if case.status == "incident":
        return (f"案件 #{case.id} 因自动步骤故障暂停（incident），须由管理员重试后方可办理其任务 "
                f"(case {case.id} is held as an incident: an admin must retry it before its tasks can be done)")
    return f"case {case.id} is {case.status}{refused}"


def _why_not_completable(task: Task) -> str:
    """Why a task that is not open cannot be completed: a completion, or a return, a cancel or an event that
    withdrew it (never "completed" for a task nobody completed)."""
    if task.status == "completed":
        return "the task was already completed (任务已被办理)"
    return ("the task was withdrawn: returned to an earlier step, or its case cancelled or moved past it "
            "(任务已撤销或退回)")


def _why_not_claimable(task: Task) -> str:
    if task.status != "open":
        return "the task is no longer open (任务已结束)"
    return f"the task is already claimed by {task.assignee} (任务已被 {task.assignee} 认领)"
