"""Out of office: while a user is away, tasks that would be assigned to them go to their substitute.

One absence per user (setting a new one replaces it). The substitution is applied where a task gets a
holder: a diagram's assignee when a step opens the task (readmodel.py), and a reassignment (taskwork.py);
one level only (a substitute's own absence is not followed further). Tasks the user already holds stay.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from service.db.models import Substitute, User, utcnow
from service.errors import Invalid

from . import policy
from .context import Actor, Services
from .forms import within_reach
from .queries import still_active
from .reminders import local_zone
from .views import iso


def set_substitute(services: Services, actor: Actor, username: Any, starts: Any, ends: Any) -> dict[str, Any]:
    """Declare the caller away from `starts` (default now) until `ends`, `username` standing in."""
    policy.require(actor, "absence.set")
    zone = local_zone(services)
    start = parse_moment(starts, "from", zone, end_of_day=False) if starts not in (None, "") else utcnow()
    end = parse_moment(ends, "until", zone, end_of_day=True)
    if end <= max(start, utcnow()):
        raise Invalid("the absence must end later than it starts, and in the future (结束时间须晚于开始时间且晚于现在)",
                      {"until": "须晚于开始时间与当前时间 (must be after from and now)"})
    if username == actor.username:
        raise Invalid("you cannot stand in for yourself (不能指定本人为代理人)",
                      {"username": "不能是本人 (not yourself)"})
    with services.db.unit_of_work() as session:
        substitute = active_user(session, username, "username")
        row = session.get(Substitute, actor.username) or Substitute(username=actor.username)
        row.substitute, row.starts_at, row.ends_at, row.created_at = substitute.username, start, end, utcnow()
        session.add(row)
        session.flush()
        return absence_view(row)


def end_absence(services: Services, actor: Actor) -> None:
    """The caller is back: tasks are assigned to them again."""
    policy.require(actor, "absence.set")
    with services.db.unit_of_work() as session:
        session.execute(delete(Substitute).where(Substitute.username == actor.username))


def my_absence(services: Services, actor: Actor) -> dict[str, Any] | None:
    """The caller's declared absence, if one has not ended yet."""
    policy.require(actor, "absence.set")
    with services.db.unit_of_work(write=False) as session:
        row = session.get(Substitute, actor.username)
        return absence_view(row) if row is not None and row.ends_at > utcnow() else None


def active_user(session: Session, username: Any, field: str) -> User:
    """An active user by name, its row share-locked until the commit (queries.still_active: a deactivation racing
    the task or absence it is given waits, or is waited for), or 422 on `field`."""
    user = session.scalar(still_active(select(User).where(User.username == username, User.active.is_(True)))) \
        if isinstance(username, str) else None
    if user is None:
        raise Invalid("no such active user (用户不存在或已停用)", {field: "用户不存在或已停用 (no such active user)"})
    return user


def parse_moment(value: Any, field: str, zone: ZoneInfo, end_of_day: bool) -> datetime:
    """An ISO 8601 date or date-time as UTC: a date means the start (or, `end_of_day`, the end) of that day
    in the county's time zone; a date-time without an offset is read in that zone too."""
    if isinstance(value, str):
        try:
            if len(value.strip()) == 10:
                day = date.fromisoformat(value.strip())
                within_reach(day, field)
                moment = datetime.combine(day + timedelta(days=1), time.min, zone) - timedelta(microseconds=1) \
                    if end_of_day else datetime.combine(day, time.min, zone)
                return moment.astimezone(UTC)
            moment = datetime.fromisoformat(value.strip())
            within_reach(moment.date(), field)
            return (moment if moment.tzinfo else moment.replace(tzinfo=zone)).astimezone(UTC)
        except ValueError:
            pass
    raise Invalid(f"{field} must be an ISO 8601 date or date-time ({field} 须为日期或时间，如 2026-12-31)",
                  {field: "须为 ISO 8601 日期或时间 (an ISO 8601 date or date-time)"})


def absence_view(row: Substitute) -> dict[str, Any]:
    return {"username": row.username, "substitute": row.substitute, "from": iso(row.starts_at),
            "until": iso(row.ends_at)}
