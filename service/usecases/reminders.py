"""The worker's part in notifications: tasks falling due or overdue, the daily digest, and mail.

The due scan runs in one worker at a time: it holds the `task_reminders` row of `scheduled_runs`
(FOR UPDATE SKIP LOCKED on PostgreSQL; SQLite serialises writers), and the table `task_reminders`
remembers each (task, kind) already notified, so no task is reminded twice of the same thing
however many workers run. The digest is claimed once a day like the rotation scan.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, delete, exists, not_, select, update
from sqlalchemy.orm import Session

from service.db.models import MailItem, ProcessVersion, ScheduledRun, Task, TaskReminder, User, UserRole, utcnow
from service.db.uow import rows_changed
from service.errors import WrittenMeanwhile

from . import mailing
from .context import Services, actor_of
from .notifications import Recipient, due_soon_texts, holders, notify, overdue_texts, unreached_texts
from .policy import task_action_filter
from .queries import count, is_overdue, of_held_case, overdue

SCAN, DIGEST = "task_reminders", "mail_digest"
BATCH = 500  # tasks per kind per scan: a first scan over years of overdue tasks stays a short transaction
DIGEST_ITEMS = 30


class Reminders:
    """What the worker does for notifications at each poll (kept between polls: when to scan, mail pauses)."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self._next_scan: datetime | None = None
        self._mail_paused_until: datetime | None = None

    def tick(self, now: datetime | None = None) -> None:
        """Scan for due tasks and the digest every NOTIFY_SCAN_SECONDS; queue and send mail every poll."""
        now = now or utcnow()
        if self._next_scan is None or now >= self._next_scan:
            self._next_scan = now + timedelta(seconds=float(self.services.settings.get("NOTIFY_SCAN_SECONDS") or 60))
            scan_due_tasks(self.services, now)
            queue_digests(self.services, now)
        mailing.queue_event_mails(self.services)
        if self._mail_paused_until is None or now >= self._mail_paused_until:
            # A server that is down would otherwise hold every poll (and the timers after it) for its timeout.
            delivered = mailing.deliver_due(self.services, max(now, utcnow()))  # what was just queued is due
            self._mail_paused_until = None if delivered else now + mailing.FIRST_RETRY


# Due within a day, and overdue.

def scan_due_tasks(services: Services, now: datetime | None = None) -> int | None:
    """Notify the tasks newly overdue or due within NOTIFY_DUE_SOON_HOURS; None when another worker is scanning."""
    now = now or utcnow()
    ensure_marker(services, SCAN)
    with services.db.unit_of_work() as session:
        held = session.scalar(select(ScheduledRun).where(ScheduledRun.name == SCAN).with_for_update(skip_locked=True))
        if held is None:
            return None
        zone, window = local_zone(services), due_soon_window(services)
        sent = _remind(session, "overdue", overdue(now), now, zone)
        if window is None:  # NOTIFY_DUE_SOON_HOURS = 0: no "due soon" notice at all
            return sent
        return sent + _remind(session, "due_soon", (Task.due_at <= now + window) & not_(overdue(now)), now, zone)


def due_soon_window(services: Services) -> timedelta | None:
    """How long before its deadline a task is "due soon" (NOTIFY_DUE_SOON_HOURS); None for 0, which means no
    due-soon notice (config.ZERO_ALLOWED), not the default."""
    hours = services.settings.get("NOTIFY_DUE_SOON_HOURS")
    window = timedelta(hours=24 if hours is None else float(hours))
    return window if window > timedelta(0) else None


def forget(session: Session, task_ids: list[str]) -> None:
    """Send a task's due-soon and overdue notices anew: its deadline moved (an extension), or it opened again
    under its id with a new one (a return)."""
    if task_ids:
        session.execute(delete(TaskReminder).where(TaskReminder.task_id.in_(task_ids)))


def _remind(session: Session, kind: str, condition: ColumnElement[bool], now: datetime, zone: ZoneInfo) -> int:
    """Remind the tasks someone may act on now; tell the admins once of those nobody may (`_alert_unreached`).
    Those of a case held as an incident wait, unrecorded, for its retry: nobody may act on them meanwhile, and the
    first scan after the retry sends what fell due."""
    reminded = exists().where(TaskReminder.task_id == Task.id, TaskReminder.kind == kind)
    condition = condition & ~of_held_case()
    _alert_unreached(session, kind, condition & ~reminded, now, zone)
    tasks = list(session.scalars(select(Task).where(Task.status == "open", condition, ~reminded, _reachable())
                                 .order_by(Task.due_at, Task.id).limit(BATCH)))
    if not tasks:
        return 0
    names, people = process_names(session, tasks), holders(session, tasks)
    texts = overdue_texts if kind == "overdue" else due_soon_texts
    for task in tasks:
        notify(session, people[task.id], kind, task, texts(task, names[task.process_version_id],
                                                           local_text(task.due_at, zone)))
        session.add(TaskReminder(task_id=task.id, kind=kind, at=now))
    if kind == "overdue":  # an overdue task is past "due soon": never tell that afterwards
        ids = [task.id for task in tasks]
        have = set(session.scalars(select(TaskReminder.task_id).where(TaskReminder.kind == "due_soon",
                                                                      TaskReminder.task_id.in_(ids))))
        session.add_all(TaskReminder(task_id=i, kind="due_soon", at=now) for i in ids if i not in have)
    return len(tasks)


def _reachable() -> ColumnElement[bool]:
    """Someone may act on the task now, as `notifications.holders` finds them: its active assignee, or an active
    holder of its role."""
    assignee = exists().where(User.username == Task.assignee, User.active.is_(True))
    role = exists().where(UserRole.role == Task.role, UserRole.user_id == User.id, User.active.is_(True))
    return assignee | role


def _alert_unreached(session: Session, kind: str, condition: ColumnElement[bool], now: datetime,
                     zone: ZoneInfo) -> None:
    """Tell the active admins, once per task and kind, of a reminder that reached nobody (nobody active holds the
    task's role, nor is it held). The reminder itself is not recorded as sent: it goes out at the first scan after
    someone holds the role, which recording it would have prevented for ever."""
    marker = f"unreached_{kind}"
    alerted = exists().where(TaskReminder.task_id == Task.id, TaskReminder.kind == marker)
    tasks = list(session.scalars(select(Task).where(Task.status == "open", condition, ~_reachable(), ~alerted)
                                 .order_by(Task.due_at, Task.id).limit(BATCH)))
    if not tasks:
        return
    admins = [Recipient(user_id, bool(email) and not digest) for user_id, email, digest in session.execute(
        select(User.id, User.email, User.mail_digest).join(UserRole, UserRole.user_id == User.id)
        .where(UserRole.role == "admin", User.active.is_(True)).order_by(User.id))]
    names = process_names(session, tasks)
    for task in tasks:
        notify(session, admins, "unreached", task, unreached_texts(task, names[task.process_version_id], kind,
                                                                    local_text(task.due_at, zone)))
        session.add(TaskReminder(task_id=task.id, kind=marker, at=now))


def process_names(session: Session, tasks: list[Task]) -> dict[int, str]:
    """The (Chinese) name of each task's process version."""
    ids = {task.process_version_id for task in tasks}
    return dict(session.execute(select(ProcessVersion.id, ProcessVersion.name).where(ProcessVersion.id.in_(ids))).all())


def ensure_marker(services: Services, name: str) -> None:
    """Create the `scheduled_runs` row a job is claimed with, once (two workers may race to create it)."""
    try:
        with services.db.unit_of_work() as session:
            if session.get(ScheduledRun, name) is None:
                session.add(ScheduledRun(name=name, last_run_on=date.min))
    except WrittenMeanwhile:
        pass  # another worker created it at the same moment


def local_zone(services: Services) -> ZoneInfo:
    return services.zone


def local_date(services: Services, moment: datetime | None) -> str | None:
    """The day a moment falls on in the county (TIMEZONE), ISO; 17:00 UTC is already tomorrow in Shanghai."""
    return moment.astimezone(local_zone(services)).date().isoformat() if moment is not None else None


def local_text(moment: datetime | None, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M") if moment is not None else ""


# The daily digest.

def queue_digests(services: Services, now: datetime | None = None) -> int | None:
    """Once a day from MAIL_DIGEST_HOUR on: one mail per user who chose the digest and has open tasks.

    None when mail is off, it is too early, or another worker did it today.
    """
    now = now or utcnow()
    zone = local_zone(services)
    local = now.astimezone(zone)
    if services.mailer is None or local.hour < int(services.settings.get("MAIL_DIGEST_HOUR") or 0):
        return None
    ensure_marker(services, DIGEST)
    with services.db.unit_of_work() as session:  # the claim and the mails commit together, or neither
        claimed = rows_changed(session, update(ScheduledRun).where(
            ScheduledRun.name == DIGEST, ScheduledRun.last_run_on < local.date()).values(last_run_on=local.date()))
        if claimed != 1:
            return None
        readers = session.scalars(select(User).where(User.active.is_(True), User.email.is_not(None),
                                                     User.mail_digest.is_(True)).order_by(User.id))
        mails = [mail for user in readers if (mail := _digest(services, session, user, now, zone)) is not None]
        session.add_all(mails)
        return len(mails)


def _digest(services: Services, session: Session, user: User, now: datetime, zone: ZoneInfo) -> MailItem | None:
    """One user's digest: how many tasks are open, overdue and due soon, and the most urgent of them."""
    actor = actor_of(user)
    mine = select(Task).where(Task.status == "open", task_action_filter(actor, "task.complete"), ~of_held_case())
    total = count(session, mine)
    if not total:
        return None
    window = due_soon_window(services)
    soon = count(session, mine.where(Task.due_at <= now + window, not_(overdue(now)))) if window else 0
    counts = {"total": total, "overdue": count(session, mine.where(overdue(now))), "soon": soon}
    tasks = list(session.scalars(mine.order_by(Task.due_at.asc().nulls_last(), Task.created_at, Task.id)
                                 .limit(DIGEST_ITEMS)))
    names = process_names(session, tasks)
    items = [_digest_item(services, t, names[t.process_version_id], now, zone) for t in tasks]
    return MailItem(user_id=user.id, kind="digest", subject=_digest_subject(counts),
                    body=_digest_body(services, user.username, counts, items))


def _digest_item(services: Services, task: Task, process: str, now: datetime, zone: ZoneInfo) -> tuple[str, str]:
    due = local_text(task.due_at, zone)
    late = is_overdue(task, now)
    zh = f"· {task.name}（{process}，案件 #{task.case_id}）" + (f"　期限 {due}" if due else "")
    en = f"· {task.name} ({task.process_key}, case #{task.case_id})" + (f", due {due}" if due else "")
    if late:
        zh, en = zh + "【已逾期】", en + " [OVERDUE]"
    url = mailing.link(services, f"/tasks/{task.id}")
    return f"{zh}\n  {url}", f"{en}\n  {url}"


def _digest_subject(counts: dict[str, int]) -> str:
    return (f"【干部监督】每日待办汇总：{counts['total']} 项，逾期 {counts['overdue']} 项 | "
            f"CadreFlow daily summary: {counts['total']} open, {counts['overdue']} overdue")


def _within(window: timedelta | None) -> tuple[str, str]:
    """NOTIFY_DUE_SOON_HOURS in words ("一天", "a day"; "3 天", "3 days"; "36 小时", "36 hours"); "" when none."""
    if window is None:
        return "", ""
    hours = window.total_seconds() / 3600
    if hours == 24:
        return "一天", "a day"
    if hours % 24 == 0:
        return f" {hours / 24:g} 天", f"{hours / 24:g} days"
    return f" {hours:g} 小时", f"{hours:g} hours"


def _digest_body(services: Services, username: str, counts: dict[str, int], items: list[tuple[str, str]]) -> str:
    more = counts["total"] - len(items)
    inbox = mailing.link(services, "/inbox")
    within_zh, within_en = _within(due_soon_window(services))
    soon_zh, soon_en = (f"，{counts['soon']} 项将在{within_zh}内到期", f", {counts['soon']} due within {within_en}") \
        if within_zh else ("", "")
    zh = [f"{username}，您好：", "", f"您当前有 {counts['total']} 项待办任务，其中 {counts['overdue']} 项已逾期"
          f"{soon_zh}：", "", *(zh for zh, _ in items)]
    en = [f"Hello {username},", "", f"You have {counts['total']} open task(s): {counts['overdue']} overdue"
          f"{soon_en}.", "", *(en for _, en in items)]
    if more > 0:
        zh.append(f"……另有 {more} 项未列出。")
        en.append(f"... and {more} more.")
    zh += ["", f"全部待办：{inbox}", "", "这是您选择的每日汇总邮件，可在系统的“账户”页面更改。", ""]
    en += ["", f"All your tasks: {inbox}", "", "You chose this daily summary; change it on your account page.", ""]
    return "\n".join([*zh, mailing.LINE, *en])
