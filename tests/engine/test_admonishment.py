"""admonishment (docs/processes.md §2): intake, the three forms, rectification loop, timers, escalation."""

from __future__ import annotations

import pytest

from tests.engine.helpers import Driver

KEY = "admonishment"
START = {"cadre_id": "c1", "trigger": "complaint", "summary": "群众反映其工作作风问题"}
FORM_TASKS = {
    "talk": ("conduct_talk", {"talk_date": "2026-11-20", "minutes": "谈话记录"}),
    "written": ("issue_written_admonishment", {"letter_ref": "纪诫〔2026〕3号"}),
    "inquiry": ("record_inquiry_reply", {"reply": "本人已作说明"}),
}


@pytest.fixture
def case(drive) -> Driver:
    return drive(KEY)


def to_follow_up(driver: Driver, form: str = "talk") -> None:
    driver.start(**START)
    driver.complete("intake_review", form=form, reason="情况属实")
    element_id, fields = FORM_TASKS[form]
    driver.complete(element_id, **fields)
    driver.complete("rectification_plan", plan="三个月内整改")


def to_escalation_review(driver: Driver) -> None:
    to_follow_up(driver)
    driver.complete("follow_up_review", rectified="no")


def test_start_opens_intake_review(case):
    """A new case opens intake_review for discipline."""
    step = case.start(**START)
    assert not step.completed
    assert case.open_ids() == ["intake_review"]
    assert case.task("intake_review").role == "discipline"
    assert case.services.calls == []


@pytest.mark.parametrize("trigger", ["assessment_basic", "report_violation", "complaint", "inspection"])
def test_dismiss_ends_dismissed(drive, trigger):
    """`dismiss` at intake ends the case `dismissed` whatever the trigger."""
    driver = drive(KEY)
    driver.start(**{**START, "trigger": trigger})
    step = driver.complete("intake_review", form="dismiss", reason="反映不实")
    assert step.completed and step.outcome == "dismissed"
    assert step.open_tasks == ()
    assert step.data["trigger"] == trigger


@pytest.mark.parametrize("form", sorted(FORM_TASKS))
def test_each_form_opens_its_task_then_rectification_plan(drive, form):
    """Each form opens its own discipline task; completing it opens rectification_plan."""
    driver = drive(KEY)
    driver.start(**START)
    driver.complete("intake_review", form=form, reason="需要诫勉")
    element_id, fields = FORM_TASKS[form]
    assert driver.open_ids() == [element_id]
    assert driver.task(element_id).role == "discipline"
    step = driver.complete(element_id, **fields)
    assert driver.open_ids() == ["rectification_plan"]
    assert driver.task("rectification_plan").role == "discipline"
    assert step.data["results"][element_id] == fields


def test_plan_opens_follow_up_review_with_deadline(case):
    """rectification_plan leads to follow_up_review (discipline) carrying its `rectification` due time."""
    to_follow_up(case)
    task = case.task("follow_up_review")
    assert task.role == "discipline"
    assert task.due_at is not None
    assert case.step.next_timer_due == task.due_at


def test_rectified_yes_ends_rectified(case):
    """`yes` at follow-up ends the case `rectified`."""
    to_follow_up(case)
    step = case.complete("follow_up_review", rectified="yes")
    assert step.completed and step.outcome == "rectified"
    assert step.open_tasks == ()
    assert case.services.calls == []


def test_partial_goes_back_to_rectification_plan(case):
    """`partial` reopens rectification_plan; the loop can run again and then end `rectified`."""
    to_follow_up(case)
    step = case.complete("follow_up_review", rectified="partial")
    assert not step.completed
    assert case.open_ids() == ["rectification_plan"]
    case.complete("rectification_plan", plan="补充整改措施")
    case.complete("follow_up_review", rectified="partial")
    case.complete("rectification_plan", plan="第三次整改")
    assert case.open_ids() == ["follow_up_review"]
    step = case.complete("follow_up_review", rectified="yes")
    assert step.outcome == "rectified"
    assert step.data["results"]["rectification_plan"] == {"plan": "第三次整改"}
    assert step.data["plan"] == "第三次整改"


def test_not_rectified_goes_to_escalation_review(case):
    """`no` at follow-up opens escalation_review for discipline_head."""
    to_escalation_review(case)
    assert case.open_ids() == ["escalation_review"]
    assert case.task("escalation_review").role == "discipline_head"
    assert not case.step.completed


def test_escalate_true_starts_accountability(case):
    """escalate=true calls start_accountability (source admonishment_escalation) and ends `escalated`."""
    to_escalation_review(case)
    step = case.complete("escalation_review", escalate=True, reason="整改不力")
    assert step.completed and step.outcome == "escalated"
    assert case.services.operations() == ["start_accountability"]
    params = case.services.params_of("start_accountability")[0]
    assert params["source"] == "admonishment_escalation"
    assert params["category"] == "other"
    assert START["summary"] in params["allegation"]
    assert step.data["accountability_case"] == {"process": "accountability"}


def test_escalate_false_ends_closed(case):
    """escalate=false ends the case `closed` without a child case."""
    to_escalation_review(case)
    step = case.complete("escalation_review", escalate=False, reason="已批评教育")
    assert step.completed and step.outcome == "closed"
    assert case.services.calls == []


def test_inquiry_timer_interrupts_reply_and_opens_escalation_review(drive):
    """No reply within `inquiry_reply`: record_inquiry_reply is cancelled and escalation_review opens."""
    driver = drive(KEY, fast=("inquiry_reply",))
    driver.start(**START)
    driver.complete("intake_review", form="inquiry", reason="书面函询")
    reply = driver.task("record_inquiry_reply")
    assert reply.due_at is not None
    step = driver.wait_and_fire()
    assert driver.open_ids() == ["escalation_review"]
    assert driver.task("escalation_review").role == "discipline_head"
    assert any(e.action == "timer" and e.element_id == "timer_record_inquiry_reply" for e in driver.events())
    assert step.next_timer_due is None
    step = driver.complete("escalation_review", escalate=True, reason="逾期未回复")
    assert step.outcome == "escalated"
    assert driver.services.params_of("start_accountability")[0]["source"] == "admonishment_escalation"


def test_inquiry_timer_then_closed(drive):
    """After the inquiry timer the head may decide not to escalate: `closed`."""
    driver = drive(KEY, fast=("inquiry_reply",))
    driver.start(**START)
    driver.complete("intake_review", form="inquiry", reason="书面函询")
    driver.wait_and_fire()
    step = driver.complete("escalation_review", escalate=False)
    assert step.completed and step.outcome == "closed"


def test_reply_in_time_disarms_inquiry_timer(drive):
    """A reply before the deadline: the timer never fires and the case stays on rectification_plan."""
    driver = drive(KEY, fast=("inquiry_reply",), fast_seconds=2)  # the reply lands within 2 s, even on a busy machine
    driver.start(**START)
    driver.complete("intake_review", form="inquiry", reason="书面函询")
    driver.complete("record_inquiry_reply", reply="已说明")
    step = driver.wait_and_fire()
    assert driver.open_ids() == ["rectification_plan"]
    assert step.events == ()


def test_follow_up_escalates_to_discipline_head(drive):
    """`rectification` overdue: supervise_follow_up_review opens for discipline_head; the task stays open."""
    driver = drive(KEY, fast=("rectification",))
    to_follow_up(driver)
    original = driver.task("follow_up_review")
    step = driver.wait_and_fire()
    assert driver.open_ids() == ["follow_up_review", "supervise_follow_up_review"]
    supervise = driver.task("supervise_follow_up_review")
    assert supervise.role == "discipline_head"
    assert supervise.supervises == "follow_up_review"
    assert driver.task("follow_up_review").id == original.id
    assert step.overdue_elements == ("follow_up_review",)
    assert not step.completed


def test_supervision_done_leaves_follow_up_open(drive):
    """Completing the supervision leaves follow_up_review open; the case then ends normally."""
    driver = drive(KEY, fast=("rectification",))
    to_follow_up(driver)
    driver.wait_and_fire()
    step = driver.complete("supervise_follow_up_review", instruction="限期完成整改")
    assert driver.open_ids() == ["follow_up_review"]
    assert step.overdue_elements == ()
    step = driver.complete("follow_up_review", rectified="yes")
    assert step.outcome == "rectified"


def test_outcome_closes_open_supervision(drive):
    """Ending the case while the supervision is open closes it too (terminate end)."""
    driver = drive(KEY, fast=("rectification",))
    to_follow_up(driver)
    driver.wait_and_fire()
    step = driver.complete("follow_up_review", rectified="yes")
    assert step.completed and step.outcome == "rectified"
    assert step.open_tasks == ()


def test_escalation_fires_once(drive):
    """The boundary timer is a duration: a later fire_timers does not open a second supervision."""
    driver = drive(KEY, fast=("rectification",))
    to_follow_up(driver)
    driver.wait_and_fire()
    step = driver.wait_and_fire()
    assert driver.open_ids() == ["follow_up_review", "supervise_follow_up_review"]
    assert step.overdue_elements == ()
