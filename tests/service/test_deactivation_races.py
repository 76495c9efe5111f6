"""Deactivating an account racing whatever gives it a task (a claim, an assignment, a step naming it): on
PostgreSQL each holds the user's row share-locked, so whichever commits second sees the first, and no open task is
left with someone who can no longer log in. Each race is made certain by pausing the real use case at a point
while the other waits on its lock; a deadlock PostgreSQL breaks is a 409 with nothing written.

SQLite serialises every writer at BEGIN IMMEDIATE: nothing races there, and a paused writer would only block the
other, so the races run on PostgreSQL alone."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite

from service.db.models import Notification, Task, User
from service.errors import Conflict, Forbidden, Invalid
from service.usecases import absence, queries, readmodel, tasks, taskwork, users
from service.usecases.context import Actor
from tests.api.support import make_api, start_accountability, start_departure, start_vetting
from tests.conftest import TEST_POSTGRES, actor
from tests.service.test_create_races import _until_waiting

postgres_only = pytest.mark.skipif(not TEST_POSTGRES, reason="PostgreSQL only (set CADREFLOW_TEST_POSTGRES): "
                                   "SQLite serialises every writer, so nothing races")
ADMIN = actor("admin")


def member(username: str, role: str) -> Actor:
    return Actor(username, frozenset({role}))


class Paused:
    """`module.name` made to stop once, after running (or `before`), until `release` is set; `reached` says it
    stopped. The use case calling it holds its locks meanwhile."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, module: Any, name: str, before: bool = False) -> None:
        self.reached, self.release = threading.Event(), threading.Event()
        original = getattr(module, name)

        def paused(*args: Any, **kwargs: Any) -> Any:
            if before:
                self._stop()
            result = original(*args, **kwargs)
            if not before:
                self._stop()
            return result
        monkeypatch.setattr(module, name, paused)

    def _stop(self) -> None:
        if not self.reached.is_set():
            self.reached.set()
            assert self.release.wait(60), "never released"

    def wait(self) -> None:
        assert self.reached.wait(60), "never reached the pause"


def release_when_waiting(services, pause: Paused) -> None:
    """Let the paused use case go on once the other transaction waits on a lock it holds (or at once, failing)."""
    try:
        _until_waiting(services, None)
    finally:
        pause.release.set()


UNDONE = "collided with a change made at the same moment"  # the unit of work's 409 of a deadlock PostgreSQL broke


def started(call: Callable[[], Any]) -> Callable[[], Any]:
    """Run `call` in a thread now; the function returned joins it and gives its result, or the exception raised."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(call())
        except Exception as exc:  # the refused side of the race: kept for the assertions
            outcome.append(exc)
    thread = threading.Thread(target=run)
    thread.start()

    def result() -> Any:
        thread.join(timeout=60)
        assert not thread.is_alive()
        return outcome[0]
    return result


def verification_task(api) -> tuple[int, str]:
    """An accountability case and its open preliminary_verification task (discipline's lane)."""
    case = start_accountability(api)
    return case["id"], case["open_tasks"][0]["id"]


def held_by_inactive(services) -> list[tuple[str, str]]:
    """Open tasks held by a user who is not active: what none of these races may leave behind."""
    with services.db.unit_of_work(write=False) as session:
        return [tuple(row) for row in session.execute(select(Task.id, Task.assignee).join(
            User, User.username == Task.assignee).where(Task.status == "open", User.active.is_(False)))]


def actions(api, case_id: int) -> list[tuple[str, str]]:
    return [(entry["action"], entry["actor"]) for entry in api.history(case_id)]


def test_the_share_lock_is_postgresql_only():
    """The lock is written for PostgreSQL alone; SQLite's statement has no locking clause."""
    query = queries.still_active(select(User.id).where(User.active))
    assert "FOR SHARE OF users" in str(query.compile(dialect=postgresql.dialect()))
    assert " FOR " not in str(query.compile(dialect=sqlite.dialect()))


@postgres_only
def test_a_claim_meeting_a_deactivation_in_progress_waits_and_is_refused(services, api, cadre, monkeypatch):
    """discipline2's deactivation holds its row (paused after handing back its tasks); discipline2's claim waits on
    that row, and once the deactivation commits it is refused (403) with nothing written: the task stays unheld."""
    case_id, task_id = verification_task(api)
    pause = Paused(monkeypatch, users, "_hand_back_tasks")
    deactivation = started(lambda: users.update_user(services, ADMIN, "discipline2", active=False))
    pause.wait()
    claim = started(lambda: tasks.claim_task(services, member("discipline2", "discipline"), task_id))
    release_when_waiting(services, pause)
    assert deactivation()["active"] is False
    refused = claim()
    assert isinstance(refused, Forbidden) and "已停用" in refused.message, refused
    assert api.open_task(case_id, "preliminary_verification")["assignee"] is None
    assert ("claim", "discipline2") not in actions(api, case_id)
    assert held_by_inactive(services) == []


@postgres_only
def test_a_claim_committing_first_is_handed_back_by_the_deactivation(services, api, cadre, monkeypatch):
    """The reverse order: discipline2's claim holds its row (paused before its commit); the deactivation waits for
    it, then sees the claimed task and hands it back, telling the role's active holders."""
    case_id, task_id = verification_task(api)
    pause = Paused(monkeypatch, tasks, "record")
    claim = started(lambda: tasks.claim_task(services, member("discipline2", "discipline"), task_id))
    pause.wait()
    deactivation = started(lambda: users.update_user(services, ADMIN, "discipline2", active=False))
    release_when_waiting(services, pause)
    assert claim()["assignee"] == "discipline2"
    assert deactivation()["active"] is False
    assert api.open_task(case_id, "preliminary_verification")["assignee"] is None
    assert actions(api, case_id)[-2:] == [("claim", "discipline2"), ("unclaim", "admin")]
    assert api.history(case_id)[-1]["detail"]["reason"] == users.DEACTIVATED
    assert held_by_inactive(services) == []
    assert {"discipline", "multi"} <= told_of(services, task_id)


def told_of(services, task_id: str) -> set[str]:
    with services.db.unit_of_work(write=False) as session:
        return set(session.scalars(select(User.username).join(Notification, Notification.user_id == User.id)
                                   .where(Notification.task_id == task_id)))


@postgres_only
def test_an_assignment_meeting_a_deactivation_in_progress_is_refused(services, api, cadre, monkeypatch):
    """discipline_head hands a task to discipline2 while its deactivation is in progress: the assignment waits on
    discipline2's row, then finds no active user (422), and the task stays unheld."""
    case_id, task_id = verification_task(api)
    pause = Paused(monkeypatch, users, "_hand_back_tasks")
    deactivation = started(lambda: users.update_user(services, ADMIN, "discipline2", active=False))
    pause.wait()
    assignment = started(lambda: taskwork.assign_task(services, actor("discipline_head"), task_id, "discipline2"))
    release_when_waiting(services, pause)
    assert deactivation()["active"] is False
    refused = assignment()
    assert isinstance(refused, Invalid) and refused.fields == {"username": "用户不存在或已停用 (no such active user)"}
    assert api.open_task(case_id, "preliminary_verification")["assignee"] is None
    assert "assign" not in [action for action, _ in actions(api, case_id)]


@postgres_only
def test_an_assignment_committing_first_is_handed_back_by_the_deactivation(services, api, cadre, monkeypatch):
    """The reverse order: the assignment holds discipline2's row until its commit; the deactivation then finds the
    task held and hands it back."""
    case_id, task_id = verification_task(api)
    pause = Paused(monkeypatch, taskwork, "record")
    assignment = started(lambda: taskwork.assign_task(services, actor("discipline_head"), task_id, "discipline2"))
    pause.wait()
    deactivation = started(lambda: users.update_user(services, ADMIN, "discipline2", active=False))
    release_when_waiting(services, pause)
    assert assignment()["assignee"] == "discipline2"
    assert deactivation()["active"] is False
    assert api.open_task(case_id, "preliminary_verification")["assignee"] is None
    assert actions(api, case_id)[-2:] == [("assign", "discipline_head"), ("unclaim", "admin")]
    assert held_by_inactive(services) == []


@postgres_only
def test_a_step_naming_a_user_being_deactivated_opens_its_task_in_the_pool(services, api, cadre, monkeypatch):
    """assign_audit_team names audit2 team lead, so the step opens audit_fieldwork for audit2; audit2's
    deactivation is in progress: the step waits on audit2's row, then opens the task in audit's pool."""
    case_id = start_departure(api)["id"]
    task_id = api.open_task(case_id, "assign_audit_team")["id"]
    pause = Paused(monkeypatch, users, "_hand_back_tasks")
    deactivation = started(lambda: users.update_user(services, ADMIN, "audit2", active=False))
    pause.wait()
    step = started(lambda: tasks.complete_task(services, actor("audit_head"), task_id,
                                               {"team_lead": "audit2", "members": "李四、王五"}))
    release_when_waiting(services, pause)
    assert deactivation()["active"] is False
    assert isinstance(step(), dict)
    fieldwork = api.open_task(case_id, "audit_fieldwork")
    assert fieldwork["assignee"] is None
    assert api.history(case_id)[-1]["detail"] == {"task_id": fieldwork["id"], "from": "audit2",
                                                  "reason": users.NO_ACTIVE_ACCOUNT}
    assert held_by_inactive(services) == []


@postgres_only
def test_a_step_naming_a_user_commits_first_and_the_deactivation_hands_it_back(services, api, cadre, monkeypatch):
    """The reverse order: the step opening audit_fieldwork for audit2 holds audit2's row until its commit (paused
    once it has found audit2 active); the deactivation then hands the new task back."""
    case_id = start_departure(api)["id"]
    task_id = api.open_task(case_id, "assign_audit_team")["id"]
    pause = Paused(monkeypatch, readmodel, "holders_now")
    step = started(lambda: tasks.complete_task(services, actor("audit_head"), task_id,
                                               {"team_lead": "audit2", "members": "李四、王五"}))
    pause.wait()
    deactivation = started(lambda: users.update_user(services, ADMIN, "audit2", active=False))
    release_when_waiting(services, pause)
    assert isinstance(step(), dict)
    assert deactivation()["active"] is False
    assert api.open_task(case_id, "audit_fieldwork")["assignee"] is None
    assert api.history(case_id)[-1]["action"] == "unclaim"
    assert held_by_inactive(services) == []


@postgres_only
def test_a_deadlock_between_an_assignment_and_a_deactivation_is_a_409(app, template, services, api, cadre,
                                                                      monkeypatch):
    """The one order that can deadlock, over HTTP: an assignment locks its case and then wants org_dept2's row,
    while org_dept2's deactivation holds the row and wants the case (org_dept2 holds another task of it).
    PostgreSQL breaks the cycle; whichever it undoes answers 409 (retry) with nothing of it written, the other
    commits. (It undoes the deactivation, whose wait began first, but either way is right.)"""
    case_id = start_vetting(api)["id"]
    ids = {t["element_id"]: t["id"] for t in api.case(case_id)["open_tasks"]}
    tasks.claim_task(services, member("org_dept2", "org_dept"), ids["solicit_family_opinion"])
    pause = Paused(monkeypatch, absence, "active_user", before=True)
    assignment = started(lambda: api.post(f"/api/tasks/{ids['solicit_public_opinion']}/assign", as_="org_head",
                                          json={"username": "org_dept2"}))
    pause.wait()  # the assignment holds the case's lock
    admin = make_api(app, template)  # a client of its own: the other thread uses `api`'s
    deactivation = started(lambda: admin.patch("/api/users/org_dept2", json={"active": False}))
    release_when_waiting(services, pause)  # the deactivation holds org_dept2's row and waits for the case
    assigned, deactivated = assignment(), deactivation()
    assert sorted((assigned.status_code, deactivated.status_code)) == [200, 409], (assigned.json, deactivated.json)
    undone = assigned if assigned.status_code == 409 else deactivated
    assert undone.json["error"]["code"] == "conflict" and UNDONE in undone.json["error"]["message"]
    held = {t["element_id"]: t["assignee"] for t in api.case(case_id)["open_tasks"]}
    if undone is assigned:  # nothing of the assignment written, the deactivation done
        assert (held["solicit_family_opinion"], held["solicit_public_opinion"]) == (None, None)
        assert "assign" not in [action for action, _ in actions(api, case_id)]
    else:  # nothing of the deactivation written: org_dept2 still active, holding both
        assert (held["solicit_family_opinion"], held["solicit_public_opinion"]) == ("org_dept2", "org_dept2")
        assert [u["active"] for u in users.list_users(services, ADMIN) if u["username"] == "org_dept2"] == [True]
        assert "unclaim" not in [action for action, _ in actions(api, case_id)]
    assert held_by_inactive(services) == []


@postgres_only
def test_a_serialization_failure_is_a_conflict_with_nothing_written(services):
    """A transaction at REPEATABLE READ updating a row another changed after its snapshot fails with 40001: the
    unit of work answers a Conflict (retry), and its change is not written."""
    audit = User.username == "audit"
    with pytest.raises(Conflict, match=UNDONE), services.db.unit_of_work() as session:
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        session.scalar(select(User.email).where(audit))  # the snapshot is taken here
        with services.db.unit_of_work() as other:
            other.execute(update(User).where(audit).values(email="first@example.org"))
        session.execute(update(User).where(audit).values(email="second@example.org"))
    with services.db.unit_of_work(write=False) as session:
        assert session.scalar(select(User.email).where(audit)) == "first@example.org"
