"""The task read model: after each step, a case's `tasks` rows follow the engine's open tasks (new ones
added, with a substitute for an absent assignee and none for a deactivated one; finished ones cancelled; extended
deadlines kept; overdue marked)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.db.models import Case, Task
from workflows.engine import OpenTask, Step

from .casehistory import SYSTEM_NAME, childless, hand_back, record
from .notifications import tasks_opened
from .policy import note_participant
from .queries import holders_now
from .users import NO_ACTIVE_ACCOUNT, user_has_role_in

OPEN_TASKS = "cadreflow.open_tasks"  # case id -> its open task rows, as the last step stored them
NEW_CASES = "cadreflow.new_cases"  # ids of the cases this transaction created
# case id -> task rows read under the case's lock (its open ones among them), for the next step's sync to reuse
LOCKED_TASKS = "cadreflow.locked_tasks"
OUTSIDE_LANE = "该用户不具有本环节的角色 (the user does not hold this step's role)"


def sync_tasks(session: Session, case: Case, step: Step, now: datetime, announce: list[Task] | None) -> None:
    """Make the case's open task rows what the step left open; the new ones are announced now, or added to
    `announce` for the caller to announce in one batch."""
    # A case created in this transaction has no task rows yet: no need to ask.
    rows = {} if case.id in session.info.get(NEW_CASES, ()) else _open_rows(session, case)
    wanted = {task.id: task for task in step.open_tasks}
    for row_id, gone in rows.items():
        if row_id not in wanted:
            gone.status, gone.completed_at = "cancelled", now
    # A diagram's assignee holds its task only in the task's lane: the expression often reads a field a person filled.
    holding = holders_now(session, {(t.assignee, t.role) for t in step.open_tasks if t.id not in rows and t.assignee},
                          now, named_need_role=True)
    opened: list[Task] = []
    moved: list[Task] = []  # held tasks a migration put in another lane
    for task in step.open_tasks:
        if (row := rows.get(task.id)) is None:
            assignee = holding[(task.assignee, task.role)] if task.assignee else None
            opened.append(Task(id=task.id, case_id=case.id, process_key=case.process_key,
                               process_version_id=case.process_version_id, element_id=task.element_id,
                               name=task.name, role=task.role, assignee=assignee, status="open",
                               created_at=now, due_at=parse_time(task.due_at), overdue=False))
            session.add(opened[-1])
            if assignee:  # assigned by the diagram: the assignee may read the case from now on
                note_participant(session, case.id, assignee)
            if task.assignee:
                _record_holder(session, case, task, assignee, now)
        elif _keep_open(row, case, task) and row.assignee:
            moved.append(row)
    _release_outside_lane(session, case, moved)
    _mark_overdue(rows.values(), step.overdue_elements, now)
    still_open = [row for row in rows.values() if row.status == "open"] + opened
    session.info.setdefault(OPEN_TASKS, {})[case.id] = sorted(still_open, key=lambda t: (t.created_at, t.id))
    if announce is None:
        tasks_opened(session, case, opened)
    else:
        announce.extend(opened)


def _record_holder(session: Session, case: Case, task: OpenTask, assignee: str | None, now: datetime) -> None:
    """Who holds a new task the diagram assigned: its assignee, their substitute, or the role's pool."""
    if assignee is None:  # outside the lane, deactivated or unknown: the role's pool
        reason = _not_held(session, task.assignee or "", task.role, now)
        record(session, case, SYSTEM_NAME, "unclaim", task.element_id,
               {"task_id": task.id, "from": task.assignee, "reason": reason})
    elif assignee != task.assignee:  # its assignee is away (absence.py): the substitute holds it
        record(session, case, SYSTEM_NAME, "substitute", task.element_id,
               {"task_id": task.id, "instead_of": task.assignee, "to": assignee})
    else:  # the expression is read anew at every look (a field changed since, today()): who it gave the task to
        # when it opened is kept, for `check` to hold the row to
        record(session, case, SYSTEM_NAME, "designate", task.element_id, {"task_id": task.id, "to": assignee})


def _not_held(session: Session, assignee: str, role: str | None, now: datetime) -> str:
    """Why the user a diagram assigned a task to does not hold it: no active account, or not the task's role."""
    active = holders_now(session, {(assignee, role)}, now)[(assignee, role)] is not None
    return OUTSIDE_LANE if active else NO_ACTIVE_ACCOUNT


def _open_rows(session: Session, case: Case) -> dict[str, Task]:
    """The case's open task rows: those read under its lock when the use case read them (the session's own
    objects, so their status is this transaction's), else asked of the database."""
    locked = session.info.get(LOCKED_TASKS, {}).pop(case.id, None)
    if locked is None:
        locked = session.scalars(select(Task).where(Task.case_id == case.id, Task.status == "open"))
    return {row.id: row for row in locked if row.status == "open"}


def remember_locked(session: Session, case: Case, rows: list[Task] | None, has_children: bool) -> None:
    """Keep what a use case read under a case's lock (`rows`: its open tasks, when the step it runs next
    may take them as they are), so that step need not ask again."""
    if rows is not None:
        session.info.setdefault(LOCKED_TASKS, {})[case.id] = rows
    if not has_children:
        childless(session, case.id)


def _mark_overdue(rows: Iterable[Task], elements: Iterable[str], now: datetime) -> None:
    """The diagram's deadline of these elements passed: their open tasks are overdue, unless extended past now."""
    late = set(elements)
    for row in rows:
        if row.element_id in late and row.status == "open" and not (row.due_at and row.due_at > now):
            row.overdue = True


def _keep_open(row: Task, case: Case, task: OpenTask) -> bool:
    """A task still open: after a migration it belongs to the new version; an extension only moves it later.
    Only what differs is set: a row set to its own values would still be looked over by the next flush.
    True when its lane (role) changed."""
    engine_due = parse_time(task.due_at)
    wanted = {"process_version_id": case.process_version_id, "name": task.name, "role": task.role,
              "due_at": max(engine_due, row.due_at) if engine_due and row.due_at else engine_due or row.due_at}
    moved = row.role != task.role
    for name, value in wanted.items():
        if getattr(row, name) != value:
            setattr(row, name, value)
    return moved


def _release_outside_lane(session: Session, case: Case, rows: list[Task]) -> None:
    """A held task the new version put in another lane goes back to that lane when its holder lacks the lane's
    role: holding it would let them complete a step of a role they do not have (a reassignment refuses them)."""
    has_role = user_has_role_in(session)
    for row in rows:
        if row.assignee and not (has_role(row.assignee, row.role or "admin") or has_role(row.assignee, "admin")):
            hand_back(session, case, row, SYSTEM_NAME, role=row.role)


def open_task_rows(session: Session, case: Case) -> list[Task] | None:
    """The case's open task rows as this transaction's last step of it left them (None: no step stored)."""
    rows: list[Task] | None = session.info.get(OPEN_TASKS, {}).get(case.id)
    return rows


def parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
