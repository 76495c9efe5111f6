"""`cadreflow check` holds the rows the history vouches for to their entries: who completed each task, each
attachment and each comment; and each task's name to what its process version's diagram calls its step. An
insider with SQL rewriting one of those rows (the chain alone never sees them) is named, as is a row deleted or
one added behind the service's back."""

from __future__ import annotations

import io
from datetime import timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import delete, insert, select, update

from service.db.models import Attachment, Case, Comment, Notification, Task, TaskReminder, utcnow
from service.usecases.casehistory import lock_case, record
from service.usecases.check import TaskStates, check_cases
from tests.api.support import ADMONISHMENT, sanction, start_admonishment
from tests.api.test_designer_versions import admonishment_variant, deploy, deployed, migrate
from tests.api.test_public_report_api import start_report
from tests.api.test_return_api import returnable, send_back  # noqa: F401 - the fixture, used below

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture
def case_id(api, cadre) -> int:
    """An admonishment with a completed task, a file and a comment: a clean check to begin with."""
    case_id = start_admonishment(api)["id"]
    api.complete(case_id, "intake_review", form="talk", reason="情况属实，约谈")
    attached = api.post(f"/api/cases/{case_id}/attachments", as_="discipline",
                        data={"file": (io.BytesIO(PDF), "材料.pdf")}, content_type="multipart/form-data")
    assert attached.status_code == 201, attached.json
    commented = api.post(f"/api/cases/{case_id}/comments", as_="discipline", json={"text": "建议从轻处理"})
    assert commented.status_code == 201, commented.json
    return case_id


def _sql(services, statements) -> None:
    with services.db.unit_of_work() as session:
        for statement in statements if isinstance(statements, list) else [statements]:
            session.execute(statement)


def _completed_task_deleted(case_id: int) -> list:
    """The completed task's row and what refers to it (its notices and reminders), as a forger would."""
    done = select(Task.id).where(Task.case_id == case_id, Task.status == "completed").scalar_subquery()
    return [delete(Notification).where(Notification.task_id.in_(done)),
            delete(TaskReminder).where(TaskReminder.task_id.in_(done)),
            delete(Task).where(Task.case_id == case_id, Task.status == "completed")]


FORGERIES = {
    "completed by someone else": (lambda case_id: update(Task).where(
        Task.case_id == case_id, Task.status == "completed").values(completed_by="org_head"), "differs"),
    "completed task deleted": (_completed_task_deleted, "is gone"),
    "attachment renamed": (lambda case_id: update(Attachment).where(
        Attachment.case_id == case_id).values(filename="换过.pdf"), "differs"),
    "attachment re-attributed": (lambda case_id: update(Attachment).where(
        Attachment.case_id == case_id).values(uploaded_by="org_head"), "differs"),
    "attachment retyped": (lambda case_id: update(Attachment).where(
        Attachment.case_id == case_id).values(content_type="text/html"), "differs"),
    "attachment deleted": (lambda case_id: delete(Attachment).where(Attachment.case_id == case_id), "is gone"),
    "comment rewritten": (lambda case_id: update(Comment).where(
        Comment.case_id == case_id).values(text="建议从重处分"), "differs"),
    "comment deleted": (lambda case_id: delete(Comment).where(Comment.case_id == case_id), "is gone"),
    "completed task renamed": (lambda case_id: update(Task).where(
        Task.case_id == case_id, Task.status == "completed").values(name="审批通过"), "calls step"),
    "open task renamed": (lambda case_id: update(Task).where(
        Task.case_id == case_id, Task.status == "open").values(name="县委常委会审议"), "calls step"),
    "task moved to a step its version lacks": (lambda case_id: update(Task).where(
        Task.case_id == case_id, Task.status == "completed").values(element_id="approve"),
        "is not in its process version"),
    "comment slipped in": (lambda case_id: insert(Comment).values(
        case_id=case_id, author="discipline_head", text="同意", at=utcnow()), "has no history entry"),
}


@pytest.mark.parametrize("forgery", sorted(FORGERIES))
def test_a_row_changed_behind_the_services_back_is_named(services, case_id, forgery):
    assert check_cases(services, 3600) == (1, [])
    statement, phrase = FORGERIES[forgery]
    _sql(services, statement(case_id))
    checked, faults = check_cases(services, 3600)
    assert checked == 1 and faults and all(f.startswith(f"case {case_id}: ") for f in faults), faults
    assert any(phrase in fault for fault in faults), faults


def test_a_returned_task_and_its_second_completion_are_no_fault(api, services, returnable):  # noqa: F811
    """A return opens the earlier task again under its id while its `complete` entry stays; completed again, by
    someone else, its row follows the newer entry. Neither is a forgery."""
    case_id, intake_id = returnable
    assert send_back(api, api.open_task(case_id, "conduct_talk")["id"], "discipline").status_code == 200
    assert check_cases(services, 3600) == (1, [])  # reopened: its complete entry has an open row
    assert api.post(f"/api/tasks/{intake_id}/unclaim", as_="discipline2").status_code == 200
    assert api.complete_raw(intake_id, "discipline", {"form": "talk", "reason": "补充后属实"}).status_code == 200
    assert check_cases(services, 3600) == (1, [])


def test_task_names_of_every_version_a_case_ran_on_are_no_fault(api, services, case_id):
    """A task's name is held to the version its row names: a completed task keeps the name of the version it was
    completed on, an open one migrated to a version that renames its step takes the new name; neither is a fault."""
    waiting = start_admonishment(api)["id"]
    deployed(deploy(api, ADMONISHMENT, admonishment_variant("受理审核（第二版）")), 2)
    for moved in (case_id, waiting):
        assert migrate(api, moved).status_code == 200
    assert api.open_task(waiting, "intake_review")["name"] == "受理审核（第二版）"
    assert check_cases(services, 3600) == (2, [])


def test_an_attachment_recorded_before_its_type_was_is_no_fault(services, case_id):
    """An `attach` entry written before entries named the file's type vouches for the rest of its row only: such
    an attachment checks clean (its type is served opaque unless sniffing could have given it)."""
    with services.db.unit_of_work() as session:
        case = lock_case(session, case_id)
        row = Attachment(case_id=case_id, filename="旧材料.pdf", content_type="application/pdf", size=len(PDF),
                         sha256=services.files.put(PDF), uploaded_by="discipline", at=utcnow())
        session.add(row)
        session.flush()
        record(session, case, "discipline", "attach", None,
               {"attachment_id": row.id, "filename": row.filename, "size": row.size, "sha256": row.sha256})
    assert check_cases(services, 3600) == (1, [])


def _other_case(api) -> int:
    """A second cadre's admonishment: somewhere to move a case, or a parent to give it."""
    api.create_cadre("c2")
    return start_admonishment(api, cadre_id="c2")["id"]


CASE_ROW_FORGERIES = {
    # An admonishment taken off its cadre's record and put on someone else's: the cadre page, the ledgers and
    # the cadre's case list all read the case's cadre column.
    "moved to another cadre": (lambda case_id, other: {"cadre_id": "c2"}, "cadre c2"),
    "taken off any cadre": (lambda case_id, other: {"cadre_id": None}, "cadre None"),
    "started by someone else": (lambda case_id, other: {"created_by": "discipline_head"}, "started by"),
    "made another case's child": (lambda case_id, other: {"parent_case_id": other}, "child of"),
}


@pytest.mark.parametrize("forgery", sorted(CASE_ROW_FORGERIES))
def test_a_case_row_whose_cadre_starter_or_parent_was_changed_with_sql_is_named(api, services, case_id, forgery):
    """The case's start entry names its cadre (and each `link_cadre` entry a later one), who started it and its
    parent: the row is held to them, so a case moved to another cadre's record with SQL is named."""
    other = _other_case(api)
    assert check_cases(services, 3600) == (2, [])
    values, phrase = CASE_ROW_FORGERIES[forgery]
    _sql(services, update(Case).where(Case.id == case_id).values(**values(case_id, other)))
    checked, faults = check_cases(services, 3600)
    assert checked == 2 and faults and all(f.startswith(f"case {case_id}: ") for f in faults), faults
    assert any(phrase in fault for fault in faults), faults


def test_a_cadre_linked_by_triage_and_a_child_case_are_no_fault(api, services, cadre):
    """A public report has no cadre until triage links one (a `link_cadre` entry), and its child case is started
    by the triage with the report as parent: both check clean."""
    case = api.complete(start_report(api)["id"], "triage_report", decision="accountability", cadre_id="c1")
    assert case["cadre_id"] == "c1" and case["child_case_ids"]
    assert check_cases(services, 3600) == (2, [])


def test_a_case_ended_with_sql_is_named_and_one_cancelled_by_the_service_is_not(api, services, case_id):
    """An insider ends a case against a cadre quietly: status `cancelled` (or `completed`) and its open tasks closed
    with SQL, no `cancel` entry in its history. The engine still has it running: named. A case an admin cancels
    through the service checks clean."""
    cancelled = start_admonishment(api)["id"]
    assert api.post(f"/api/cases/{cancelled}/cancel", json={"reason": "重复立案"}).status_code == 200
    assert check_cases(services, 3600) == (2, [])
    for status in ("cancelled", "completed"):
        _sql(services, [update(Case).where(Case.id == case_id).values(status=status),
                        update(Task).where(Task.case_id == case_id, Task.status == "open").values(status="cancelled")])
        checked, faults = check_cases(services, 3600)
        assert checked == 2 and faults and all(f.startswith(f"case {case_id}: ") for f in faults), (status, faults)
        assert any(f"marked {status} but the engine has it running" in fault for fault in faults), faults
        if status == "cancelled":  # and, whatever the engine's state says, no entry cancels it
            assert any("no entry of its history cancels it" in fault for fault in faults), faults


def test_a_case_whose_outcome_or_data_was_rewritten_with_sql_is_named(api, services, case_id):
    """The case row's `outcome` and `data` are what its engine state gives (steps.apply_step stores both from one
    step): an accountability decided as a removal shown as another outcome, or a task's recorded answer changed in the
    row that the case page, the documents and the ledgers read, is named."""
    decided = sanction(api, "removal")
    assert decided["status"] == "completed" and decided["outcome"], decided
    assert check_cases(services, 3600)[1] == []
    _sql(services, update(Case).where(Case.id == decided["id"]).values(outcome="no_sanction"))
    faults = check_cases(services, 3600)[1]
    assert len(faults) == 1 and faults[0].startswith(f"case {decided['id']}: ") and "outcome" in faults[0], faults
    _sql(services, update(Case).where(Case.id == decided["id"]).values(outcome=decided["outcome"]))
    data = api.case(case_id)["data"]
    _sql(services, update(Case).where(Case.id == case_id).values(data={**data, "reason": "查无实据"}))
    faults = check_cases(services, 3600)[1]
    assert len(faults) == 1 and faults[0].startswith(f"case {case_id}: ") and "data" in faults[0], faults


def test_an_open_task_moved_to_another_lane_with_sql_is_named(api, services, case_id):
    """The committee's decision handed to org_dept's lane with SQL lets org_dept decide it (the inbox and the
    completion read the row's role); the engine state says whose lane it is: named."""
    with services.db.unit_of_work(write=False) as session:
        task_id, role = session.execute(select(Task.id, Task.role).where(
            Task.case_id == case_id, Task.status == "open")).one()
    other = "org_dept" if role != "org_dept" else "committee"
    _sql(services, update(Task).where(Task.id == task_id).values(role=other))
    faults = check_cases(services, 3600)[1]
    assert faults == [f"case {case_id}: open task {task_id} is in the lane of {other}, the engine's of {role} "
                      "(待办任务的角色与流程状态不符，可能被改动)"], faults


@pytest.fixture
def inquiry(api, cadre) -> tuple[int, str]:
    """An admonishment waiting for the inquiry's reply (discipline's lane, due by the diagram's deadline)."""
    case_id = start_admonishment(api)["id"]
    api.complete(case_id, "intake_review", form="inquiry", reason="书面函询")
    return case_id, api.open_task(case_id, "record_inquiry_reply")["id"]


def _holder_and_due(services, task_id: str) -> tuple:
    with services.db.unit_of_work(write=False) as session:
        return tuple(session.execute(select(Task.assignee, Task.due_at).where(Task.id == task_id)).one())


def test_an_open_task_taken_or_given_with_sql_is_named(api, services, inquiry):
    """An insider sets the task's holder to themself (or anyone) with SQL, no `claim` entry written: only they may
    complete it now. The history and the engine say who holds it: named, and no fault once it is put back."""
    case_id, task_id = inquiry
    assert check_cases(services, 3600) == (1, [])
    _sql(services, update(Task).where(Task.id == task_id).values(assignee="discipline2"))
    assert check_cases(services, 3600)[1] == [
        f"case {case_id}: open task {task_id} is held by discipline2, its history says by nobody "
        "(待办任务的办理人与履历不符，可能被改动)"]
    _sql(services, update(Task).where(Task.id == task_id).values(assignee=None))
    assert check_cases(services, 3600) == (1, [])


@pytest.mark.parametrize("forged", ["later", "none", "earlier"])
def test_an_open_tasks_deadline_moved_with_sql_is_named(api, services, inquiry, forged):
    """Pushing the deadline back (or clearing it) hides an overdue task from the discipline inspectors, with no
    `extend` entry; pulling it earlier makes its holder look late. The engine's timer says when it is due: named."""
    case_id, task_id = inquiry
    due = _holder_and_due(services, task_id)[1]
    assert due is not None and check_cases(services, 3600) == (1, [])
    moved = {"later": due + timedelta(days=90), "none": None, "earlier": due - timedelta(days=1)}[forged]
    _sql(services, update(Task).where(Task.id == task_id).values(due_at=moved))
    assert check_cases(services, 3600)[1] == [
        f"case {case_id}: open task {task_id} is due {moved.isoformat() if moved else None}, the engine state and "
        f"its history say {due.isoformat()} (待办任务的期限与流程状态和履历不符，可能被改动)"]


def test_claims_reassignments_extensions_and_hand_backs_are_no_fault(api, services, inquiry):
    """Each change the service makes to who holds a task or when it is due is in the history: the check follows
    them; a former holder written back with SQL after an unclaim is still named."""
    case_id, task_id = inquiry
    steps = [("claim", "discipline", {}), ("assign", "discipline", {"username": "discipline2"}),
             ("extend", "discipline_head", {"until": "2099-01-01", "reason": "材料需补充"}),
             ("unclaim", "discipline2", {}), ("assign", "discipline_head", {"username": "discipline"})]
    for action, as_, body in steps:
        response = api.post(f"/api/tasks/{task_id}/{action}", as_=as_, json=body)
        assert response.status_code == 200, (action, response.json)
        assert check_cases(services, 3600) == (1, []), action
    assert _holder_and_due(services, task_id)[0] == "discipline"
    _sql(services, update(Task).where(Task.id == task_id).values(assignee="discipline2"))
    assert check_cases(services, 3600)[1] == [
        f"case {case_id}: open task {task_id} is held by discipline2, its history says by discipline "
        "(待办任务的办理人与履历不符，可能被改动)"]


def test_a_diagram_assignment_to_someone_away_and_a_deactivated_holder_are_no_fault(api, services, cadre):
    """A task the diagram gives a named user goes to their substitute while they are away (a `substitute` entry);
    a deactivated holder's tasks go back to the role (an `unclaim` entry): neither is a fault."""
    api.call("PUT", "/api/me/substitute", "discipline2", json={"username": "discipline", "until": "2099-01-01"})
    case_id = start_admonishment(api)["id"]
    api.complete(case_id, "intake_review", form="inquiry", reason="书面函询")
    task_id = api.open_task(case_id, "record_inquiry_reply")["id"]
    assert api.post(f"/api/tasks/{task_id}/claim", as_="discipline2").status_code == 200
    assert check_cases(services, 3600) == (1, [])
    assert api.patch("/api/users/discipline2", json={"active": False}).status_code == 200
    assert _holder_and_due(services, task_id)[0] is None
    assert check_cases(services, 3600) == (1, [])


def test_history_entries_of_another_shape_do_not_stop_the_replay_of_holders():
    """An entry appended with SQL (its hash recomputed) may say anything: the check goes on to name what it can."""
    entries = [SimpleNamespace(action="claim", actor="x", detail={"task_id": ["not", "an", "id"]}),
               SimpleNamespace(action="extend", actor="x", detail={"task_id": "t1", "until": "next week"}),
               SimpleNamespace(action="extend", actor="x", detail={"task_id": "t2", "until": "2099-01-01T00:00:00"}),
               SimpleNamespace(action="assign", actor="x", detail="not a dict"),
               SimpleNamespace(action="return", actor="x", detail={"task_id": "t0", "holders": ["t3"]})]
    said = TaskStates.of(entries)
    assert (said.holders, said.until) == ({}, {"t1": None, "t2": None})
