"""Questions many use cases ask of the database, answered in one place each."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, exists, func, or_, select
from sqlalchemy.orm import Session, aliased

from service.db.models import Case, DisclosureRating, ProcessVersion, Substitute, Task, User, UserRole
from service.errors import BadRequest

S = TypeVar("S", bound=Select[*tuple[Any, ...]])  # a select of any columns


def count(session: Session, query: Select[Any]) -> int:
    """How many rows `query` selects."""
    return session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0


def page_of(session: Session, query: Select[Any], page: int, per_page: int, *, clamp: bool = True,
            rows: bool = False) -> tuple[list[Any], dict[str, int]]:
    """One page of `query`'s rows (it sets their order) and where that page stands: total, page, pages, per_page.
    A page past the last is the last one (`clamp`), or else empty as asked, as the lists of the API answer it;
    either way a page below 1 is the first. `rows`: whole rows of a query of several columns, not the first one's
    values."""
    total = count(session, query)
    pages = max(1, -(-total // per_page))
    page = min(max(page, 1), pages) if clamp else max(page, 1)
    window = query.offset((page - 1) * per_page).limit(per_page)
    found = session.execute(window).all() if rows else session.scalars(window).all()
    return list(found), {"total": total, "page": page, "pages": pages, "per_page": per_page}


def newest_version(session: Session, process_key: str) -> ProcessVersion | None:
    """The newest deployed version of a process, if it has any."""
    return session.scalar(select(ProcessVersion).where(ProcessVersion.process_key == process_key)
                          .order_by(ProcessVersion.version.desc()).limit(1))


def newest_versions() -> Select[ProcessVersion]:
    """A query for the newest version of every process, by key."""
    newest = select(ProcessVersion.process_key, func.max(ProcessVersion.version).label("v")).group_by(
        ProcessVersion.process_key).subquery()
    return select(ProcessVersion).join(newest, (ProcessVersion.process_key == newest.c.process_key)
                                       & (ProcessVersion.version == newest.c.v)).order_by(ProcessVersion.process_key)


UNFINISHED = ("open", "incident")  # a case in incident stopped at a failed automatic step: it is not over


def unfinished() -> ColumnElement[bool]:
    """A case is unfinished: open, or held in incident until a person retries it (neither completed nor
    cancelled). Every check meaning "an open case of this cadre" asks this, so an incident hides nothing."""
    return Case.status.in_(UNFINISHED)


def overdue(now: datetime) -> ColumnElement[bool]:
    """An open task is overdue: its deadline passed, or an escalation marked it (the one definition)."""
    return (Task.status == "open") & or_(Task.overdue.is_(True), Task.due_at < now)


_HELD = aliased(Case)  # a name of its own: a query it filters may join the tasks' cases as well


def of_held_case() -> ColumnElement[bool]:
    """A task's case is held as an incident: nobody may claim or complete the task until it is retried, so the
    lists of work to do (the inbox, the digest) leave it out."""
    return exists().where(_HELD.id == Task.case_id, _HELD.status == "incident")


def is_overdue(task: Task, now: datetime) -> bool:
    """The same rule for a task already loaded."""
    return task.status == "open" and (task.overdue or (task.due_at is not None and task.due_at < now))


FIELDWORK = "audit_fieldwork"  # the departure audit's task that records its findings (docs/processes.md §3)


def findings_made_at() -> ColumnElement[datetime]:
    """When a departure audit's findings were made: its fieldwork's last completion (the case's last step when the
    diagram has none), not the case's last step, which the departure's approval may take long after."""
    fieldwork = (select(func.max(Task.completed_at)).where(Task.case_id == Case.id, Task.element_id == FIELDWORK,
                                                          Task.status == "completed")
                 .correlate(Case).scalar_subquery())
    return func.coalesce(fieldwork, Case.updated_at)


RATINGS = ("satisfied", "basically_satisfied", "dissatisfied")  # 满意 / 基本满意 / 不满意
MAX_TALLY_COMMENTS = 200  # the comments a 述职述廉 case keeps in its data (the staff page shows them all)


def disclosure_tally(session: Session, disclosure_id: int) -> dict[str, int]:
    """How many of the public rated a disclosure each way, and in all."""
    counts = dict(session.execute(select(DisclosureRating.rating, func.count()).where(
        DisclosureRating.disclosure_id == disclosure_id).group_by(DisclosureRating.rating)).all())
    tally = {rating: int(counts.get(rating, 0)) for rating in RATINGS}
    return {**tally, "total": sum(tally.values())}


def disclosure_comments(session: Session, disclosure_id: int, limit: int | None = None) -> list[dict[str, Any]]:
    """The public's comments on a disclosure, oldest first."""
    query = select(DisclosureRating.rating, DisclosureRating.comment).where(
        DisclosureRating.disclosure_id == disclosure_id, DisclosureRating.comment.is_not(None),
        DisclosureRating.comment != "").order_by(DisclosureRating.id).limit(limit)
    return [{"rating": rating, "comment": comment} for rating, comment in session.execute(query)]


def substitutes_now(session: Session, usernames: Iterable[str], now: datetime) -> dict[str, str]:
    """For those of the users who are away now, who stands in for them, while that substitute is active (one
    query)."""
    names = sorted(set(usernames))
    if not names:
        return {}
    rows = session.execute(still_active(select(Substitute.username, Substitute.substitute).join(
        User, User.username == Substitute.substitute).where(
        Substitute.username.in_(names), Substitute.starts_at <= now, Substitute.ends_at > now,
        User.active.is_(True))))
    return {name: substitute for name, substitute in rows}


def still_active(query: S) -> S:
    """`query`, which reads users it requires active to give them a task, with those rows share-locked (FOR SHARE
    OF users) until the commit. On PostgreSQL a deactivation in progress holds the row: the read waits for it and
    then sees the user inactive; a deactivation that starts later waits for this commit and then sees the task held,
    and hands it back. SQLAlchemy's SQLite dialect writes no locking clause: its writers queue at BEGIN IMMEDIATE."""
    return query.with_for_update(read=True, of=User)


Holding = tuple[str, str | None]  # a task's named assignee and its lane's role


def holders_now(session: Session, wanted: Iterable[Holding], now: datetime,
                named_need_role: bool = False) -> dict[Holding, str | None]:
    """Who holds a task opened for each (assignee, role) now: the assignee, or while they are away their active
    substitute, but only a substitute holding the task's role (or admin). A substitute may not read a case or
    act in a lane their own roles do not give them: without the role, the task waits for its assignee. An
    assignee no longer active (and not stood in for) holds nothing: the task goes to its role (None); nor, with
    `named_need_role`, one no longer holding the task's role (a returned step's earlier holder, moved off the
    role since: a holder may complete its task whatever its roles)."""
    wanted = set(wanted)
    names = {username for username, _ in wanted}
    away = substitutes_now(session, names, now)
    active = set(session.scalars(still_active(select(User.username).where(User.username.in_(sorted(names)),
                                                                          User.active)))) if names else set()
    roles = _roles_of(session, {*away.values(), *(names if named_need_role else ())})
    holders: dict[Holding, str | None] = {}
    for username, role in wanted:
        substitute = away.get(username)
        standing_in = substitute if substitute and _holds(roles, substitute, role) else None
        named = username in active and (not named_need_role or _holds(roles, username, role))
        holders[(username, role)] = standing_in or (username if named else None)
    return holders


def _roles_of(session: Session, usernames: set[str]) -> dict[str, set[str]]:
    roles: dict[str, set[str]] = {}
    if usernames:
        rows = session.execute(select(User.username, UserRole.role).join(UserRole, UserRole.user_id == User.id)
                               .where(User.username.in_(sorted(usernames))))
        for name, code in rows:
            roles.setdefault(name, set()).add(code)
    return roles


def _holds(roles: dict[str, set[str]], username: str, role: str | None) -> bool:
    """Whether the user holds the task's role, or admin (which may act on any task)."""
    held = roles.get(username, set())
    return "admin" in held or role in held


def check_period(since: date | None, until: date | None) -> None:
    """A `from`..`to` filter must not run backwards (400 on `from`: a malformed query)."""
    if since and until and since > until:
        raise BadRequest("from must not be after to (起始日期不能晚于截止日期)", {"from": "起始日期不能晚于截止日期"})
