"""Notifications: personal notices of a new task, a task due soon or overdue, and a supervision (督办); to the
admins, a due-soon or overdue reminder that reached nobody (`unreached`).

They are written in the transaction of whatever causes them (a step opening tasks, the worker's due
scan), to the people who may act on the task at that moment: its assignee, or else every active user
holding its role. Each user reads only their own; another user's notification is 404, like an
unknown id. E-mail follows from `mail_status` (service/usecases/mailing.py), never inside a request.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import (
    Insert,
    Integer,
    String,
    Table,
    and_,
    bindparam,
    exists,
    func,
    insert,
    literal,
    null,
    select,
    union_all,
    update,
)
from sqlalchemy import case as sql_case
from sqlalchemy.orm import Session, aliased

from service.db.direct import DirectStatement, flush_then
from service.db.models import NOTICE_TEXT, Case, Notification, Task, User, UserRole, UTCDateTime, utcnow
from service.db.uow import rows_changed
from service.errors import NotFound

from . import policy, queries
from .context import Actor, Services
from .views import MAX_ID, iso

SUPERVISE = "supervise_"  # a supervision task `supervise_<task id>` urges the holders of <task id> (督办)
MAX_PER_PAGE = 100
Texts = tuple[str, str]  # Chinese, English


@dataclass(frozen=True)
class Recipient:
    """A user to notify, and whether they take one e-mail per notification."""

    user_id: int
    mails: bool


# Writing: who is told what.

def tasks_opened(session: Session, case: Case, tasks: Iterable[Task]) -> None:
    """Tell the people of each task a step just opened (rows added in this transaction); a supervision
    task tells the holders of the supervised task and the supervising role instead."""
    opened = sorted(tasks, key=lambda t: t.id)
    if not opened:
        return
    process = case.process_version.name
    plain = [t for t in opened if not (t.element_id.startswith(SUPERVISE) and _supervision(session, t, process))]
    if plain:  # the statement finds each task's people and writes their notices (a bulk start: a batch's)
        # After the new tasks' rows, which the notices refer to: on PostgreSQL in the same round trip.
        flush_then(session, _NEW_TASK_NOTICES, _new_task_notice_rows(plain, process))


def _new_task_notice_rows(tasks: list[Task], process: str) -> list[dict[str, Any]]:
    """The parameters of `_NEW_TASK_NOTICES` for each new task."""
    rows = []
    for task in tasks:
        zh, en = _stored(new_task_texts(task, process))
        rows.append({"n_task": task.id, "n_case": task.case_id, "n_role": task.role, "n_assignee": task.assignee,
                     "n_text": zh, "n_text_en": en, "n_at": utcnow()})
    return rows


def _new_task_notices() -> Insert:
    """One new task's notices, written by the database to whoever holds the task now, as `holders` finds them
    (its active assignee, else the active users holding its role): one statement where asking, then inserting,
    took two."""
    # The last column as `_recipient`: one mail per notice to a user with an address ("" is stored as none) who
    # takes no daily digest.
    kept = (literal("new_task"), bindparam("n_case", type_=Integer), bindparam("n_task", type_=String),
            bindparam("n_text", type_=String), bindparam("n_text_en", type_=String),
            bindparam("n_at", type_=UTCDateTime),
            sql_case((and_(User.email.is_not(None), User.mail_digest.is_(False)), literal("pending")), else_=null()))
    assignee = bindparam("n_assignee", type_=String)
    by_name = select(User.id, *kept).where(User.username == assignee, User.active)
    named = aliased(User)  # an assignee who is no longer active leaves the task to its role's holders
    nobody_named = ~exists().where(named.username == assignee, named.active)
    by_role = select(User.id, *kept).join(UserRole, UserRole.user_id == User.id).where(
        nobody_named, UserRole.role == bindparam("n_role", type_=String), User.active)
    chosen = union_all(by_name, by_role).subquery()
    columns = (Notification.user_id, Notification.kind, Notification.case_id, Notification.task_id,
               Notification.text, Notification.text_en, Notification.at, Notification.mail_status)
    return insert(cast(Table, Notification.__table__)).from_select(columns, select(*chosen.c).order_by(chosen.c.id))


# Built once, and sent on the bare driver (service/db/direct.py): every step that opens a task runs it.
_NEW_TASK_NOTICES = DirectStatement(_new_task_notices())


def _supervision(session: Session, task: Task, process: str) -> bool:
    """Notify a supervision (督办); False when the supervised task is no longer open."""
    supervised = list(session.scalars(select(Task).where(
        Task.case_id == task.case_id, Task.status == "open", Task.element_id == task.element_id[len(SUPERVISE):])))
    if not supervised:
        return False
    people = holders(session, [task, *supervised])
    for urged in supervised:
        notify(session, people[urged.id], "supervision", urged, supervised_texts(urged, process))
    notify(session, people[task.id], "supervision", task, supervising_texts(task, supervised[0], process))
    return True


def notify(session: Session, recipients: Iterable[Recipient], kind: str, task: Task, texts: Texts) -> None:
    """Add one notification about a task for each recipient (in the caller's transaction)."""
    session.add_all(Notification(**notice(r, kind, task, texts)) for r in recipients)


def notice(recipient: Recipient, kind: str, task: Task, texts: Texts) -> dict[str, Any]:
    """The columns of one notification about a task."""
    zh, en = _stored(texts)
    return {"user_id": recipient.user_id, "kind": kind, "case_id": task.case_id, "task_id": task.id, "text": zh,
            "text_en": en, "at": utcnow(), "mail_status": "pending" if recipient.mails else None}


def _stored(texts: Texts) -> Texts:
    """A notice's texts cut to the width of their columns."""
    zh, en = (text[:NOTICE_TEXT] for text in texts)
    return zh, en


def holders(session: Session, tasks: list[Task]) -> dict[str, list[Recipient]]:
    """Who may act on each task now: its assignee while active, or else the active users holding its role (two
    queries of the four columns a notice needs, not whole user rows). A task still held by a deactivated user is
    told to its role's holders: told to nobody, it would wait unseen. `_NEW_TASK_NOTICES` applies the same rule."""
    names = {t.assignee for t in tasks if t.assignee}
    by_name: dict[str, Recipient] = {}
    if names:
        found = session.execute(_USERS_NAMED, {"names": sorted(names)})
        by_name = {username: _recipient(user_id, email, digest) for username, user_id, email, digest in found}
    # A lane without a role: only admins act on it.
    roles = {t.role for t in tasks if t.role and t.assignee not in by_name}
    by_role: dict[str, list[Recipient]] = {}
    if roles:
        for role, user_id, email, digest in session.execute(_USERS_HOLDING, {"roles": sorted(roles)}):
            by_role.setdefault(role, []).append(_recipient(user_id, email, digest))
    return {t.id: [by_name[t.assignee]] if t.assignee in by_name else by_role.get(t.role or "", []) for t in tasks}


# Built once: every step that opens a task asks one of these, and building a statement costs more than running it.
_USERS_NAMED = select(User.username, User.id, User.email, User.mail_digest).where(
    User.username.in_(bindparam("names", expanding=True)), User.active)
_USERS_HOLDING = select(UserRole.role, User.id, User.email, User.mail_digest).join(
    User, User.id == UserRole.user_id).where(UserRole.role.in_(bindparam("roles", expanding=True)),
                                             User.active).order_by(User.id)


def _recipient(user_id: int, email: str | None, digest: bool) -> Recipient:
    return Recipient(user_id, bool(email) and not digest)


# The words (Chinese first, English after; no cadre names: notices may leave the building by e-mail).

def _where(task: Task, process: str) -> Texts:
    return f"（{process}，案件 #{task.case_id}）", f" ({task.process_key}, case #{task.case_id})"


def new_task_texts(task: Task, process: str) -> Texts:
    zh, en = _where(task, process)
    return f"新任务：{task.name}{zh}", f"New task: {task.name}{en}"


def assigned_texts(task: Task, process: str, by: str) -> Texts:
    zh, en = _where(task, process)
    return f"{by} 转交给您的任务：{task.name}{zh}", f"Task handed to you by {by}: {task.name}{en}"


def returned_texts(task: Task, process: str, by: str) -> Texts:
    zh, en = _where(task, process)
    return f"{by} 退回的任务：{task.name}{zh}", f"Task returned by {by}: {task.name}{en}"


def unreached_texts(task: Task, process: str, kind: str, due: str) -> Texts:
    """To the admins: a due-soon or overdue reminder of the task reached nobody (nobody active holds its role)."""
    zh, en = _where(task, process)
    what_zh, what_en = ("已逾期", "overdue") if kind == "overdue" else ("即将到期", "due soon")
    role = task.role or "admin"
    return (f"提醒无人接收：{task.name}{zh}{what_zh}（期限 {due}），角色 {role} 当前无人担任，请指派人员",
            f"Reminder reached nobody: {task.name}{en} is {what_en} (due {due}); nobody active holds the role "
            f"{role}: give the role to someone")


def deactivated_holder_texts(task: Task, process: str, holder: str) -> Texts:
    zh, en = _where(task, process)
    return (f"{holder} 的账号已停用，其任务退回待办：{task.name}{zh}",
            f"Back in your role's tasks, {holder}'s account was deactivated: {task.name}{en}")


def role_removed_texts(task: Task, process: str, holder: str) -> Texts:
    zh, en = _where(task, process)
    return (f"{holder} 已不再担任此任务的角色，其任务退回待办：{task.name}{zh}",
            f"Back in your role's tasks, {holder} no longer holds the task's role: {task.name}{en}")


def due_soon_texts(task: Task, process: str, due: str) -> Texts:
    zh, en = _where(task, process)
    return f"即将到期：{task.name}{zh}将于 {due} 到期", f"Due soon: {task.name}{en} is due {due}"


def overdue_texts(task: Task, process: str, due: str) -> Texts:
    zh, en = _where(task, process)
    since_zh, since_en = (f"，期限为 {due}", f", it was due {due}") if due else ("", "")
    return f"已逾期：{task.name}{zh}{since_zh}", f"Overdue: {task.name}{en}{since_en}"


def supervised_texts(task: Task, process: str) -> Texts:
    zh, en = _where(task, process)
    return (f"督办：{task.name}{zh}已逾期，上级正在督办，请抓紧办理",
            f"Supervision (督办): {task.name}{en} is overdue and is being supervised; please act on it now")


def supervising_texts(task: Task, urged: Task, process: str) -> Texts:
    zh, en = _where(task, process)
    return (f"督办任务：{urged.name}{zh}已逾期，请督促办理并填写督办意见",
            f"Supervise (督办): {urged.name}{en} is overdue; urge it on and record your instruction")


# Reading: each user their own.

def list_notifications(services: Services, actor: Actor, unread_only: bool = False, page: int = 1,
                       per_page: int = 20) -> dict[str, Any]:
    """The actor's notifications, newest first, a page at a time (past the last: empty), with how many are unread."""
    per_page = min(max(per_page, 1), MAX_PER_PAGE)
    with services.db.unit_of_work(write=False) as session:
        user_id = _user_id(session, actor)
        query = select(Notification).where(Notification.user_id == user_id)
        if unread_only:
            query = query.where(Notification.read_at.is_(None))
        rows, where = queries.page_of(session, query.order_by(Notification.id.desc()), page, per_page, clamp=False)
        tasks = _tasks(session, actor, {row.task_id for row in rows if row.task_id})
        return {"items": [notification_view(row, tasks.get(row.task_id or ""), actor) for row in rows],
                "unread": _unread(session, user_id), **where}


def unread_count(services: Services, actor: Actor) -> int:
    """How many of the actor's notifications are unread (the bell in the top bar)."""
    with services.db.unit_of_work(write=False) as session:
        user_id = session.scalar(select(User.id).where(User.username == actor.username))
        return _unread(session, user_id) if user_id is not None else 0


def mark_read(services: Services, actor: Actor, notification_id: int) -> dict[str, Any]:
    """Mark one of the actor's notifications read (again is fine); another user's is NotFound."""
    with services.db.unit_of_work() as session:
        row = _own(session, actor, notification_id)
        row.read_at = row.read_at or utcnow()
        return notification_view(row, _tasks(session, actor, {row.task_id} if row.task_id else set()).get(
            row.task_id or ""), actor)


def mark_all_read(services: Services, actor: Actor) -> int:
    """Mark every unread notification of the actor read; returns how many."""
    with services.db.unit_of_work() as session:
        user_id = _user_id(session, actor)
        return rows_changed(session, update(Notification).where(Notification.user_id == user_id,
                                                          Notification.read_at.is_(None)).values(read_at=utcnow()))


def notification_view(row: Notification, task: Task | None, actor: Actor) -> dict[str, Any]:
    """A notification as the API shows it, with whether its task may be opened and what state it is in."""
    return {"id": row.id, "kind": row.kind, "case_id": row.case_id, "task_id": row.task_id,
            "text": f"{row.text}。{row.text_en}.", "text_zh": row.text, "text_en": row.text_en,
            "at": iso(row.at), "read": row.read_at is not None,
            "openable": task is not None and may_open(actor, task), "task_state": task_state(actor, task)}


def may_open(actor: Actor, task: Task) -> bool:
    """Whether the notification may link to its task: the actor holds its role, holds it, or completed it.

    The one place a notification decides what it links to; the task page itself enforces the read policy.
    """
    return actor.has_any(task.role or "admin") or actor.username in (task.assignee, task.completed_by)


def task_state(actor: Actor, task: Task | None) -> str | None:
    """`todo` (open, the actor may act), `held` (open, someone else holds it), `closed`, or None."""
    if task is None:
        return None
    if task.status != "open":
        return "closed"
    return "held" if task.assignee not in (None, actor.username) else "todo"


def _own(session: Session, actor: Actor, notification_id: int) -> Notification:
    """The actor's notification by id; NotFound for another user's, exactly like an unknown id."""
    row = session.get(Notification, notification_id) if 0 < notification_id <= MAX_ID else None
    if row is None or row.user_id != _user_id(session, actor):
        raise NotFound(f"notification {notification_id} not found (通知不存在)")
    return row


def _user_id(session: Session, actor: Actor) -> int:
    user_id = session.scalar(select(User.id).where(User.username == actor.username))
    if user_id is None:
        raise NotFound(f"user {actor.username} not found (用户不存在)")
    return user_id


def _unread(session: Session, user_id: int) -> int:
    return session.scalar(select(func.count()).select_from(Notification).where(
        Notification.user_id == user_id, Notification.read_at.is_(None))) or 0


def _tasks(session: Session, actor: Actor, task_ids: set[str]) -> dict[str, Task]:
    """The notified tasks the actor may still read (a notice outlives the roles that brought it: a task of a case
    the actor reads no longer shows whether it is open, nor links to it)."""
    if not task_ids:
        return {}
    readable = select(Task).join(Case, Case.id == Task.case_id).where(Task.id.in_(task_ids), policy.case_filter(actor))
    return {t.id: t for t in session.scalars(readable)}
