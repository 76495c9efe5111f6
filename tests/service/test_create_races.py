"""Creating the same record twice at once: one request wins, the other is told of the conflict (409), never a 500,
and never a silent overwrite of what the winner created."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import text

from service.db.models import Role, User
from service.errors import Conflict, Unauthorized
from service.usecases import cadres, logins, roles, users
from tests.conftest import actor
from tests.service.test_concurrency import race

ADMIN, ORG = actor("admin"), actor("org_dept")
CADRE = {"id": "race1", "name": "并发", "unit": "县局", "post": "副局长", "post_level": "leading",
         "post_started_on": "2020-01-01"}


def one_wins(results: list) -> list:
    """Exactly one call succeeded and every other one lost with a Conflict; the winners' results."""
    assert all(isinstance(result, Conflict) or not isinstance(result, Exception) for result in results), results
    winners = [result for result in results if not isinstance(result, Exception)]
    assert len(winners) == 1, results
    return winners


def test_two_admins_adding_one_username_do_not_overwrite_each_other(services):
    results = race(*(lambda password=password, role=role: users.add_user(services, ADMIN, "twin", password, [role])
                     for password, role in (("first-password-1", "audit"), ("second-password-2", "discipline"))))
    (winner,) = one_wins(results)
    password = "first-password-1" if winner["roles"] == ["audit"] else "second-password-2"
    loser = "second-password-2" if password == "first-password-1" else "first-password-1"
    assert logins.issue_token(services, "twin", password)["token"]
    with pytest.raises(Unauthorized):  # the loser's password was never set
        logins.issue_token(services, "twin", loser)


@pytest.mark.parametrize("create", ["cadre", "role", "user"])
def test_racing_creations_of_one_record_give_one_record_and_conflicts(services, create):
    calls = {"cadre": lambda: cadres.create_cadre(services, ORG, dict(CADRE)),
             "role": lambda: roles.create_role(services, ADMIN, "race_role", "并发角色", "race role"),
             "user": lambda: users.add_user(services, ADMIN, "racer", "a-long-password-1", ["audit"])}
    one_wins(race(*[calls[create]] * 4))


def test_a_unique_key_taken_meanwhile_is_a_conflict_not_a_500(services):
    """What the racing transactions meet on PostgreSQL, made certain: the constraint refuses the second row at
    commit, after the use case's own check, and the unit of work reports a conflict."""
    with services.db.unit_of_work() as session:
        session.add(Role(code="dup_role", name_zh="甲", name_en="a"))
    with pytest.raises(Conflict, match="same moment"), services.db.unit_of_work() as session:
        session.add(Role(code="dup_role", name_zh="乙", name_en="b"))
    with pytest.raises(Conflict), services.db.unit_of_work() as session:
        session.add(User(username="admin", password_hash="x", active=True))
        session.flush()


def test_a_not_null_violation_is_still_a_bug_not_a_conflict(services):
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError), services.db.unit_of_work() as session:
        session.add(Role(code="no_name", name_zh=None, name_en="x"))


def test_workers_racing_to_create_a_job_marker_all_go_on(services):
    """The daily scans claim their day on a `scheduled_runs` row that the first worker creates; workers that
    create it at the same moment lose quietly (the race is expected), and every scan's claim then works."""
    from service.usecases import early_warning, reminders, rotation

    assert race(*[lambda: reminders.ensure_marker(services, "raced_marker")] * 4) == [None] * 4
    outcomes = race(*[lambda: rotation.run_daily_scan(services)] * 3,
                    *[lambda: early_warning.run_daily_scan(services)] * 3)
    assert not any(isinstance(outcome, Exception) for outcome in outcomes), outcomes
    assert sum(outcome is not None for outcome in outcomes[:3]) == 1  # one worker ran today's rotation scan
    assert sum(outcome is not None for outcome in outcomes[3:]) == 1  # and one the early-warning scan


def test_names_differing_in_letter_case_alone_raced_give_one_user_and_the_checks_409(services):
    """Four admins create `Case`, `case`, `CASE` and `cAsE` at once: one user, and every other gets the 409 the
    application's own check gives (naming the winner), not a second account nor a 500."""
    names = ["Case", "case", "CASE", "cAsE"]
    results = race(*(lambda name=name: users.add_user(services, ADMIN, name, "a-long-password-1", ["audit"])
                     for name in names))
    (winner,) = one_wins(results)
    for result in results:
        if isinstance(result, Conflict):
            assert result.fields == {"username": "用户名已存在 (taken)"}
            assert f"已有用户 {winner['username']}，用户名不能仅大小写不同" in result.message
    assert [u["username"] for u in users.list_users(services, ADMIN) if u["username"].lower() == "case"] == [
        winner["username"]]


def test_a_lookalike_committed_after_the_check_is_the_checks_409(services):
    """Made certain with two sessions: `Bob` is written but not committed when `bob` is checked, so the check
    passes (on PostgreSQL; SQLite holds `bob` until `Bob` commits); the unique index on lower(username) refuses
    `bob` once `Bob` commits, and the use case says what its check says. Nothing of `bob` is written."""
    outcome: list = []
    with services.db.unit_of_work() as session:
        session.add(User(username="Bob", password_hash="x", active=True))
        session.flush()
        second = threading.Thread(target=lambda: outcome.append(_attempt(services, "bob")))
        second.start()
        _until_waiting(services, session)
    second.join(timeout=60)
    (refusal,) = outcome
    assert isinstance(refusal, Conflict) and refusal.fields == {"username": "用户名已存在 (taken)"}, refusal
    assert "已有用户 Bob，用户名不能仅大小写不同" in refusal.message
    assert [u["username"] for u in users.list_users(services, ADMIN) if u["username"].lower() == "bob"] == ["Bob"]


def _attempt(services, username: str) -> object:
    try:
        return users.add_user(services, ADMIN, username, "a-long-password-1", ["audit"])
    except Conflict as exc:
        return exc


def _until_waiting(services, session, seconds: float = 30.0) -> None:
    """On PostgreSQL, until another transaction waits on a lock this one holds (the second insert on the index);
    on SQLite, a moment for the second writer to reach its BEGIN IMMEDIATE."""
    if services.db.is_sqlite:
        time.sleep(0.5)
        return
    deadline = time.monotonic() + seconds
    waiting = text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                   "AND wait_event_type = 'Lock'")
    while time.monotonic() < deadline:
        if services.db.read_rows(waiting, {})[0][0]:
            return
        time.sleep(0.05)
    raise AssertionError("the second insert never waited on the first")
