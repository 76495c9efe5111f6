"""The worker's due scan: tasks due within a day and overdue, each task and kind once, one worker at a time."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from functools import partial
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update

from service import create_app
from service.db.models import Notification, Task, TaskReminder, User
from service.usecases import notifications
from service.usecases.casehistory import lock_case
from service.usecases.reminders import scan_due_tasks
from service.worker import run_worker
from tests.api.support import (
    app_from_template,
    departure_to_fieldwork,
    hold_in_incident,
    make_api,
    start_accountability,
)
from tests.conftest import actor, make_settings
from tests.engine.test_returns import with_return
from tests.service.test_concurrency import race
from tests.sql import statements_sent

DISCIPLINE = ("discipline", "discipline2", "multi")
REPORT = {"channel": "hotline", "subject_name": "张三", "subject_unit": "县交通局", "category": "inaction",
          "content": "长期不作为"}


def kinds(services, username: str) -> list[tuple[str, int]]:
    items = notifications.list_notifications(services, actor(username), per_page=100)["items"]
    return [(n["kind"], n["case_id"]) for n in items]


def due_of(api, case_id: int) -> datetime:
    return datetime.fromisoformat(api.open_task(case_id, "preliminary_verification")["due_at"])


def test_due_within_a_day_then_overdue_each_once(services, api, cadre):
    """Nothing two days ahead; a due-soon notice within a day; an overdue notice after; never either twice."""
    case_id = start_accountability(api)["id"]
    due = due_of(api, case_id)
    assert scan_due_tasks(services, due - timedelta(days=2)) == 0
    assert scan_due_tasks(services, due - timedelta(hours=12)) == 1
    assert scan_due_tasks(services, due - timedelta(hours=6)) == 0
    assert scan_due_tasks(services, due + timedelta(minutes=1)) == 1
    assert scan_due_tasks(services, due + timedelta(days=3)) == 0
    for name in DISCIPLINE:
        assert kinds(services, name) == [("overdue", case_id), ("due_soon", case_id), ("new_task", case_id)]
    note = notifications.list_notifications(services, actor("discipline"))["items"][1]
    local_due = due.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M")
    assert note["text_zh"].endswith(f"将于 {local_due} 到期") and f"is due {local_due}" in note["text_en"]
    assert kinds(services, "discipline_head") == kinds(services, "audit") == []


def test_a_task_first_seen_overdue_is_never_called_due_soon(services, api, cadre):
    """A scan that finds a task already past due sends only the overdue notice."""
    case_id = start_accountability(api)["id"]
    due = due_of(api, case_id)
    assert scan_due_tasks(services, due + timedelta(hours=1)) == 1
    assert scan_due_tasks(services, due + timedelta(hours=2)) == 0
    assert [k for k, _ in kinds(services, "discipline")] == ["overdue", "new_task"]


def test_a_held_task_reminds_its_holder_and_a_closed_one_nobody(services, api, cadre):
    """Claimed by discipline2: only discipline2 is reminded; a completed task is not reminded at all."""
    held = start_accountability(api)
    closed = start_accountability(api)
    api.post(f"/api/tasks/{held['open_tasks'][0]['id']}/claim", as_="discipline2")
    api.complete(closed["id"], "preliminary_verification", founded=False)
    assert scan_due_tasks(services, due_of(api, held["id"]) - timedelta(hours=1)) == 1
    assert [k for k, _ in kinds(services, "discipline2")] == ["due_soon", "new_task", "new_task"]
    assert [k for k, _ in kinds(services, "discipline")] == ["new_task", "new_task"]



def test_a_task_of_a_case_held_as_an_incident_is_reminded_only_after_the_retry(services, api, cadre):
    """Nobody may act on the task of a held case, so neither a due-soon or overdue notice nor the admins'
    `unreached` alert goes out for it while held; none is recorded as sent either, so after the admin's retry
    the first scan sends what fell due meanwhile (here the overdue notice), once."""
    case_id = start_accountability(api)["id"]
    unreached = start_accountability(api)["id"]
    due = due_of(api, case_id)
    hold_in_incident(services, case_id)
    hold_in_incident(services, unreached)
    for name in DISCIPLINE:
        _inactive(services, name)
    assert scan_due_tasks(services, due - timedelta(hours=1)) == 0
    assert scan_due_tasks(services, due + timedelta(hours=1)) == 0
    assert [k for k, _ in kinds(services, "admin") if k == "unreached"] == []
    with services.db.unit_of_work() as session:
        session.execute(update(User).where(User.username == "discipline2").values(active=True))
        assert session.scalar(select(func.count()).select_from(TaskReminder)) == 0
    assert scan_due_tasks(services, due + timedelta(hours=2)) == 0
    assert api.post(f"/api/cases/{case_id}/retry", as_="admin").status_code == 200
    assert scan_due_tasks(services, due + timedelta(hours=3)) == 1
    assert scan_due_tasks(services, due + timedelta(hours=4)) == 0
    assert [k for k, c in kinds(services, "discipline2") if c == case_id] == ["overdue", "new_task"]
    assert not [c for _, c in kinds(services, "discipline2") if c == unreached and _ != "new_task"]


def _inactive(services, username: str) -> None:
    """Deactivated as a release before the hand-back left it (or an administrator's SQL): still holding tasks."""
    with services.db.unit_of_work() as session:
        session.execute(update(User).where(User.username == username).values(active=False))


def test_a_task_held_by_a_deactivated_user_reminds_its_role_instead(services, api, cadre):
    """discipline2 holds the task but can no longer log in: the reminder goes to the role's active holders, not
    to nobody (which the scan counted as sent all the same)."""
    held = start_accountability(api)
    api.post(f"/api/tasks/{held['open_tasks'][0]['id']}/claim", as_="discipline2")
    _inactive(services, "discipline2")
    assert scan_due_tasks(services, due_of(api, held["id"]) - timedelta(hours=1)) == 1
    for name in ("discipline", "multi"):
        assert [k for k, _ in kinds(services, name)] == ["due_soon", "new_task"]
    assert [k for k, _ in kinds(services, "discipline2")] == ["new_task"]


def test_a_reminder_reaching_nobody_tells_the_admin_and_is_sent_when_someone_holds_the_role(services, api, cadre):
    """Nobody active holds discipline: the due-soon reminder was recorded as sent though nobody got it, and never
    sent once someone took the role. Now the admins are told once that it reached nobody, and it goes out at the
    first scan after the role has a holder again."""
    case_id = start_accountability(api)["id"]
    due = due_of(api, case_id)
    for name in DISCIPLINE:
        _inactive(services, name)
    assert scan_due_tasks(services, due - timedelta(hours=2)) == 0
    assert scan_due_tasks(services, due - timedelta(hours=1)) == 0
    alerts = [n for n in notifications.list_notifications(services, actor("admin"), per_page=100)["items"]
              if n["kind"] == "unreached"]
    assert [n["case_id"] for n in alerts] == [case_id]
    assert "discipline" in alerts[0]["text_zh"] and "无人" in alerts[0]["text_zh"]
    with services.db.unit_of_work() as session:
        session.execute(update(User).where(User.username == "discipline2").values(active=True))
    assert scan_due_tasks(services, due - timedelta(minutes=30)) == 1
    assert [k for k, _ in kinds(services, "discipline2")] == ["due_soon", "new_task"]
    assert scan_due_tasks(services, due - timedelta(minutes=20)) == 0


def test_a_new_task_for_a_deactivated_assignee_tells_its_role(services, api, cadre):
    """The statement that writes a new task's notices applies the same rule: a task opened for an assignee who is
    no longer active is told to the holders of its role."""
    case_id = departure_to_fieldwork(api, team_lead="audit")
    fieldwork = api.open_task(case_id, "audit_fieldwork")
    _inactive(services, "audit2")
    with services.db.unit_of_work() as session:
        case = lock_case(session, case_id)
        row = session.get(Task, fieldwork["id"])
        opened = Task(id="again", case_id=case_id, process_key=row.process_key, element_id=row.element_id,
                      process_version_id=row.process_version_id, name=row.name, role="audit", assignee="audit2",
                      status="open", created_at=row.created_at, overdue=False)
        session.add(opened)
        notifications.tasks_opened(session, case, [opened])
    told = {name for name in ("audit", "audit2", "multi")
            if "again" in [n["task_id"] for n in notifications.list_notifications(services, actor(name))["items"]]}
    assert told == {"audit", "multi"}


def test_two_workers_scanning_at_once_remind_each_task_once(template, tmp_path):
    """Two workers (own engines, same database) racing the scan: every task gets one notice per holder and kind."""
    app = app_from_template(template, tmp_path / "one")
    other = create_app(make_settings(tmp_path / "one"))
    first, second = app.extensions["cadreflow"], other.extensions["cadreflow"]
    api = make_api(app, template)
    api.create_cadre("c1")
    case_ids = [start_accountability(api)["id"] for _ in range(12)]
    due = max(due_of(api, case_id) for case_id in case_ids)
    try:
        for moment, kind in ((due - timedelta(hours=2), "due_soon"), (due + timedelta(hours=1), "overdue")):
            for _ in range(3):
                results = race(partial(scan_due_tasks, first, moment), partial(scan_due_tasks, second, moment))
                assert all(r is None or isinstance(r, int) for r in results), results
            assert _count(first, Notification.kind == kind) == len(case_ids) * len(DISCIPLINE)
            assert _count(first, TaskReminder.kind == kind) == len(case_ids)
    finally:
        first.db.dispose()
        second.db.dispose()


def test_the_scan_asks_the_same_few_questions_however_many_tasks(services, api, cadre):
    """Cheap at scale: the number of SELECTs of a scan does not grow with the tasks found or their holders."""
    first = start_accountability(api)["id"]
    moment = due_of(api, first) - timedelta(hours=1)
    assert scan_due_tasks(services, moment - timedelta(days=5)) == 0  # nothing due yet
    statements = _selects_of(services, lambda: scan_due_tasks(services, moment))
    later = [start_accountability(api)["id"] for _ in range(10)]
    moment = max(due_of(api, case_id) for case_id in later) - timedelta(hours=1)
    assert _selects_of(services, lambda: scan_due_tasks(services, moment)) == statements


def test_the_worker_loop_runs_the_scan(template, tmp_path):
    """`cadreflow worker` (run_worker) reminds of due tasks: here a window wider than the 30-day deadlines."""
    app = app_from_template(template, tmp_path / "wide", NOTIFY_DUE_SOON_HOURS=24 * 31)
    services, api = app.extensions["cadreflow"], make_api(app, template)
    api.create_cadre("c1")
    case_id = start_accountability(api)["id"]
    assert run_worker(services, threading.Event(), once=True) == 0  # it moved no case
    assert kinds(services, "discipline") == [("due_soon", case_id), ("new_task", case_id)]
    run_worker(services, threading.Event(), once=True)
    assert len(kinds(services, "discipline")) == 2
    services.db.dispose()


def _count(services, condition) -> int:
    table = condition.left.table
    with services.db.unit_of_work(write=False) as session:
        return session.scalar(select(func.count()).select_from(table).where(condition))


def _selects_of(services, call) -> int:
    with statements_sent(services.db) as sent:
        assert call()
    return sum(s.starts("SELECT") for s in sent)


def test_a_step_returned_to_is_reminded_again_of_its_new_deadline(services, api, cadre):
    """triage_report was reminded due soon and overdue, then completed; reply_to_reporter is returned to it, which
    opens it again under the same id with a new deadline: that deadline is reminded too, not taken for one
    already told."""
    response = api.post("/api/processes/public_report/versions", as_="designer",
                        data=with_return("public_report", "reply_to_reporter"), content_type="application/xml")
    assert response.status_code == 201, response.json
    started = api.post("/api/cases", as_="discipline", json={"process": "public_report", "cadre_id": None,
                                                             "data": REPORT})
    assert started.status_code == 201, started.json
    case_id = started.json["id"]
    first = datetime.fromisoformat(api.open_task(case_id, "triage_report")["due_at"])
    assert scan_due_tasks(services, first - timedelta(hours=1)) == 1
    assert scan_due_tasks(services, first + timedelta(minutes=1)) == 1
    api.complete(case_id, "triage_report", decision="transfer", transfer_to="县信访局")
    reply = api.open_task(case_id, "reply_to_reporter")["id"]
    returned = api.post(f"/api/tasks/{reply}/return", as_="discipline", json={"reason": "分流意见需补充"})
    assert returned.status_code == 200, returned.json
    again = datetime.fromisoformat(api.open_task(case_id, "triage_report")["due_at"])
    assert scan_due_tasks(services, again - timedelta(hours=1)) == 1
    assert scan_due_tasks(services, again + timedelta(minutes=1)) == 1


def test_no_due_soon_notice_when_its_window_is_zero(template, tmp_path):
    """NOTIFY_DUE_SOON_HOURS = 0 means no "due soon" notice (config.ZERO_ALLOWED), not the default 24 hours;
    the overdue notice still goes out, and the digest counts nothing as due soon."""
    app = app_from_template(template, tmp_path / "zero", NOTIFY_DUE_SOON_HOURS=0)
    services, api = app.extensions["cadreflow"], make_api(app, template)
    try:
        api.create_cadre("c1")
        case_id = start_accountability(api)["id"]
        due = due_of(api, case_id)
        assert scan_due_tasks(services, due - timedelta(hours=1)) == 0
        assert scan_due_tasks(services, due + timedelta(minutes=1)) == 1
        assert [k for k, _ in kinds(services, "discipline")] == ["overdue", "new_task"]
    finally:
        services.db.dispose()
