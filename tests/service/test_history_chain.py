"""Record integrity: the history's hash chain, the append-only triggers, and `cadreflow check` naming tampered cases."""

from __future__ import annotations

import json
import threading
from functools import partial
from types import SimpleNamespace

import pytest
from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.exc import DBAPIError

from service.db.chain import entry_hash
from service.db.models import Case, HistoryEntry
from service.usecases import check, tasks, users
from service.usecases.account_log import check_account_log
from service.usecases.casehistory import lock_case, record
from service.usecases.check import check_cases
from tests.api.support import admonishment_to_follow_up, start_vetting
from tests.conftest import actor
from tests.service.test_concurrency import race

HISTORY = HistoryEntry.__table__


def faults_of(services) -> list[str]:
    return check_cases(services, grace_seconds=3600)[1]


def history_rows(services, case_id: int) -> list:
    """A case's entries as typed rows, in id order, read straight from the table."""
    with services.db.write_engine.connect() as connection:
        return list(connection.execute(select(HISTORY).where(HISTORY.c.case_id == case_id).order_by(HISTORY.c.id)))


def is_postgres(services) -> bool:
    return services.db.write_engine.dialect.name == "postgresql"


def tamper(services, statements: list, refused: bool = True) -> None:
    """Run SQL behind the service's back: on PostgreSQL the trigger refuses it first, then a superuser
    bypasses the trigger; on SQLite the attacker with the file drops the triggers."""
    engine = services.db.write_engine
    if is_postgres(services) and refused:
        for statement in statements:
            with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
                connection.execute(statement)
    with engine.begin() as connection:
        if is_postgres(services):
            connection.execute(text("SET LOCAL session_replication_role = replica"))  # triggers off (superuser)
        else:
            connection.execute(text("DROP TRIGGER history_no_update"))
            connection.execute(text("DROP TRIGGER history_no_delete"))
        for statement in statements:
            connection.execute(statement)


def by_id(row):
    return update(HISTORY).where(HISTORY.c.id == row.id)


def content(row) -> dict:
    return {"at": row.at, "actor": row.actor, "action": row.action, "task": row.task, "detail": row.detail}


def update_actor(rows) -> tuple[list, bool]:
    complete = next(r for r in rows if r.action == "complete")
    return [by_id(complete).values(actor="org_head")], True


def update_detail(rows) -> tuple[list, bool]:
    complete = next(r for r in rows if r.action == "complete")
    forged = {**complete.detail, "data": {"form": "dismiss", "reason": "不予诫勉"}}
    return [by_id(complete).values(detail=forged)], True


def delete_middle(rows) -> tuple[list, bool]:
    return [delete(HISTORY).where(HISTORY.c.id == rows[len(rows) // 2].id)], True


def delete_last(rows) -> tuple[list, bool]:
    return [delete(HISTORY).where(HISTORY.c.id == rows[-1].id)], True


def delete_all(rows) -> tuple[list, bool]:
    """The whole history of a case removed: the case row's head still names its last entry."""
    return [delete(HISTORY).where(HISTORY.c.case_id == rows[0].case_id)], True


def swap_content(rows) -> tuple[list, bool]:
    """Two entries trade what they say (time, actor, action, task, detail) but keep sequence and hash."""
    first, second = rows[1], rows[2]
    return [by_id(first).values(**content(second)), by_id(second).values(**content(first))], True


def swap_whole_rows(rows) -> tuple[list, bool]:
    """Two entries trade everything but their id, sequence and hash included: their order changes."""
    first, second = rows[1], rows[2]
    return [by_id(first).values(seq=-1),  # out of the way of the unique (case, seq) index
            by_id(second).values(**content(first), seq=first.seq, hash=first.hash),
            by_id(first).values(**content(second), seq=second.seq, hash=second.hash)], True


def insert_forged(rows) -> tuple[list, bool]:
    """A well-formed entry with a correctly computed hash appended without the case's head: INSERT is allowed."""
    last = rows[-1]
    forged = SimpleNamespace(case_id=last.case_id, seq=last.seq + 1, at=last.at, actor="discipline_head",
                             action="complete", task="intake_review", detail={"data": {"form": "dismiss"}})
    return [insert(HISTORY).values(**vars(forged), hash=entry_hash(forged, last.hash))], False


TAMPERS = {
    update_actor: "does not match its content",
    update_detail: "does not match its content",
    delete_middle: "deleted, inserted or reordered",
    delete_last: "deleted from or forged onto its end",
    delete_all: "deleted from or forged onto its end",
    swap_content: "does not match its content",
    swap_whole_rows: "deleted, inserted or reordered",
    insert_forged: "deleted from or forged onto its end",
}


@pytest.mark.parametrize("kind", TAMPERS, ids=[kind.__name__ for kind in TAMPERS])
def test_check_names_the_case_whose_history_was_tampered_with(services, three_cases, kind):
    """Each way of rewriting history outside the service is refused by the trigger (PostgreSQL), and once
    forced through, `check` names exactly that case."""
    assert faults_of(services) == []
    victim = three_cases[1]
    statements, refused = kind(history_rows(services, victim))
    tamper(services, statements, refused)
    faults = faults_of(services)
    assert faults and all(fault.startswith(f"case {victim}: ") for fault in faults), faults
    assert any(TAMPERS[kind] in fault for fault in faults), faults


def test_history_refuses_update_and_delete_at_head(services, three_cases):
    """The application's own connection cannot rewrite or remove an entry (nor truncate on PostgreSQL)."""
    engine = services.db.write_engine
    attempts = ["UPDATE history SET actor = 'x'", "DELETE FROM history"]
    attempts += ["TRUNCATE history CASCADE"] if is_postgres(services) else []
    for statement in attempts:
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
            connection.execute(text(statement))
    assert len(history_rows(services, three_cases[0])) > 3 and faults_of(services) == []


def test_api_history_shows_sequence_and_chained_hashes(api, services, three_cases):
    """Each entry of the history view carries its sequence, counting from 1, and its hash over the one before."""
    history = api.history(three_cases[0])
    assert [entry["seq"] for entry in history] == list(range(1, len(history) + 1))
    previous = ""
    for entry, row in zip(history, history_rows(services, three_cases[0]), strict=True):
        assert entry["hash"] == row.hash == entry_hash(row, previous)
        previous = entry["hash"]


def test_an_untouched_database_of_many_cases_has_no_fault(api, cadre, services, monkeypatch):
    """Many cases over several check batches, each with a claim, unclaim and completions: 0 faults."""
    monkeypatch.setattr(check, "BATCH", 4)
    api.create_cadre("c2")
    for index in range(9):
        case_id = admonishment_to_follow_up(api, "c1" if index % 2 else "c2")
        task = api.open_task(case_id, "follow_up_review")
        assert api.post(f"/api/tasks/{task['id']}/claim", as_=task["role"]).status_code == 200
        assert api.post(f"/api/tasks/{task['id']}/unclaim", as_=task["role"]).status_code == 200
    start_vetting(api)
    checked, faults = check_cases(services, grace_seconds=3600)
    assert (checked, faults) == (10, [])


ODD_DETAIL = {
    "金额": 1234.5, "比例": 0.1, "tiny": 1e-7, "huge": 1e16, "big": 2**62, "negative_zero": -0.0, "one": 1.0,
    "nested": {"列表": [1, 2.5, {"深": "层"}], "空": {}, "none": None, "yes": True},
    "text": "引号\"'\\ 换行\n制表\t😀 café", "": "empty key", "tuple": (1, 2),
}


def test_entries_with_odd_detail_survive_the_database_round_trip(services, three_cases):
    """Floats, big integers, non-ASCII and nested detail hash the same after the database gives them back."""
    case_id = three_cases[0]
    with services.db.unit_of_work() as session:
        case = lock_case(session, case_id)
        record(session, case, "审计员", "message", "任务", ODD_DETAIL)
        record(session, case, "discipline", "message", None, {})
    assert faults_of(services) == []
    assert history_rows(services, case_id)[-2].detail == json.loads(json.dumps(ODD_DETAIL))


def test_record_refuses_a_case_it_does_not_hold(services, three_cases):
    """Appending to a case read without its lock is a programming error, caught before it can fork the chain."""
    with pytest.raises(RuntimeError, match="without holding its lock"), services.db.unit_of_work() as session:
        record(session, session.get(Case, three_cases[0]), "admin", "message")
    assert faults_of(services) == []


def test_concurrent_claims_and_completions_on_one_case_keep_one_chain(services, api, cadre):
    """Claims, unclaims and completions racing on one case's parallel tasks append one unbroken chain."""
    for _ in range(3):
        case_id = start_vetting(api)["id"]
        ids = {t["element_id"]: t["id"] for t in api.case(case_id)["open_tasks"]}
        who, other = actor("org_dept"), actor("admin")
        first = race(partial(tasks.claim_task, services, who, ids["solicit_family_opinion"]),
             partial(tasks.claim_task, services, other, ids["solicit_public_opinion"]),
             partial(tasks.complete_task, services, who, ids["solicit_colleague_opinion"], {"opinion": "positive"}),
             partial(tasks.claim_task, services, who, ids["democratic_evaluation"]))
        second = race(partial(tasks.unclaim_task, services, other, ids["solicit_public_opinion"]),
             partial(tasks.complete_task, services, who, ids["solicit_family_opinion"], {"opinion": "neutral"}),
             partial(tasks.complete_task, services, who, ids["democratic_evaluation"],
                     {"votes_approve": 1, "votes_basic": 0, "votes_disapprove": 0}))
        assert all(isinstance(result, dict) for result in first + second), first + second
        rows = history_rows(services, case_id)
        assert [row.seq for row in rows] == list(range(1, len(rows) + 1))
        assert sum(row.action in ("claim", "unclaim", "complete") for row in rows) == 7
    assert faults_of(services) == []


def test_cli_check_exits_non_zero_naming_the_tampered_case(app, services, three_cases):
    """`cadreflow check` passes a whole database, then fails naming the case whose actor was rewritten."""
    runner = app.test_cli_runner()
    clean = runner.invoke(args=["check", "--grace", "3600"])
    assert (clean.exit_code, clean.stdout.strip()) == (0, "3 case(s) checked, 0 fault(s)")
    victim = three_cases[2]
    tamper(services, update_actor(history_rows(services, victim))[0])
    result = runner.invoke(args=["check", "--grace", "3600"])
    assert result.exit_code == 1
    assert f"case {victim}: " in result.stderr and "altered" in result.stderr
    # The forged actor breaks the chain, and no longer matches who completed the task by its row.
    assert "differs from its history entry" in result.stderr
    assert "3 case(s) checked, 2 fault(s)" in result.stdout


def test_check_beside_writers_finds_no_fault(services, api, cadre, monkeypatch):
    """`check` run over and over while claims, completions (steps that open and close tasks, set data and outcome)
    and account changes commit beside it reads each batch, and the account log with the accounts, as of one moment:
    it never reports a break that is only a write it saw half of."""
    monkeypatch.setattr(check, "BATCH", 2)
    opinions = {"solicit_family_opinion": {"opinion": "neutral"}, "solicit_public_opinion": {"opinion": "positive"},
                "solicit_colleague_opinion": {"opinion": "positive"},
                "democratic_evaluation": {"votes_approve": 1, "votes_basic": 0, "votes_disapprove": 0}}
    work = [{t["element_id"]: t["id"] for t in start_vetting(api)["open_tasks"]} for _ in range(4)]
    who, admin, done, faults, rounds = actor("org_dept"), actor("admin"), threading.Event(), [], []

    def write() -> None:
        try:
            for index, ids in enumerate(work):
                for element, data in opinions.items():
                    tasks.claim_task(services, who, ids[element])
                    tasks.complete_task(services, who, ids[element], data)
                users.update_user(services, admin, "audit", roles=["audit"] if index % 2 else ["audit", "audit_head"])
                users.update_user(services, admin, "designer", password=f"quiet-river-{index}7")
        finally:
            done.set()

    def read() -> None:
        while not done.is_set():
            faults.extend(check_cases(services, grace_seconds=3600)[1] + check_account_log(services)[1])
            rounds.append(1)

    threads = [threading.Thread(target=write), threading.Thread(target=read)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert done.is_set() and faults == [] and len(rounds) > 1, (faults, len(rounds))
    assert check_cases(services, grace_seconds=3600) == (4, []) and check_account_log(services)[1] == []
