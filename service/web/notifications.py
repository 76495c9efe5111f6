"""Notification pages: the bell in the top bar, my notifications, and my e-mail settings."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required

from service.usecases import mailing, notifications

from .access import actor, services
from .views import flag, int_arg, run_and_flash

# The labels of the account page's mail form (_mail_settings.html), for the refusals flashed above it.
MAIL_LABELS = {"email": _l("邮箱"), "mail_digest": _l("发送方式")}

bp = Blueprint("notification_pages", __name__)
PER_PAGE = 20


@bp.get("/notifications")
@login_required
def index() -> Any:
    unread = flag("unread")
    result = notifications.list_notifications(services(), actor(), unread, int_arg("page", 1), PER_PAGE)
    return render_template("notifications.html", result=result, unread=unread,
                           query={"unread": "1"} if unread else {})


@bp.post("/notifications/<int(max=2147483647):notification_id>/open")
@login_required
def open_one(notification_id: int) -> Any:
    """Mark a notification read and go to its task (the task page decides what may be seen)."""
    note = notifications.mark_read(services(), actor(), notification_id)
    if note["openable"]:
        return redirect(url_for("inbox.show", task_id=note["task_id"]))
    return redirect(url_for("notification_pages.index"))


@bp.post("/notifications/<int(max=2147483647):notification_id>/read")
@login_required
def read(notification_id: int) -> Any:
    notifications.mark_read(services(), actor(), notification_id)  # another user's: 404, like an unknown id
    flash(_("已标为已读。"), "success")
    return redirect(_back())


@bp.post("/notifications/read-all")
@login_required
def read_all() -> Any:
    run_and_flash(lambda: notifications.mark_all_read(services(), actor()), _("全部通知已标为已读。"))
    return redirect(_back())


@bp.post("/account/mail")
@login_required
def mail_settings() -> Any:
    """Set my e-mail address and whether I get one summary a day instead of a mail per notification."""
    run_and_flash(lambda: mailing.set_my_mail_settings(services(), actor(), request.form.get("email", "").strip(),
                                                       request.form.get("mail_digest") == "1"),
                  _("邮件提醒设置已保存。"), MAIL_LABELS)
    return redirect(url_for("web_auth.password") + "#mail")


def _back() -> str:
    return url_for("notification_pages.index", unread="1") if request.form.get("unread") == "1" else url_for(
        "notification_pages.index")


@bp.app_context_processor
def _bell() -> dict[str, Any]:
    """The unread count for the bell of every page, and my mail settings for the account page (read lazily)."""
    if not current_user.is_authenticated:
        return {}
    return {"unread_notifications": notifications.unread_count(services(), actor()),
            "my_mail_settings": lambda: mailing.my_mail_settings(services(), actor())}
