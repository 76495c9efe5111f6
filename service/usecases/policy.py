"""Who may do what: the one authorization table, consulted by every use case, for the API and the web alike.

`TABLE` maps each action to who may take it. An entry of `who` is
- a role (`org_dept`): its holders may, on every resource of the action;
- `*`: any user holding at least one role;
- `~approver`: any user holding a role other than `designer`: the shipped approver roles and every role an
  admin adds (roles are data, service/usecases/roles.py);
- `$TABLE`: the roles a table names for the resource (START_ROLES by process, from the roles data;
  MESSAGE_ROLES, SIGNAL_ROLES from settings): callers pass `roles.policy_tables(...)`;
- a relation between the caller and the resource: `@lane` (one of its roles owns a lane of the case's
  process version), `@participant` (it claimed, completed, was assigned or was delegated one of its
  tasks; starting a case is not enough: a starter without a lane of it hands it over; only for a caller
  holding a role that may hold tasks: an assignee expression is designer code, and a designer reads no case
  even when a diagram names it), `@task_role` (it
  holds the task's role), `@assignee` (it holds the task),
  `@task_role_unclaimed` (it holds the task's role and nobody holds the task), `@lane_head` (it holds the
  head role of the task's lane, `roles.head_role`);
- `role@case`: holders of the role, on the cadres of the cases they may read.
`admin` may do everything; a user with no role may do nothing.

A case, task or cadre the caller may not read is NotFound, exactly like an unknown id, and lists leave it
out (filtered in SQL). A write on one first needs it readable (else 404), then its rule (else 403).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement, Connection, String, and_, bindparam, exists, false, or_, select, true
from sqlalchemy.orm import Session

from service.db.direct import DirectStatement, Sent, settle
from service.db.models import Cadre, Case, CaseParticipant, ProcessLane, ProcessStarter, ProcessVersion, Role, Task
from service.db.uow import insert_skipping_duplicates
from service.errors import Forbidden, NotFound

from .context import Actor


@dataclass(frozen=True)
class Rule:
    """Who may take an action, and what a refused caller is told (403)."""

    who: tuple[str, ...]
    refusal: str


APPROVER = "~approver"
NOT_APPROVERS = frozenset({"designer"})  # its holders design processes; they read no case
TASK_ROLES = (APPROVER,)
# A lane's head role is data: `roles.head_role`, kept on /admin/roles (docs/api.md); a lane without one has
# only `admin` above it.
HeadOf = Callable[[str], str | None]
_CADRE_READERS = ("discipline", "discipline_head", "org_dept", "org_head", "committee", "audit@case",
                  "audit_head@case", f"{APPROVER}@case")
_ROLE_OF_TASK = "this task belongs to role {role} (此任务属于角色 {role})"

TABLE: dict[str, Rule] = {
    # Reads. Process definitions, versions, BPMN, diffs, exports and aggregate counts are not confidential.
    "process.read": Rule(("*",), "your account has no role (账户没有任何角色)"),
    "case.read": Rule(("discipline", "discipline_head", "@lane", "@participant"),  # tasks, history, diagram too
                      "case not found (案件不存在)"),
    "case.list": Rule(TASK_ROLES, "your roles read no cases (您的角色不能查看案件)"),  # each sees what case.read allows
    "task.list": Rule(TASK_ROLES, "your roles hold no tasks (您的角色没有待办任务)"),  # its roles' lanes, or assigned
    "cadre.read": Rule(_CADRE_READERS, "cadre not found (干部不存在)"),  # the file: sanctions, audits, ledgers
    # Who may start a process chooses whom its cases are about: it finds any cadre by name, unit or id (the
    # picker's id, name, unit and post) without reading the file; having started, it reads that cadre's file.
    "cadre.pick": Rule((*_CADRE_READERS, "$START_ROLES"), "cadre not found (干部不存在)"),
    "cadre.list": Rule(TASK_ROLES, "your roles read no cadres (您的角色不能查看干部)"),  # what cadre.read allows
    "report.dashboard": Rule(("discipline", "discipline_head", "org_head"),  # counts over the cases it may read
                             "your roles do not open the dashboard (您的角色不能查看统计)"),
    "watchlist.read": Rule(("discipline", "discipline_head", "org_head"),
                           "your roles do not read the early-warning watch list (您的角色不能查看预警名单)"),
    "access_log.read": Rule(("discipline_head",),
                            "only discipline_head may read the access log (仅纪委书记可查看访问记录)"),
    # Who granted whom which role: read by those who read the access log, not only by the admins it records.
    "account_log.read": Rule(("discipline_head",),
                             "only discipline_head may read the account log (仅纪委书记可查看账号变更记录)"),
    "user.manage": Rule((), "only an admin may manage users (仅系统管理员可管理用户)"),
    "role.manage": Rule((), "only an admin may manage roles and starters (仅系统管理员可管理角色与发起权限)"),
    # Public reports (信访举报): the triage inbox, and the reporter's contact (never the subject's unit).
    "report.inbox": Rule(("discipline", "discipline_head"),
                         "only discipline roles handle public reports (仅纪委监委处理信访举报)"),
    "reporter.contact": Rule(("discipline", "discipline_head"),
                             "only discipline roles read a reporter's contact (仅纪委监委可查看举报人联系方式)"),
    # Writes.
    "case.start": Rule(("$START_ROLES",), "your roles may not start {key} (无权发起此流程)"),
    "case.message": Rule(("$MESSAGE_ROLES",), "your roles may not send {key} (无权发送此消息)"),
    "signal.send": Rule(("designer", "$SIGNAL_ROLES"), "your roles may not send signal {key} (无权发送此信号)"),
    "case.cancel": Rule((), "only an admin may cancel a case (仅管理员可撤销案件)"),
    "case.migrate": Rule((), "only an admin may migrate cases (仅管理员可迁移案件)"),
    # A dry run of migrating a process's open cases: designers see counts and task ids only, never a case.
    "case.migrate_preview": Rule(("designer",), "only an admin or designer may try a migration "
                                                "(仅管理员或流程设计员可试运行迁移)"),
    "case.retry": Rule(("designer",), "only an admin or designer may retry a case (仅管理员或流程设计员可重试)"),
    # On a case the caller may read (else 404): add a file or a remark.
    "case.attach": Rule(TASK_ROLES, "your roles may not add files to cases (您的角色不能上传附件)"),
    "case.comment": Rule(TASK_ROLES, "your roles may not comment on cases (您的角色不能发表意见)"),
    "task.claim": Rule(("@task_role", "@assignee"), _ROLE_OF_TASK),
    "task.unclaim": Rule(("@assignee",), "only its holder may give a task back (只有认领人可以退回任务)"),
    "task.complete": Rule(("@assignee", "@task_role_unclaimed"), _ROLE_OF_TASK),
    "task.assign": Rule(("@assignee", "@lane_head"), "only its holder, the lane's head role or an admin may "
                                                     "reassign this task (仅认领人、分管领导或管理员可转交任务)"),
    "task.extend": Rule(("@lane_head",), "only the lane's head role or an admin may extend this task "
                                         "(仅分管领导或管理员可延长办理期限)"),
    "task.return": Rule(("@assignee", "@task_role_unclaimed"), _ROLE_OF_TASK),  # whoever would complete it
    "absence.set": Rule(("*",), "your account has no role (账户没有任何角色)"),
    "cadre.create": Rule(("org_dept",), "only org_dept may register cadres (仅组织部可登记干部)"),
    "cadre.edit": Rule(("org_dept",), "only org_dept may edit cadres (仅组织部可修改干部信息)"),
    "personal_report.write": Rule(("org_dept",), "only org_dept may record personal-matters reports "
                                                 "(仅组织部可登记个人有关事项报告)"),
    "learning.write": Rule(("org_dept",), "only org_dept may keep learning records (仅组织部可维护学习档案)"),
    "early_warning.scan": Rule(("discipline", "discipline_head"),
                               "only discipline roles may run the early-warning scan (仅纪委监委可执行预警排查)"),
    "rotation.scan": Rule(("org_dept",), "only org_dept may run the rotation scan (仅组织部可执行轮岗排查)"),
    "integrity.open": Rule(("org_dept",), "only org_dept may open the 述职述廉 reports (仅组织部可启动述职述廉)"),
    "process.deploy": Rule(("designer",), "only designers may deploy processes (仅流程设计员可部署流程)"),
}


def allows(actor: Actor, action: str, tables: Mapping[str, Any] | None = None, key: str | None = None) -> bool:
    """Whether the caller's roles alone allow the action (a `$` entry: for `key`, or for any key when None)."""
    if "admin" in actor.roles:
        return True
    if not actor.roles:
        return False
    return any(_role_entry_allows(actor, entry, tables or {}, key) for entry in TABLE[action].who)


def _role_entry_allows(actor: Actor, entry: str, tables: Mapping[str, Any], key: str | None) -> bool:
    if entry == "*":
        return True
    if entry == APPROVER:
        return bool(actor.roles - NOT_APPROVERS)
    if entry.startswith("$"):
        table = tables.get(entry[1:], {})
        roles = table.get(key, []) if key is not None else [r for rs in table.values() for r in rs]
        return bool(actor.roles & set(roles))
    return entry.isidentifier() and entry in actor.roles


def require(actor: Actor, action: str, tables: Mapping[str, Any] | None = None, key: str | None = None) -> None:
    """Refuse (403) unless the caller's roles allow the action."""
    if not allows(actor, action, tables, key):
        raise Forbidden(TABLE[action].refusal.format(key=key, role="-"))


# Cases: who reads which, as SQL.

def reads_every_case(actor: Actor) -> bool:
    """Whether a role of the caller reads every case (no filter needed)."""
    return "admin" in actor.roles or bool(actor.roles & _plain_roles("case.read"))


def case_filter(actor: Actor, reader: ColumnElement[str] | None = None) -> ColumnElement[bool]:
    """The cases the caller may read, as a WHERE clause over `cases`; `reader` stands for the caller's username
    in a statement built once for every caller holding the same roles (a bound parameter)."""
    if reads_every_case(actor):
        return true()
    lane_roles = sorted(task_roles(actor))
    if not lane_roles:  # no role, or only roles that read no case: not even one a diagram named it assignee in
        return false()
    who = TABLE["case.read"].who
    clauses = []
    if "@lane" in who:
        lanes = select(ProcessLane.process_version_id).where(ProcessLane.role.in_(lane_roles))
        clauses.append(Case.process_version_id.in_(lanes))
    if "@participant" in who:
        username = actor.username if reader is None else reader
        clauses.append(Case.id.in_(select(CaseParticipant.case_id).where(CaseParticipant.username == username)))
    return or_(false(), *clauses)


def reads_every_case_of(session: Session, actor: Actor, process: str) -> bool:
    """Whether the caller reads every case of a process, whatever its participants: it reads every case, or a
    role of it owns a lane in every deployed version of the process."""
    if reads_every_case(actor):
        return True
    lane_roles = sorted(task_roles(actor))
    if not lane_roles:
        return False
    laned = select(ProcessLane.process_version_id).where(ProcessLane.role.in_(lane_roles))
    unread = select(ProcessVersion.id).where(ProcessVersion.process_key == process, ProcessVersion.id.not_in(laned))
    return session.scalar(unread.limit(1)) is None


def readable_case(session: Session, actor: Actor, case_id: int) -> Case:
    """The case, if the caller may read it; NotFound otherwise, as for an unknown id."""
    case = session.scalar(select(Case).where(Case.id == case_id, case_filter(actor)))
    if case is None:
        raise NotFound(f"case {case_id} not found (案件不存在)")
    return case


def check_case(session: Session, actor: Actor, case_id: int) -> None:
    """NotFound unless the case exists and the caller may read it (before a write locks it)."""
    if reads_every_case(actor):
        return
    if session.scalar(select(Case.id).where(Case.id == case_id, case_filter(actor))) is None:
        raise NotFound(f"case {case_id} not found (案件不存在)")


def readable_case_ids(session: Session, actor: Actor, case_ids: Iterable[int | None]) -> set[int]:
    """Those of the given cases the caller may read."""
    wanted = {case_id for case_id in case_ids if case_id is not None}
    if not wanted or reads_every_case(actor):  # ids come from links and history, so they exist
        return wanted
    return set(session.scalars(select(Case.id).where(Case.id.in_(wanted), case_filter(actor))))


# Tasks: readable with their case; acting on one follows the task's role and holder.

def task_roles(actor: Actor) -> frozenset[str]:
    """The caller's roles that a lane, and so a task, may be bound to: never one whose holders read no case, so a
    lane named after one (deploy refuses it; an older version may have it) gives them neither cases nor tasks."""
    return actor.roles - NOT_APPROVERS


def task_filter(actor: Actor) -> ColumnElement[bool]:
    """The tasks the caller may read (those of the cases it may read), as a WHERE clause over `tasks`."""
    if reads_every_case(actor):
        return true()
    return Task.case_id.in_(select(Case.id).where(case_filter(actor)))


def readable_task(session: Session, actor: Actor, task_id: str) -> Task:
    """The task, if the caller may read its case; NotFound otherwise."""
    task = session.scalar(select(Task).where(Task.id == task_id, task_filter(actor)))
    if task is None:
        raise NotFound(f"task {task_id} not found (任务不存在)")
    return task


def head_role_of(session: Session) -> HeadOf:
    """The head role of a role, as the role catalog says (asked only when a rule needs it)."""
    return lambda role: session.scalar(select(Role.head_role).where(Role.code == role))


def may_act_on_task(actor: Actor, action: str, role: str | None, assignee: str | None,
                    head_of: HeadOf | None = None) -> bool:
    """Whether the caller may claim, unclaim, complete, reassign, extend or return a task of that role and holder
    (`head_of` names a lane's head role; without it no head is assumed)."""
    if "admin" in actor.roles:
        return True
    has_role = (role or "admin") in task_roles(actor)
    relations = {"@task_role": lambda: has_role, "@assignee": lambda: assignee == actor.username,
                 "@task_role_unclaimed": lambda: has_role and assignee is None,
                 "@lane_head": lambda: bool(role and head_of and head_of(role) in actor.roles)}
    return any(relations[entry]() for entry in TABLE[action].who if entry in relations)


def task_action_filter(actor: Actor, action: str) -> ColumnElement[bool]:
    """The tasks the caller may claim, unclaim or complete, as a WHERE clause over `tasks` (for inboxes)."""
    if "admin" in actor.roles:
        return true()
    roles = sorted(task_roles(actor))
    relations = {"@task_role": Task.role.in_(roles), "@assignee": Task.assignee == actor.username,
                 "@task_role_unclaimed": and_(Task.role.in_(roles), Task.assignee.is_(None))}
    return or_(false(), *(relations[entry] for entry in TABLE[action].who if entry in relations))


def require_task_action(session: Session, actor: Actor, action: str, task: Task) -> None:
    """Refuse (403) an action on a task that the task's role and holder do not allow."""
    if may_act_on_task(actor, action, task.role, task.assignee, head_role_of(session)):
        return
    if task.assignee and (task.role or "admin") in task_roles(actor) and action in ("task.claim", "task.complete",
                                                                             "task.return"):
        raise Forbidden(f"the task is held by {task.assignee} (任务已由 {task.assignee} 认领)")
    raise Forbidden(TABLE[action].refusal.format(role=task.role))


# Cadres.

def _plain_roles(action: str) -> set[str]:
    return {entry for entry in TABLE[action].who if entry.isidentifier()}


def _case_bound_roles(action: str) -> set[str]:
    return {entry.removesuffix("@case") for entry in TABLE[action].who if entry.endswith("@case")}


def _holds_case_bound(actor: Actor, action: str) -> bool:
    bound = _case_bound_roles(action)
    return bool(actor.roles & bound) or (APPROVER in bound and bool(actor.roles - NOT_APPROVERS))


def reads_cadres_of_readable_cases(actor: Actor) -> bool:
    """Whether the caller may read the cadre of every case it may read (to link it)."""
    return reads_every_cadre(actor) or _holds_case_bound(actor, "cadre.read")


def reads_every_cadre(actor: Actor, action: str = "cadre.read") -> bool:
    """Whether the caller may read (or, with `cadre.pick`, choose) every cadre: `cadre_filter` is then no filter."""
    return "admin" in actor.roles or bool(actor.roles & _plain_roles(action))


def cadre_filter(actor: Actor, action: str = "cadre.read") -> ColumnElement[bool]:
    """The cadres the caller may read (or, with `cadre.pick`, choose for a case), as a WHERE clause over
    `cadres`."""
    if reads_every_cadre(actor, action):
        return true()
    if not actor.roles:
        return false()
    clauses: list[ColumnElement[bool]] = []
    if "$START_ROLES" in TABLE[action].who:  # the roles data; an install still on settings starts as before
        clauses.append(exists(select(ProcessStarter.role).where(ProcessStarter.role.in_(sorted(actor.roles)))))
    if _holds_case_bound(actor, action):
        clauses.append(Cadre.id.in_(select(Case.cadre_id).where(case_filter(actor))))
    return or_(false(), *clauses)


def readable_cadre(session: Session, actor: Actor, cadre_id: str) -> Cadre:
    """The cadre, if the caller may read it; NotFound otherwise, as for an unknown id."""
    cadre = session.scalar(select(Cadre).where(Cadre.id == cadre_id, cadre_filter(actor)))
    if cadre is None:
        raise NotFound(f"cadre {cadre_id} not found (干部不存在)")
    return cadre


# Participation and lanes: written where they arise.

KNOWN_PARTICIPANTS = "cadreflow.participants"  # (case id, username) pairs this transaction knows are stored


def note_participant(session: Session, case_id: int, username: str) -> None:
    """Record that a user took part in a case (claim, completion, assignment, delegation); idempotent."""
    known = session.info.setdefault(KNOWN_PARTICIPANTS, set())
    if username == "system" or (case_id, username) in known:
        return
    settle(session)  # the case, if new in this transaction, before the row that refers to it
    connection = session.connection()
    _ADD_PARTICIPANT[connection.dialect.name].run(connection, [{"username": username, "case_id": case_id}])
    known.add((case_id, username))


# Built once, and sent on the bare driver (service/db/direct.py): one of these runs on nearly every step a person
# takes.
_ADD_PARTICIPANT = {
    name: DirectStatement(insert_skipping_duplicates(name, CaseParticipant.__table__).values(
        username=bindparam("username"), case_id=bindparam("case_id")))
    for name in ("postgresql", "sqlite")}


def send_participation(connection: Connection, actor: Actor, task_id: str) -> Sent | None:
    """Send, unread, the statement noting the actor as a participant of the task's case (none for the system),
    for `locked_task` to put in the round trip that locks the case. It writes only where the actor may read the
    case, the rule the lock applies: a task the actor may not read gets no row, not even one later rolled back.
    An action refused afterwards rolls the row back with everything else."""
    if actor.username == "system":
        return None
    statement = _participation_through_task(connection.dialect.name, actor.roles)
    return statement.send(connection, [{"username": actor.username, "task_id": task_id}])


@lru_cache(maxsize=256)
def _participation_through_task(dialect_name: str, roles: frozenset[str]) -> DirectStatement:
    """The INSERT of a participant through a task, for callers holding these roles (built once per set)."""
    username = bindparam("username", type_=String)
    readable = exists().where(Case.id == Task.case_id, case_filter(Actor("", roles), reader=username))
    chosen = select(username, Task.case_id).where(Task.id == bindparam("task_id", type_=String), readable)
    inserting = insert_skipping_duplicates(dialect_name, CaseParticipant.__table__)
    return DirectStatement(inserting.from_select(["username", "case_id"], chosen))


def known_participant(session: Session, case_id: int, username: str) -> None:
    """Remember, for this transaction, that the user is already stored as a participant of the case."""
    session.info.setdefault(KNOWN_PARTICIPANTS, set()).add((case_id, username))


def store_lanes(session: Session, version_id: int, roles: Iterable[str]) -> None:
    """Record which roles own lanes of a newly deployed process version."""
    session.add_all(ProcessLane(process_version_id=version_id, role=role) for role in sorted(set(roles)))

