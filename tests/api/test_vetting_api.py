"""Pre-appointment vetting (任前监督) over HTTP: every path, the message, the timer, cross-case effects."""

from __future__ import annotations

import time
from datetime import date, timedelta

from service.usecases.timers import fire_due_timers
from tests.api.support import (
    STEP2_TASKS,
    TIMER_WAIT,
    VETTING,
    finish_opinions,
    hold_in_incident,
    sanction,
    send_objection,
    start_accountability,
    start_vetting,
    vetting_to_notice,
)


def test_eligible_cadre_opens_the_four_parallel_org_dept_tasks(api, cadre):
    """An eligible cadre's case opens the three opinion tasks and the evaluation at once, all org_dept."""
    case = start_vetting(api)
    assert case["status"] == "open" and case["process"] == VETTING and case["process_version"] == 1
    assert {t["element_id"] for t in case["open_tasks"]} == STEP2_TASKS
    assert {t["role"] for t in case["open_tasks"]} == {"org_dept"}
    assert case["data"]["eligible"] is True
    assert case["data"]["proposed_post"] == "县发改局局长"


def test_org_head_review_waits_for_all_four_tasks(api, cadre):
    """org_head_review opens only after the last of the four parallel tasks."""
    case_id = start_vetting(api)["id"]
    api.complete(case_id, "solicit_family_opinion", opinion="neutral")
    api.complete(case_id, "democratic_evaluation", votes_approve=0, votes_basic=0, votes_disapprove=1)
    assert api.open_elements(case_id) == ["solicit_colleague_opinion", "solicit_public_opinion"]
    api.complete(case_id, "solicit_colleague_opinion", opinion="negative", notes="有意见")
    case = api.complete(case_id, "solicit_public_opinion", opinion="positive")
    assert [(t["element_id"], t["role"]) for t in case["open_tasks"]] == [("org_head_review", "org_head")]
    assert case["data"]["results"]["solicit_colleague_opinion"] == {"opinion": "negative", "notes": "有意见"}
    assert case["data"]["votes_disapprove"] == 1


def test_objection_not_substantiated_then_appoint_changes_post(api):
    """Unfounded objection → committee; appoint → cadre takes the proposed post from today; appointed.
    (A middle-level cadre: a sitting leading cadre's audit first is tested in test_audit_first.py.)"""
    api.create_cadre("c1", post_level="middle")
    services = api.client.application.extensions["cadreflow"]
    case_id = vetting_to_notice(api, post="县委办公室主任")
    response = send_objection(api, case_id, report="匿名举报")
    assert response.status_code == 202
    case = api.case(case_id)
    assert [(t["element_id"], t["role"]) for t in case["open_tasks"]] == [("verify_objection", "discipline")]
    assert case["data"]["objection"] == {"report": "匿名举报"}
    api.complete(case_id, "verify_objection", substantiated=False, notes="查无实据")
    assert api.open_elements(case_id) == ["committee_decision"]
    case = api.complete(case_id, "committee_decision", decision="appoint")
    assert (case["status"], case["outcome"], case["open_tasks"]) == ("completed", "appointed", [])
    cadre = api.cadre("c1")
    assert cadre["post"] == "县委办公室主任"
    assert cadre["post_started_on"] == services.today().isoformat()


def test_committee_not_appoint_leaves_post_alone(api, cadre):
    """not_appoint → outcome not_appointed and the cadre keeps the old post."""
    case_id = vetting_to_notice(api)
    send_objection(api, case_id)
    api.complete(case_id, "verify_objection", substantiated=False)
    case = api.complete(case_id, "committee_decision", decision="not_appoint", comment="暂缓")
    assert (case["status"], case["outcome"]) == ("completed", "not_appointed")
    assert (api.cadre()["post"], api.cadre()["post_started_on"]) == ("副局长", "2015-03-01")


def test_substantiated_objection_rejects(api, cadre):
    """A substantiated objection during the notice ends the case rejected, post unchanged."""
    case_id = vetting_to_notice(api)
    assert send_objection(api, case_id).status_code == 202
    case = api.complete(case_id, "verify_objection", substantiated=True, notes="属实")
    assert (case["status"], case["outcome"], case["open_tasks"]) == ("completed", "rejected", [])
    assert api.cadre()["post"] == "副局长"


def test_org_head_reject_ends_rejected(api, cadre):
    """reject at org_head_review → outcome rejected, no notice, no committee."""
    case_id = start_vetting(api)["id"]
    finish_opinions(api, case_id)
    case = api.complete(case_id, "org_head_review", decision="reject", comment="不宜提拔")
    assert (case["status"], case["outcome"], case["open_tasks"]) == ("completed", "rejected", [])
    assert case["next_timer_due"] is None
    assert send_objection(api, case_id).status_code == 409


def test_org_head_return_reopens_all_four_tasks_each_time(api, cadre):
    """return → the four tasks of step 2 open again (twice), then approve reaches the notice."""
    case_id = start_vetting(api)["id"]
    for _ in range(2):
        finish_opinions(api, case_id)
        case = api.complete(case_id, "org_head_review", decision="return", comment="补充意见")
        assert case["status"] == "open"
        assert {t["element_id"] for t in case["open_tasks"]} == STEP2_TASKS
    finish_opinions(api, case_id)
    case = api.complete(case_id, "org_head_review", decision="approve")
    assert case["open_tasks"] == [] and case["status"] == "open" and case["next_timer_due"]
    completions = [e for e in api.history(case_id) if e["action"] == "complete"]
    assert sum(e["task"] == "democratic_evaluation" for e in completions) == 3
    assert sum(e["task"] == "org_head_review" for e in completions) == 3


def test_message_accepted_only_while_waiting(api, cadre):
    """vetting_objection: 409 before the notice, 202 during it, 409 once taken, 409 after the case ends."""
    case_id = start_vetting(api)["id"]
    early = send_objection(api, case_id)
    assert early.status_code == 409 and early.json["error"]["code"] == "conflict"
    assert {t["element_id"] for t in api.case(case_id)["open_tasks"]} == STEP2_TASKS
    finish_opinions(api, case_id)
    api.complete(case_id, "org_head_review", decision="approve")
    assert send_objection(api, case_id, as_="org_dept").status_code == 202
    assert send_objection(api, case_id).status_code == 409
    api.complete(case_id, "verify_objection", substantiated=True)
    assert send_objection(api, case_id).status_code == 409
    assert api.case(case_id)["outcome"] == "rejected"


def test_message_to_unknown_case_is_404(api):
    """A message for a case that does not exist → 404."""
    response = send_objection(api, 999_999)
    assert response.status_code == 404 and response.json["error"]["code"] == "not_found"


def test_message_of_another_name_is_409(api, cadre):
    """A case in its notice waits for vetting_objection only: any other name → 409."""
    case_id = vetting_to_notice(api)
    response = api.post("/api/messages", json={"name": "something_else", "case_id": case_id, "data": {}})
    assert response.status_code == 409
    assert api.case(case_id)["open_tasks"] == []


def test_public_notice_expiry_goes_to_committee(fast_api, patient_api, fast_services):
    """When the notice period passes without objection the committee decides; a late objection → 409."""
    fast_api.create_cadre("c1", post_level="staff")
    fast_api.create_cadre("c2")
    # The objected case's notice lasts 30 days, so its objection never races a one-second deadline on a
    # loaded machine; firing the others' timers must still leave it alone.
    objected = vetting_to_notice(patient_api, "c2")
    assert send_objection(patient_api, objected).status_code == 202
    expiring = vetting_to_notice(fast_api, "c1", post="县财政局局长")
    late = vetting_to_notice(fast_api, "c2")
    time.sleep(TIMER_WAIT)
    # The deadline has passed but no worker has fired it yet: the notice is over all the same (the message fires
    # the case's due timer first), so the objection is refused and the committee decides.
    assert send_objection(fast_api, late).status_code == 409
    assert fast_api.open_elements(late) == ["committee_decision"]
    assert fire_due_timers(fast_services) >= 1

    assert fast_api.open_elements(expiring) == ["committee_decision"]
    assert fast_api.open_elements(objected) == ["verify_objection"]
    timers = [e for e in fast_api.history(expiring) if e["action"] == "timer"]
    assert [e["actor"] for e in timers] == ["system"]
    assert send_objection(fast_api, expiring).status_code == 409
    case = fast_api.complete(expiring, "committee_decision", decision="appoint")
    assert case["outcome"] == "appointed"
    assert fast_api.cadre("c1")["post"] == "县财政局局长"


def test_promotion_ban_makes_cadre_ineligible(api, cadre):
    """A sanctioned cadre (ban until today + 6 months) is ineligible: outcome ineligible, promotion_ban."""
    sanction(api, "public_apology")
    case = start_vetting(api)
    assert (case["status"], case["outcome"], case["open_tasks"]) == ("completed", "ineligible", [])
    assert case["data"]["ineligible_reason"] == "promotion_ban"
    assert case["data"]["eligible"] is False
    assert api.cadre()["post"] == "副局长"


def test_open_accountability_makes_cadre_ineligible_until_it_closes(api, cadre):
    """An open accountability case → ineligible (open_accountability); unfounded and closed → eligible again."""
    accountability_id = start_accountability(api)["id"]
    blocked = start_vetting(api)
    assert (blocked["status"], blocked["outcome"]) == ("completed", "ineligible")
    assert blocked["data"]["ineligible_reason"] == "open_accountability"
    api.complete(accountability_id, "preliminary_verification", founded=False)
    again = start_vetting(api)
    assert again["status"] == "open" and again["outcome"] is None
    assert {t["element_id"] for t in again["open_tasks"]} == STEP2_TASKS


def test_accountability_opened_while_the_vetting_runs_stops_the_appointment(api, cadre):
    """Eligible at the start, the cadre falls under accountability during the notice: the committee's appoint
    does not promote a cadre under accountability (seed 三(五)); the case ends ineligible, the post unchanged."""
    api.create_cadre("c9", post_level="middle")
    case_id = vetting_to_notice(api, "c9")
    start_accountability(api, "c9")
    assert send_objection(api, case_id).status_code == 202
    api.complete(case_id, "verify_objection", substantiated=False, notes="举报不实")
    case = api.complete(case_id, "committee_decision", decision="appoint")
    assert (case["status"], case["outcome"], case["data"]["ineligible_reason"]) == (
        "completed", "ineligible", "open_accountability")
    assert api.cadre("c9")["post"] == "副局长"


def test_a_ban_decided_while_the_vetting_runs_stops_the_appointment(api, cadre):
    """A sanction decided during the vetting bans promotion for six months from then: appoint ends ineligible."""
    api.create_cadre("c9", post_level="middle")
    case_id = vetting_to_notice(api, "c9")
    sanction(api, "suspension", "c9")
    assert send_objection(api, case_id).status_code == 202
    api.complete(case_id, "verify_objection", substantiated=False, notes="举报不实")
    case = api.complete(case_id, "committee_decision", decision="appoint")
    assert (case["outcome"], case["data"]["ineligible_reason"]) == ("ineligible", "promotion_ban")
    assert api.cadre("c9")["post"] == "副局长"


def test_accountability_case_in_incident_still_makes_cadre_ineligible(api, services, cadre):
    """A case in incident (an automatic step failed) is not over: its cadre is still under accountability."""
    accountability_id = start_accountability(api)["id"]
    hold_in_incident(services, accountability_id)
    assert api.case(accountability_id)["status"] == "incident"
    blocked = start_vetting(api)
    assert (blocked["outcome"], blocked["data"]["ineligible_reason"]) == ("ineligible", "open_accountability")


def test_open_accountability_of_another_cadre_does_not_matter(api, cadre):
    """Only the subject cadre's own accountability cases count."""
    api.create_cadre("c2")
    start_accountability(api, "c2")
    assert start_vetting(api, "c1")["status"] == "open"


def test_promotion_ban_ends_on_its_last_day(api, services, cadre):
    """Ineligible while the ban date is after today; eligible again on the ban's last day."""
    services.today = lambda: date(2025, 3, 10)
    sanction(api, "suspension")
    assert api.cadre()["promotion_ban_until"] == "2025-09-10"
    services.today = lambda: date(2025, 9, 9)
    blocked = start_vetting(api)
    assert (blocked["outcome"], blocked["data"]["ineligible_reason"]) == ("ineligible", "promotion_ban")
    services.today = lambda: date(2025, 9, 10)
    allowed = start_vetting(api)
    assert allowed["status"] == "open" and allowed["data"]["eligible"] is True
    services.today = lambda: date(2025, 9, 10) + timedelta(days=400)
    assert start_vetting(api)["status"] == "open"
