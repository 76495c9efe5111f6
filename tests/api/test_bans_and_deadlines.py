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


def _due_in(template, tmp_path: Path, days: int) -> bool:
    """Whether the inbox calls a task due in `days` days 'due soon'."""
    app = app_from_template(template, tmp_path / f"due{days}", DEADLINES={"preliminary_verification": f"P{days}D"})
    api = make_api(app, template)
    api.create_cadre("c1")
    start_accountability(api)
    rows = inbox.inbox(app.extensions["cadreflow"], actor("discipline"), {})["items"]
    app.extensions["cadreflow"].db.dispose()
    (row,) = [r for r in rows if r["element_id"] == "preliminary_verification"]
    return row["due_soon"]


def test_due_soon_means_within_three_days(template, tmp_path):
    """Due in two days: soon; due in four days: not yet."""
    assert _due_in(template, tmp_path, 2) is True
    assert _due_in(template, tmp_path, 4) is False
