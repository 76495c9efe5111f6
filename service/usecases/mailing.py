"""E-mail of notifications: users' addresses, the mail outbox, and its delivery by the worker.

A notification for a user who takes one mail per event is marked `pending`; the worker turns it
into a mail in `mail_outbox` (the digest adds its own), then sends each under a short lease, outside
any transaction, retrying with a growing delay while the server is down. A request never waits for
a mail server, and a mail is never written by a transaction that could still roll back.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from service.db.models import MailItem, Notification, User, utcnow
from service.db.uow import rows_changed
from service.errors import Invalid, NotFound
from service.mail import Mail, Mailer, MailError

from . import account_log
from .context import Actor, Services

log = logging.getLogger(__name__)
MAX_EMAIL = 254
# One address, no display name, nothing a mail header could be split on.
_EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+")
FIRST_RETRY = timedelta(seconds=30)
MAX_RETRY = timedelta(hours=1)
LEASE = timedelta(minutes=5)  # how long one worker holds a mail it is sending before another may try it
BATCH = 50
LINE = "—" * 24


# Addresses and the choice of a daily digest.

def check_email(email: Any) -> str | None:
    """A plain address, or None for "" (no mail); anything else is a 422."""
    if email is None or email == "":
        return None
    if not isinstance(email, str) or len(email) > MAX_EMAIL or not _EMAIL.fullmatch(email):
        raise Invalid("not an e-mail address (邮箱地址格式不正确)",
                      {"email": "邮箱地址格式不正确 (not an e-mail address, e.g. name@example.gov.cn)"})
    return email


def check_digest(mail_digest: Any) -> bool:
    if not isinstance(mail_digest, bool):
        raise Invalid("mail_digest must be true or false (mail_digest 须为 true 或 false)",
                      {"mail_digest": "须为布尔值 (boolean)"})
    return mail_digest


def check_mail_settings(email: Any = None, mail_digest: Any = None) -> None:
    """Refuse (422) a bad address or digest choice before anything is written; None means unchanged."""
    check_email(email)
    if mail_digest is not None:
        check_digest(mail_digest)


def apply_mail_settings(user: User, email: Any = None, mail_digest: Any = None) -> None:
    """Set a user's address ("" removes it) and digest choice; None leaves either as it is."""
    if email is not None:
        user.email = check_email(email)
    if mail_digest is not None:
        user.mail_digest = check_digest(mail_digest)


def mail_settings_view(user: User) -> dict[str, Any]:
    return {"email": user.email or "", "mail_digest": bool(user.mail_digest)}


def my_mail_settings(services: Services, actor: Actor) -> dict[str, Any]:
    """The actor's own address and digest choice."""
    with services.db.unit_of_work(write=False) as session:
        return mail_settings_view(_me(session, actor))


def set_my_mail_settings(services: Services, actor: Actor, email: Any = None,
                         mail_digest: Any = None) -> dict[str, Any]:
    """Change one's own address and digest choice (any logged-in user), in the account log as an admin's change
    is: where a user's notifications go is part of its account."""
    check_mail_settings(email, mail_digest)
    with services.db.unit_of_work() as session:
        user = _me(session, actor)
        before = mail_settings_view(user)
        apply_mail_settings(user, email, mail_digest)
        after = mail_settings_view(user)
        if after != before:
            account_log.record(session, actor.username, "user.mail", actor.username,
                               account_log.changes(before, after))
        return after


def _me(session: Session, actor: Actor) -> User:
    user = session.scalar(select(User).where(User.username == actor.username))
    if user is None:
        raise NotFound(f"user {actor.username} not found (用户不存在)")
    return user


# Turning notifications into mails (the worker, after the notifications committed).

def queue_event_mails(services: Services, limit: int = 200) -> int:
    """Write the mails of pending notifications into the outbox (or skip them while mail is off)."""
    with services.db.unit_of_work(write=False) as session:  # most polls find nothing: no write lock for that
        if session.scalar(select(Notification.id).where(Notification.mail_status == "pending").limit(1)) is None:
            return 0
    with services.db.unit_of_work() as session:
        rows = session.execute(select(Notification, User).join(User, User.id == Notification.user_id).where(
            Notification.mail_status == "pending").order_by(Notification.id).limit(limit)
            .with_for_update(skip_locked=True, of=Notification)).all()
        for notification, user in rows:
            wanted = services.mailer is not None and user.active and user.email and not user.mail_digest
            notification.mail_status = "queued" if wanted else "skipped"
            if wanted:
                session.add(notification_mail(services, notification, user))
        return len(rows)


def notification_mail(services: Services, notification: Notification, user: User) -> MailItem:
    """One notification as a mail: a Chinese subject and body with English below."""
    url = link(services, f"/tasks/{notification.task_id}" if notification.task_id else "/notifications")
    # One line: the texts carry names a designer wrote, and a line break in a header makes the mail unsendable.
    subject = " ".join(f"【干部监督】{notification.text} | CadreFlow: {notification.text_en}".split())
    body = "\n".join([
        f"{user.username}，您好：", "", f"{notification.text}。", f"查看或办理：{url}", "",
        "此邮件由干部监督系统自动发送，请勿回复。如需改为每日汇总或不再接收邮件，请在系统的“账户”页面设置。", "", LINE,
        f"Hello {user.username},", "", f"{notification.text_en}.", f"Open it: {url}", "",
        "This mail was sent automatically by CadreFlow; please do not reply. To get one summary a day instead, "
        "or no mail, change it on your account page.", ""])
    return MailItem(user_id=user.id, kind="notification", subject=subject[:300], body=body)


def link(services: Services, path: str) -> str:
    """An address people can open: BASE_URL and the path (the path alone when BASE_URL is unset)."""
    return str(services.settings.get("BASE_URL") or "").rstrip("/") + path


# Delivery (the worker): each mail under a lease, sent outside any transaction.

def deliver_due(services: Services, now: datetime | None = None) -> bool:
    """Send the mails that are due; False when the server failed (the caller waits before trying again)."""
    mailer = services.mailer
    if mailer is None:
        return True  # mail is off: what is queued waits until it is on again
    now = now or utcnow()
    with services.db.unit_of_work(write=False) as session:
        due = list(session.scalars(select(MailItem.id).where(MailItem.status == "pending",
                                                              MailItem.next_attempt_at <= now)
                                   .order_by(MailItem.next_attempt_at, MailItem.id).limit(BATCH)))
    # all() stops at the first failure: the server is down or refusing, and the rest keep their turn.
    return all(_deliver_one(services, mailer, item_id, now) for item_id in due)


def _deliver_one(services: Services, mailer: Mailer, item_id: int, now: datetime) -> bool:
    """Send one mail if no other worker holds it; False only when the server failed for now."""
    mail = _lease(services, item_id, now)
    if mail is None:
        return True
    try:
        mailer.send(mail)
    except MailError as exc:
        log.warning("mail %s not sent: %s", item_id, exc)
        _settle(services, item_id, exc)
        return exc.permanent
    _settle(services, item_id, None)
    return True


def _lease(services: Services, item_id: int, now: datetime) -> Mail | None:
    """Take a due mail for LEASE and count the attempt; None when another worker took it or it has no one to go to."""
    with services.db.unit_of_work() as session:
        leased = rows_changed(session, update(MailItem).where(
            MailItem.id == item_id, MailItem.status == "pending", MailItem.next_attempt_at <= now)
            .values(next_attempt_at=now + LEASE, attempts=MailItem.attempts + 1))
        if leased != 1:
            return None
        item = session.get_one(MailItem, item_id)
        user = session.get_one(User, item.user_id)
        if not (user.active and user.email):
            item.status, item.last_error = "dropped", "the user has no address or was deactivated (用户无邮箱或已停用)"
            return None
        return Mail(to=user.email, subject=item.subject, body=item.body)


def _settle(services: Services, item_id: int, error: MailError | None) -> None:
    """Sent; or given up (a permanent refusal, or MAIL_MAX_ATTEMPTS tries); or tried again later. A refusal of the
    service itself (its login or sender) is no try of the mail: however long a setting takes to fix, no mail is
    given up for it (the worker's pause after a failure paces those tries)."""
    with services.db.unit_of_work() as session:
        item = session.get_one(MailItem, item_id)
        if error is None:
            item.status, item.sent_at, item.last_error = "sent", utcnow(), None
            return
        item.last_error = str(error)[:2000]
        if not error.of_mail:
            item.attempts, item.next_attempt_at = item.attempts - 1, utcnow() + FIRST_RETRY
        elif error.permanent or item.attempts >= int(services.settings.get("MAIL_MAX_ATTEMPTS") or 12):
            item.status = "failed"
            log.error("mail %s given up after %s attempt(s): %s", item_id, item.attempts, error)
        else:
            item.next_attempt_at = utcnow() + retry_delay(item.attempts)


def retry_delay(attempts: int) -> timedelta:
    """30 s after the first failure, doubling, at most an hour."""
    delay: timedelta = FIRST_RETRY * 2 ** max(attempts - 1, 0)
    return min(delay, MAX_RETRY)


# What an operator sees of the outbox (`cadreflow mail-outbox`): a mail given up is otherwise only a log line.

FAILED_SHOWN = 50


def outbox_report(services: Services) -> dict[str, Any]:
    """How many mails each status holds, when the oldest pending one was queued, and the newest failed ones (to
    whom, when, after how many attempts, why)."""
    with services.db.unit_of_work(write=False) as session:
        counts = dict(session.execute(select(MailItem.status, func.count()).group_by(MailItem.status)).all())
        oldest = session.scalar(select(func.min(MailItem.created_at)).where(MailItem.status == "pending"))
        failed = session.execute(select(MailItem, User.username).join(User, User.id == MailItem.user_id)
                                 .where(MailItem.status == "failed").order_by(MailItem.id.desc())
                                 .limit(FAILED_SHOWN)).all()
        return {"counts": {status: counts.get(status, 0) for status in STATUSES}, "oldest_pending": oldest,
                "failed": [{"id": item.id, "username": username, "kind": item.kind, "created_at": item.created_at,
                            "attempts": item.attempts, "last_error": item.last_error} for item, username in failed]}


STATUSES = ("pending", "sent", "failed", "dropped")


def retry_failed(services: Services, now: datetime | None = None) -> int:
    """Queue every failed mail again, due now with its attempts counted from 0 (the server or the address was
    fixed); returns how many."""
    with services.db.unit_of_work() as session:
        return rows_changed(session, update(MailItem).where(MailItem.status == "failed").values(
            status="pending", attempts=0, next_attempt_at=now or utcnow()))
