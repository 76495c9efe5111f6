"""A version migration does not launder a tampered case: it re-serializes the engine state and writes a `migrate`
entry carrying the holders and deadlines it finds, after which `check` would accept whatever an insider had changed
with SQL. A case `check` names is refused (the dry run says so, the real run leaves it on its version, untouched);
the other cases migrate."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from service.db.models import Case, HistoryEntry, Task
from service.usecases.check import check_cases
from tests.api.support import ADMONISHMENT, start_admonishment
from tests.api.test_designer_versions import admonishment_variant, deploy, deployed, migrate
from tests.api.test_return_api import returnable, send_back  # noqa: F401 - the fixture, used below
from tests.sql import statements_sent

REFUSED = "案件记录与历史不符，须先核查 (the case's records disagree with its history: check it first)"


def _inquiry(api) -> tuple[int, str]:
    case_id = start_admonishment(api)["id"]
    api.complete(case_id, "intake_review", form="inquiry", reason="书面函询")
    return case_id, api.open_task(case_id, "record_inquiry_reply")["id"]


def _sql(services, statement) -> None:
    with services.db.unit_of_work() as session:
        session.execute(statement)


def _state(services, case_id: int) -> tuple:
    with services.db.unit_of_work(write=False) as session:
        case = session.scalar(select(Case).where(Case.id == case_id))
        entries = session.scalar(select(HistoryEntry.seq).where(HistoryEntry.case_id == case_id)
                                 .order_by(HistoryEntry.seq.desc()).limit(1))
        return case.process_version.version, case.state, case.history_hash, entries


TAMPERS = {  # as tests/service/test_check_records.py changes them
    "taken without a claim": lambda case_id, task_id, due: update(Task).where(Task.id == task_id).values(
        assignee="discipline2"),
    "deadline pushed back": lambda case_id, task_id, due: update(Task).where(Task.id == task_id).values(
        due_at=due + timedelta(days=90)),
    "data rewritten": lambda case_id, task_id, due: update(Case).where(Case.id == case_id).values(
        data={"cadre_id": "c1", "summary": "改过"}),
}


@pytest.mark.parametrize("tamper", sorted(TAMPERS))
def test_a_tampered_case_is_refused_by_a_migration_and_the_others_migrate(api, services, cadre, tamper):
    """Tampered as `check` names it: the case's migration and its dry run are a 409 saying why; the process's dry
    run reports it refused with the reason (designers too: no case data in it), the real run leaves it on its
    version with its state and history as they were, and the clean case moves. `check` still names it after."""
    (tampered, task_id), (clean, _) = _inquiry(api), _inquiry(api)
    with services.db.unit_of_work(write=False) as session:
        due = session.scalar(select(Task.due_at).where(Task.id == task_id))
    _sql(services, TAMPERS[tamper](tampered, task_id, due))
    faults = check_cases(services, 3600)[1]
    assert faults and all(f.startswith(f"case {tampered}: ") for f in faults), faults
    deployed(deploy(api, ADMONISHMENT, admonishment_variant()), 2)
    before = _state(services, tampered)

    one = migrate(api, tampered)  # the case's own migration, and its dry run
    assert one.status_code == 409 and REFUSED in one.json["error"]["message"], one.json
    dry = migrate(api, tampered, dry_run=True)
    assert dry.status_code == 409 and REFUSED in dry.json["error"]["message"], dry.json

    for dry_run in (True, False):  # the process's migration: the dry run's answer, then the real run's
        url = f"/api/processes/{ADMONISHMENT}/migrate" + ("?dry_run=1" if dry_run else "")
        report = api.post(url, as_="admin", json={}).json
        outcomes = {case["case_id"]: case for case in report["cases"]}
        assert outcomes[tampered]["status"] == "refused", report
        assert REFUSED in outcomes[tampered]["reason"], report
        assert outcomes[clean]["status"] == ("ok" if dry_run else "migrated"), report
        assert {"reason": REFUSED, "cases": 1, "tasks": ["record_inquiry_reply"]} in report["refusals"], report
    assert _state(services, tampered) == before  # on its version, untouched
    assert check_cases(services, 3600)[1] == faults  # still named, nothing laundered


def test_the_migrations_check_costs_the_same_few_statements_however_long_the_case(api, services, cadre):
    """The case's rows are read as `check` reads a batch, each kind in one statement: a case with many comments,
    claims and hand-backs costs its dry run no more statements than a fresh one."""
    (short, _), (long, task_id) = _inquiry(api), _inquiry(api)
    for number in range(6):
        commented = api.post(f"/api/cases/{long}/comments", as_="discipline", json={"text": f"意见{number}"})
        assert commented.status_code == 201, commented.json
        for action in ("claim", "unclaim"):
            assert api.post(f"/api/tasks/{task_id}/{action}", as_="discipline").status_code == 200
    deployed(deploy(api, ADMONISHMENT, admonishment_variant()), 2)
    counts = []
    for case_id in (short, long):
        with statements_sent(services.db) as sent:
            assert migrate(api, case_id, dry_run=True).status_code == 200
        counts.append(len(sent))
    assert counts[0] == counts[1], counts


def test_a_return_does_not_hand_a_task_to_a_forged_completer(api, services, returnable):  # noqa: F811 - the fixture
    """A return reopens the earlier task for whoever completed it, as its row says, and its entry records that
    holder: a completer forged with SQL (named by `check`) would get the task and the fault would go, since only
    completed rows are held to their `complete` entry. The return is refused the same way, nothing changed."""
    case_id, intake_id = returnable
    _sql(services, update(Task).where(Task.id == intake_id).values(completed_by="discipline"))
    faults = check_cases(services, 3600)[1]
    assert faults == [f"case {case_id}: task {intake_id} differs from its history entry (记录与履历不符，可能被改动)"]
    before = _state(services, case_id)
    returned = send_back(api, api.open_task(case_id, "conduct_talk")["id"], "discipline")
    assert returned.status_code == 409 and REFUSED in returned.json["error"]["message"], returned.json
    assert _state(services, case_id) == before
    assert check_cases(services, 3600)[1] == faults
