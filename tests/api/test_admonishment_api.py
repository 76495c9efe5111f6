"""Admonishment (诫勉谈话) over HTTP: every form, the rectification loop, timers and escalation."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from service.db.models import Task
from tests.api.support import (
    ACCOUNTABILITY,
    ADMONISHMENT,
    TIMER_WAIT,
    admonishment_to_follow_up,
    assert_error,
    fire_after_deadline,
    start_admonishment,
    start_vetting,
)


def test_intake_review_is_discipline_task(api, cadre):
    """A new case waits for intake_review by discipline, with the start data in its data."""
    case = start_admonishment(api, trigger="inspection")
    assert [(t["element_id"], t["role"]) for t in case["open_tasks"]] == [("intake_review", "discipline")]
    assert case["data"]["trigger"] == "inspection" and case["data"]["cadre_id"] == "c1"


def test_dismiss_ends_dismissed(api, cadre):
    """form dismiss → outcome dismissed."""
    case_id = start_admonishment(api)["id"]
    case = api.complete(case_id, "intake_review", form="dismiss", reason="不构成诫勉情形")
    assert (case["status"], case["outcome"], case["open_tasks"]) == ("completed", "dismissed", [])


@pytest.mark.parametrize(("form", "task", "fields"), [
    ("talk", "conduct_talk", {"talk_date": "2024-05-01", "minutes": "谈话记录"}),
    ("written", "issue_written_admonishment", {"letter_ref": "纪诫〔2024〕3号"}),
    ("inquiry", "record_inquiry_reply", {"reply": "已说明情况"}),
])
def test_each_form_leads_to_its_task_then_rectification_and_rectified(api, cadre, form, task, fields):
    """talk / written / inquiry each open their own discipline task; then plan, follow-up yes → rectified."""
    case_id = start_admonishment(api)["id"]
    case = api.complete(case_id, "intake_review", form=form, reason="情况属实")
    assert [(t["element_id"], t["role"]) for t in case["open_tasks"]] == [(task, "discipline")]
    case = api.complete(case_id, task, **fields)
    assert [(t["element_id"], t["role"]) for t in case["open_tasks"]] == [("rectification_plan", "discipline")]
    assert all(case["data"][key] == value for key, value in fields.items())
    api.complete(case_id, "rectification_plan", plan="限期整改")
    follow_up = api.open_task(case_id, "follow_up_review")
    assert follow_up["role"] == "discipline" and follow_up["due_at"] and follow_up["overdue"] is False
    case = api.complete(case_id, "follow_up_review", rectified="yes")
    assert (case["status"], case["outcome"], case["open_tasks"]) == ("completed", "rectified", [])


def test_partial_rectification_loops_back_to_the_plan(api, cadre):
    """rectified partial → rectification_plan again (twice), then yes → rectified."""
    case_id = admonishment_to_follow_up(api)
    for round_ in range(2):
        case = api.complete(case_id, "follow_up_review", rectified="partial")
        assert [t["element_id"] for t in case["open_tasks"]] == ["rectification_plan"]
        api.complete(case_id, "rectification_plan", plan=f"第{round_ + 2}轮整改")
    case = api.complete(case_id, "follow_up_review", rectified="yes")
    assert case["outcome"] == "rectified"
    assert case["data"]["plan"] == "第3轮整改"


def test_not_rectified_head_declines_to_escalate(api, cadre):
    """rectified no → escalation_review (discipline_head); escalate false → closed, no child case."""
    case_id = admonishment_to_follow_up(api)
    case = api.complete(case_id, "follow_up_review", rectified="no")
    assert [(t["element_id"], t["role"]) for t in case["open_tasks"]] == [("escalation_review", "discipline_head")]
    case = api.complete(case_id, "escalation_review", escalate=False, reason="情节轻微")
    assert (case["status"], case["outcome"], case["child_case_ids"]) == ("completed", "closed", [])
    assert api.get("/api/cases", query_string={"process": ACCOUNTABILITY}).json["total"] == 0


def test_escalation_opens_linked_accountability_case(api, cadre):
    """escalate true → outcome escalated and a linked accountability case (admonishment_escalation) opens."""
    case_id = admonishment_to_follow_up(api)
    api.complete(case_id, "follow_up_review", rectified="no")
    case = api.complete(case_id, "escalation_review", escalate=True, reason="拒不整改")
    assert (case["status"], case["outcome"]) == ("completed", "escalated")
    assert len(case["child_case_ids"]) == 1
    child = api.case(case["child_case_ids"][0])
    assert child["process"] == ACCOUNTABILITY and child["status"] == "open"
    assert child["cadre_id"] == "c1" and child["parent_case_id"] == case_id
    assert child["data"]["source"] == "admonishment_escalation"
    assert child["data"]["allegation"]
    assert [(t["element_id"], t["role"]) for t in child["open_tasks"]] == [("preliminary_verification", "discipline")]
    assert {c["process"] for c in api.cadre()["cases"]} == {"admonishment", ACCOUNTABILITY}
    start = api.history(child["id"])[0]
    assert (start["action"], start["actor"]) == ("start", "system")
    vetting = start_vetting(api)
    assert (vetting["outcome"], vetting["data"]["ineligible_reason"]) == ("ineligible", "open_accountability")


def test_escalating_a_case_whose_summary_is_at_its_limit_shortens_the_allegation(api, cadre):
    """The allegation is 诫勉整改不到位： + the summary: at the summary's 2,000 characters it would pass the
    allegation's 2,000 and refuse the head's escalation; it is shortened to fit, ending in …."""
    case_id = api.start(ADMONISHMENT, "c1", as_="discipline", trigger="complaint", summary="长" * 2000)["id"]
    api.complete(case_id, "intake_review", form="talk", reason="情况属实")
    api.complete(case_id, "conduct_talk", talk_date="2024-05-01", minutes="谈话记录")
    api.complete(case_id, "rectification_plan", plan="整改措施")
    api.complete(case_id, "follow_up_review", rectified="no")
    case = api.complete(case_id, "escalation_review", escalate=True, reason="拒不整改")
    assert (case["status"], case["outcome"]) == ("completed", "escalated")
    allegation = api.case(case["child_case_ids"][0])["data"]["allegation"]
    assert allegation == "诫勉整改不到位：" + "长" * 1991 + "…"
    assert api.case(case_id)["data"]["summary"] == "长" * 2000


def test_timers_inquiry_timeout_and_follow_up_escalation(fast_api, fast_services):
    """No inquiry reply in time → escalation_review; slow follow-up → supervise task, original overdue."""
    api = fast_api
    api.create_cadre("c1")
    inquiry = start_admonishment(api)["id"]
    api.complete(inquiry, "intake_review", form="inquiry", reason="书面函询")
    follow_up = admonishment_to_follow_up(api)
    calm = start_admonishment(api)["id"]  # waits at intake_review: no timer
    looping = admonishment_to_follow_up(api)
    assert fire_after_deadline(fast_services) == 3

    case = api.case(inquiry)
    assert [(t["element_id"], t["role"]) for t in case["open_tasks"]] == [("escalation_review", "discipline_head")]
    assert any(e["action"] == "timer" and e["actor"] == "system" for e in api.history(inquiry))

    assert api.open_elements(follow_up) == ["follow_up_review", "supervise_follow_up_review"]
    supervise = api.open_task(follow_up, "supervise_follow_up_review")
    assert supervise["role"] == "discipline_head"
    inbox = {t["element_id"]: t for t in api.inbox("discipline", case_id=follow_up)}
    assert inbox["follow_up_review"]["overdue"] is True
    assert "supervise_follow_up_review" not in inbox
    assert [t["element_id"] for t in api.inbox("discipline_head", case_id=follow_up)] == ["supervise_follow_up_review"]
    overdue_ids = {c["id"] for c in api.get("/api/cases", query_string={"overdue": 1}).json["items"]}
    assert follow_up in overdue_ids and calm not in overdue_ids
    assert {t["case_id"] for t in api.inbox("discipline", overdue=1)} >= {follow_up}
    assert calm not in {t["case_id"] for t in api.inbox("discipline", overdue=1)}

    api.complete(follow_up, "supervise_follow_up_review", instruction="限三日内回访")
    assert api.open_elements(follow_up) == ["follow_up_review"]
    case = api.complete(follow_up, "follow_up_review", rectified="yes")
    assert (case["status"], case["outcome"]) == ("completed", "rectified")
    case = api.complete(inquiry, "escalation_review", escalate=False)
    assert case["outcome"] == "closed"

    old = api.open_task(looping, "follow_up_review")
    assert old["overdue"] is True
    api.complete(looping, "follow_up_review", rectified="partial")
    case = api.complete(looping, "rectification_plan", plan="再整改")
    fresh = next(t for t in case["open_tasks"] if t["element_id"] == "follow_up_review")
    assert fresh["id"] != old["id"] and fresh["overdue"] is False and fresh["due_at"] > old["due_at"]
    # The overdue review answered, its supervision ended with it; the fresh review is not overdue yet.
    assert api.inbox("discipline_head", case_id=looping) == []
    case = api.complete(looping, "follow_up_review", rectified="yes")
    assert (case["outcome"], case["open_tasks"]) == ("rectified", [])
    assert api.inbox("discipline_head", case_id=looping) == []


# Amendments (second round): the organisation department starts admonishments too; 基本称职 makes 诫勉 mandatory.

def test_org_dept_may_start_an_admonishment(api, cadre):
    """org_dept starts an admonishment (seed 二(三)) and hands it to discipline: owning no lane of it and holding
    none of its tasks, it does not read it afterwards (404, API.md's need to know); audit may not start one (403)."""
    case = api.start(ADMONISHMENT, "c1", as_="org_dept", trigger="inspection", summary="组织部门谈话发现")
    assert "open_tasks" not in case  # told only what it sent (tests/api/test_start_answer.py)
    assert [(t["element_id"], t["role"]) for t in api.get(f"/api/cases/{case['id']}", as_="discipline").json[
        "open_tasks"]] == [("intake_review", "discipline")]
    assert_error(api.get(f"/api/cases/{case['id']}", as_="org_dept"), 404)
    assert case["id"] not in {c["id"] for c in api.get("/api/cases", as_="org_dept").json["items"]}
    body = {"process": ADMONISHMENT, "cadre_id": "c1", "data": {"trigger": "complaint", "summary": "x"}}
    assert api.post("/api/cases", as_="audit", json=body).status_code == 403


def test_dismiss_is_refused_for_a_basic_grade(api, cadre):
    """trigger assessment_basic: intake_review dismiss → 422 on form, the task stays; talk goes on."""
    case_id = start_admonishment(api, trigger="assessment_basic")["id"]
    task = api.open_task(case_id, "intake_review")
    response = api.complete_raw(task["id"], "discipline", {"form": "dismiss", "reason": "无需诫勉"})
    assert response.status_code == 422 and set(response.json["error"]["fields"]) == {"form"}
    assert "必须诫勉" in response.json["error"]["fields"]["form"]
    assert api.open_elements(case_id) == ["intake_review"]
    api.complete(case_id, "intake_review", form="talk", reason="基本称职，诫勉谈话")
    assert api.open_elements(case_id) == ["conduct_talk"]


@pytest.mark.parametrize("trigger", ["report_violation", "complaint", "inspection"])
def test_dismiss_still_ends_other_triggers(api, cadre, trigger):
    """Other triggers may still be dismissed: outcome dismissed."""
    case_id = start_admonishment(api, trigger=trigger)["id"]
    case = api.complete(case_id, "intake_review", form="dismiss", reason="查无实据")
    assert (case["status"], case["outcome"]) == ("completed", "dismissed")


def test_a_reply_after_the_inquiry_deadline_is_too_late_even_before_the_worker_fires(fast_api):
    """The inquiry_reply deadline passed and no worker has fired it yet: the late reply is refused (409) and
    the case is where the contract puts it, at escalation_review, not carried on as if the reply were in time."""
    fast_api.create_cadre("c1")
    case_id = start_admonishment(fast_api)["id"]
    fast_api.complete(case_id, "intake_review", form="inquiry", reason="书面函询")
    task = fast_api.open_task(case_id, "record_inquiry_reply")
    time.sleep(TIMER_WAIT)  # past the PT1S deadline; no fire_due_timers
    response = fast_api.complete_raw(task["id"], "discipline", {"reply": "迟到的回复"})
    assert_error(response, 409)
    assert fast_api.open_elements(case_id) == ["escalation_review"]
    assert any(e["action"] == "timer" for e in fast_api.history(case_id))


def test_a_follow_up_answered_after_its_deadline_is_taken_and_marked_overdue_first(fast_api, fast_services):
    """A non-interrupting deadline passed before the answer: the answer is taken, and the task's row says it
    was overdue (its supervision opened and ended with it), as when the worker fired first."""
    fast_api.create_cadre("c1")
    case_id = admonishment_to_follow_up(fast_api)
    time.sleep(TIMER_WAIT)
    case = fast_api.complete(case_id, "follow_up_review", rectified="yes")
    assert (case["status"], case["outcome"]) == ("completed", "rectified")
    assert any(e["action"] == "timer" for e in fast_api.history(case_id))
    with fast_services.db.unit_of_work(write=False) as session:
        tasks = session.scalars(select(Task).where(Task.case_id == case_id))
        rows = {t.element_id: (t.status, t.overdue) for t in tasks}
    assert rows["follow_up_review"] == ("completed", True)
    assert rows["supervise_follow_up_review"] == ("cancelled", False)


def test_an_inquiry_deadline_that_passed_is_not_extended_before_the_worker_fires(fast_api):
    """The reply's interrupting deadline passed, no worker has fired it: an extension would revive the
    inquiry the contract has closed. The deadline fires first; the extension finds the task gone (409)."""
    fast_api.create_cadre("c1")
    case_id = start_admonishment(fast_api)["id"]
    fast_api.complete(case_id, "intake_review", form="inquiry", reason="书面函询")
    task = fast_api.open_task(case_id, "record_inquiry_reply")
    time.sleep(TIMER_WAIT)
    response = fast_api.post(f"/api/tasks/{task['id']}/extend", as_="discipline_head",
                             json={"until": "2099-01-01", "reason": "当事人申请延期"})
    assert_error(response, 409)
    assert fast_api.open_elements(case_id) == ["escalation_review"]
