"""pre_appointment_vetting (docs/processes.md §1): eligibility DMN, opinions, review loop, notice, decision."""

from __future__ import annotations

import pytest

from tests.engine.helpers import TODAY, Driver
from workflows.engine import NotWaiting

KEY = "pre_appointment_vetting"
START = {"cadre_id": "c1", "proposed_post": "县发改局局长", "selection_method": "competitive"}
OPINION_TASKS = ["democratic_evaluation", "solicit_colleague_opinion", "solicit_family_opinion",
                 "solicit_public_opinion"]
VOTES = {"votes_approve": 30, "votes_basic": 5, "votes_disapprove": 1}


def give_opinions(driver: Driver, opinion: str = "positive") -> None:
    for element_id in ("solicit_family_opinion", "solicit_colleague_opinion", "solicit_public_opinion"):
        driver.complete(element_id, opinion=opinion, notes=f"{element_id} notes")
    driver.complete("democratic_evaluation", **VOTES)


def to_public_notice(driver: Driver) -> None:
    driver.start(**START)
    give_opinions(driver)
    driver.complete("org_head_review", decision="approve", comment="同意公示")


@pytest.fixture
def vetting(drive) -> Driver:
    return drive(KEY)


def test_start_reads_cadre_facts_and_opens_four_opinion_tasks(vetting):
    """An eligible cadre: cadre_facts is called once, then the four org_dept tasks open in parallel."""
    step = vetting.start(**START)
    assert not step.completed and step.outcome is None
    assert vetting.open_ids() == OPINION_TASKS
    assert {t.role for t in step.open_tasks} == {"org_dept"}
    assert vetting.services.calls[0][:2] == ("cadre_facts", {})
    assert vetting.services.operations() == ["cadre_facts"]
    assert step.data["eligible"] is True
    assert step.data["cadre_id"] == "c1" and step.data["proposed_post"] == START["proposed_post"]


@pytest.mark.parametrize(("facts", "reason"), [
    ({"promotion_ban_until": "2026-11-30"}, "promotion_ban"),  # ban until tomorrow
    ({"promotion_ban_until": "2027-05-29"}, "promotion_ban"),
    ({"promotion_ban_until": "2027-05-29", "open_accountability": True}, "promotion_ban"),
    ({"open_accountability": True}, "open_accountability"),
    ({"open_accountability": True, "latest_grade": "incompetent"}, "open_accountability"),
    ({"latest_grade": "incompetent"}, "incompetent_grade"),
    ({"promotion_ban_until": "2026-05-29", "latest_grade": "incompetent"}, "incompetent_grade"),
])
def test_ineligible_cadre_ends_with_reason(drive, facts, reason):
    """The eligibility DMN ends the case `ineligible` with the reason in case data."""
    driver = drive(KEY, facts=facts)
    step = driver.start(**START)
    assert step.completed and step.outcome == "ineligible"
    assert step.open_tasks == ()
    assert step.data["eligible"] is False
    assert step.data["ineligible_reason"] == reason
    assert driver.services.operations() == ["cadre_facts"]


@pytest.mark.parametrize("facts", [
    {},
    {"promotion_ban_until": TODAY},  # a ban that ends today no longer blocks
    {"promotion_ban_until": "2026-11-28"},
    {"promotion_ban_until": "2025-01-01", "latest_grade": "excellent"},
    {"latest_grade": "competent"},
    {"latest_grade": "basic"},
])
def test_eligible_cadre_goes_on_to_opinions(drive, facts):
    """No ban after today, no open accountability, no incompetent grade: the opinions open."""
    driver = drive(KEY, facts=facts)
    step = driver.start(**START)
    assert not step.completed
    assert step.data["eligible"] is True
    assert not step.data.get("ineligible_reason")
    assert driver.open_ids() == OPINION_TASKS


def test_org_head_review_waits_for_all_four_opinions(vetting):
    """org_head_review opens (in lane org_head) only when the last of the four parallel tasks is done."""
    vetting.start(**START)
    vetting.complete("solicit_family_opinion", opinion="positive")
    vetting.complete("solicit_colleague_opinion", opinion="neutral")
    vetting.complete("solicit_public_opinion", opinion="negative")
    assert vetting.open_ids() == ["democratic_evaluation"]
    step = vetting.complete("democratic_evaluation", **VOTES)
    assert vetting.open_ids() == ["org_head_review"]
    assert vetting.task("org_head_review").role == "org_head"
    assert set(OPINION_TASKS) <= set(step.data["results"])
    assert step.data["results"]["solicit_public_opinion"]["opinion"] == "negative"
    assert step.data["results"]["democratic_evaluation"] == VOTES


def test_return_reopens_all_four_opinion_tasks(vetting):
    """`return` sends the case back: all four tasks open again as new tasks, and the loop repeats."""
    vetting.start(**START)
    first_ids = {t.id for t in vetting.step.open_tasks}
    give_opinions(vetting)
    step = vetting.complete("org_head_review", decision="return", comment="意见不充分")
    assert not step.completed
    assert vetting.open_ids() == OPINION_TASKS
    assert {t.id for t in step.open_tasks}.isdisjoint(first_ids)
    give_opinions(vetting, opinion="neutral")
    vetting.complete("org_head_review", decision="return")
    assert vetting.open_ids() == OPINION_TASKS
    give_opinions(vetting, opinion="positive")
    step = vetting.complete("org_head_review", decision="approve")
    assert step.open_tasks == () and not step.completed
    assert step.data["results"]["org_head_review"]["decision"] == "approve"


def test_reject_at_review_ends_rejected(vetting):
    """`reject` by the org head ends the case `rejected` without appointing."""
    vetting.start(**START)
    give_opinions(vetting)
    step = vetting.complete("org_head_review", decision="reject", comment="不同意")
    assert step.completed and step.outcome == "rejected"
    assert step.open_tasks == ()
    assert "appoint" not in vetting.services.operations()


def test_approve_starts_public_notice_wait(vetting):
    """After `approve` the case waits on the public notice: no open task, a timer due, not completed."""
    to_public_notice(vetting)
    step = vetting.step
    assert step.open_tasks == () and not step.completed
    assert step.next_timer_due is not None
    assert "public_notice" in vetting.runner.diagram(vetting.definition, step.state).active


def test_public_notice_not_due_does_nothing(vetting):
    """Firing timers before the notice period ends changes nothing."""
    to_public_notice(vetting)
    due = vetting.step.next_timer_due
    step = vetting.fire_timers()
    assert step.open_tasks == () and not step.completed
    assert step.next_timer_due == due


def test_notice_expiry_then_appoint(drive):
    """Notice period over → committee_decision (committee); `appoint` calls `appoint` and ends `appointed`."""
    driver = drive(KEY, fast=("public_notice",))
    to_public_notice(driver)
    step = driver.wait_and_fire()
    assert driver.open_ids() == ["committee_decision"]
    assert driver.task("committee_decision").role == "committee"
    assert any(e.action == "timer" for e in driver.events())
    step = driver.complete("committee_decision", decision="appoint", comment="任用")
    assert step.completed and step.outcome == "appointed"
    assert step.open_tasks == ()
    assert driver.services.operations() == ["cadre_facts", "cadre_facts", "post_change_facts", "appoint"]
    assert driver.services.params_of("appoint") == [{}]
    assert driver.services.data_of("appoint")[0]["proposed_post"] == START["proposed_post"]
    assert step.data["appointment_result"] == {"post": START["proposed_post"]}


def test_appoint_reads_the_cadre_again_and_a_cadre_no_longer_eligible_ends_ineligible(drive):
    """Eligible at the start; by the committee's decision the cadre is under accountability: `appoint` reads the
    cadre's facts again and the eligibility table ends the case `ineligible`, no post change asked for."""
    driver = drive(KEY, fast=("public_notice",))
    to_public_notice(driver)
    driver.wait_and_fire()
    driver.services.facts["open_accountability"] = True
    step = driver.complete("committee_decision", decision="appoint")
    assert step.completed and step.outcome == "ineligible"
    assert step.data["ineligible_reason"] == "open_accountability"
    assert driver.services.operations() == ["cadre_facts", "cadre_facts"]


def test_notice_expiry_then_not_appoint(drive):
    """`not_appoint` ends the case `not_appointed` and appoints nobody."""
    driver = drive(KEY, fast=("public_notice",))
    to_public_notice(driver)
    driver.wait_and_fire()
    step = driver.complete("committee_decision", decision="not_appoint")
    assert step.completed and step.outcome == "not_appointed"
    assert "appoint" not in driver.services.operations()


def test_substantiated_objection_rejects(vetting):
    """A vetting_objection during the notice opens verify_objection (discipline); substantiated → `rejected`."""
    to_public_notice(vetting)
    step = vetting.message("vetting_objection", summary="群众举报", reporter="匿名")
    assert vetting.open_ids() == ["verify_objection"]
    assert vetting.task("verify_objection").role == "discipline"
    assert step.data["objection"] == {"summary": "群众举报", "reporter": "匿名"}
    step = vetting.complete("verify_objection", substantiated=True, notes="属实")
    assert step.completed and step.outcome == "rejected"
    assert "appoint" not in vetting.services.operations()


def test_objection_is_recorded_as_message_event(vetting):
    """The step that caught vetting_objection reports a `message` event, not a `timer` one."""
    to_public_notice(vetting)
    step = vetting.message("vetting_objection", summary="举报")
    actions = [e.action for e in step.events]
    assert "message" in actions
    assert "timer" not in actions


def test_notice_expiry_is_recorded_as_timer_event(drive):
    """The step in which the notice period ran out reports a `timer` event and no `message` event."""
    driver = drive(KEY, fast=("public_notice",))
    to_public_notice(driver)
    step = driver.wait_and_fire()
    actions = [e.action for e in step.events]
    assert "timer" in actions
    assert "message" not in actions


def test_unsubstantiated_objection_goes_to_committee(vetting):
    """An unsubstantiated objection goes on to committee_decision, then `appoint` → `appointed`."""
    to_public_notice(vetting)
    vetting.message("vetting_objection", summary="举报")
    step = vetting.complete("verify_objection", substantiated=False, notes="不属实")
    assert not step.completed
    assert vetting.open_ids() == ["committee_decision"]
    step = vetting.complete("committee_decision", decision="appoint")
    assert step.outcome == "appointed"
    assert vetting.services.operations().count("appoint") == 1


def test_unsubstantiated_objection_then_not_appoint(vetting):
    """After an unsubstantiated objection the committee may still refuse: `not_appointed`."""
    to_public_notice(vetting)
    vetting.message("vetting_objection", summary="举报")
    vetting.complete("verify_objection", substantiated=False)
    step = vetting.complete("committee_decision", decision="not_appoint")
    assert step.completed and step.outcome == "not_appointed"


def test_objection_cancels_the_notice_timer(drive):
    """Once an objection arrived the notice timer no longer fires (the event gateway picked the message)."""
    driver = drive(KEY, fast=("public_notice",))
    to_public_notice(driver)
    step = driver.message("vetting_objection", summary="举报")
    assert step.next_timer_due is None
    step = driver.wait_and_fire()
    assert driver.open_ids() == ["verify_objection"]
    assert not step.completed


def test_message_refused_before_public_notice(vetting):
    """vetting_objection while the opinions are open → NotWaiting, and the saved state is unchanged."""
    step = vetting.start(**START)
    with pytest.raises(NotWaiting):
        vetting.message("vetting_objection", summary="举报")
    assert vetting.step is step
    assert vetting.runner.inspect(vetting.definition, step.state).data == step.data
    assert vetting.open_ids() == OPINION_TASKS


def test_second_objection_refused(vetting):
    """Only one objection is caught: a second one while verify_objection is open → NotWaiting."""
    to_public_notice(vetting)
    vetting.message("vetting_objection", summary="第一次")
    with pytest.raises(NotWaiting):
        vetting.message("vetting_objection", summary="第二次")
    assert vetting.open_ids() == ["verify_objection"]


def test_objection_after_notice_expired_refused(drive):
    """Once the notice period is over an objection is refused with NotWaiting."""
    driver = drive(KEY, fast=("public_notice",))
    to_public_notice(driver)
    driver.wait_and_fire()
    with pytest.raises(NotWaiting):
        driver.message("vetting_objection", summary="迟到的举报")
    assert driver.open_ids() == ["committee_decision"]


def test_unknown_message_refused(vetting):
    """A message name the process never catches → NotWaiting even while the notice runs."""
    to_public_notice(vetting)
    with pytest.raises(NotWaiting):
        vetting.message("no_such_message")
    assert vetting.step.open_tasks == ()
