"""Rules whose small changes a mutation run once let through: the longer promotion ban wins, an escalation
is kept on the task's row, and "due soon" means within three days."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from sqlalchemy import select

from service.db.models import Task
from service.usecases import inbox
from tests.api.support import (
    app_from_template,
    fire_after_deadline,
    make_api,
    sanction,
    six_months_after,
    start_accountability,
)
from tests.conftest import actor


def test_a_later_sanction_never_shortens_a_longer_promotion_ban(api, cadre, services, monkeypatch):
    """A ban running to 2028-06 stays when a sanction decided on an earlier clock date would end it sooner."""
    monkeypatch.setattr(services, "today", lambda: date(2027, 12, 1))
    sanction(api, "suspension")
    assert api.cadre()["promotion_ban_until"] == six_months_after(date(2027, 12, 1)).isoformat()
    monkeypatch.setattr(services, "today", lambda: date(2027, 3, 1))
    sanction(api, "public_apology")
    assert api.cadre()["promotion_ban_until"] == "2028-06-01"


def test_an_escalation_is_kept_on_the_task_row(fast_api, fast_services):
    """After the preliminary-verification deadline the task row itself is marked overdue (reports read it)."""
    fast_api.create_cadre("c1")
    case_id = start_accountability(fast_api)["id"]
    fire_after_deadline(fast_services)
    with fast_services.db.unit_of_work(write=False) as session:
        row = session.scalar(select(Task).where(Task.case_id == case_id, Task.element_id == "preliminary_verification"))
        assert row.status == "open" and row.overdue is True


def _due_in(template, tmp_path: Path, deadline: str, **settings) -> tuple[bool, bool]:
    """Whether the inbox calls a task due after `deadline` (a duration) 'due soon', and whether its "soon" filter
    keeps it."""
    folder = tmp_path / f"due-{deadline}-{settings.get('NOTIFY_DUE_SOON_HOURS', 'default')}"
    app = app_from_template(template, folder, DEADLINES={"preliminary_verification": deadline}, **settings)
    api = make_api(app, template)
    api.create_cadre("c1")
    start_accountability(api)
    services = app.extensions["cadreflow"]
    rows = inbox.inbox(services, actor("discipline"), {})["items"]
    kept = inbox.inbox(services, actor("discipline"), {"due": "soon"})["items"]
    services.db.dispose()
    (row,) = [r for r in rows if r["element_id"] == "preliminary_verification"]
    return row["due_soon"], any(r["id"] == row["id"] for r in kept)


def test_due_soon_in_the_inbox_is_what_the_due_soon_notice_says(template, tmp_path):
    """The inbox's "due soon" (badge and filter) is NOTIFY_DUE_SOON_HOURS (24 by default), the window of the
    due-soon notice: it said three days, so a task was marked due soon a day or two before anyone was told."""
    assert _due_in(template, tmp_path, "PT12H") == (True, True)
    assert _due_in(template, tmp_path, "P2D") == (False, False)
    assert _due_in(template, tmp_path, "P2D", NOTIFY_DUE_SOON_HOURS=72) == (True, True)
    assert _due_in(template, tmp_path, "P4D", NOTIFY_DUE_SOON_HOURS=72) == (False, False)


def test_no_due_soon_notices_means_no_due_soon_in_the_inbox(template, tmp_path):
    """NOTIFY_DUE_SOON_HOURS=0 turns "due soon" off: no badge, and the filter keeps only overdue tasks."""
    assert _due_in(template, tmp_path, "PT12H", NOTIFY_DUE_SOON_HOURS=0) == (False, False)
