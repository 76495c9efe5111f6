"""Returning a task to the previous step (allowReturn): what opens again, what is dropped, what is refused."""

from __future__ import annotations

import re

import pytest

from tests.engine.helpers import BPMN_DIR, Driver, compile_file
from workflows.engine import DeploymentError, NotReturnable, compile_process
from workflows.engine.returns import RETURN_PROPERTY

FLAG = f'<spiffworkflow:properties><spiffworkflow:property name="{RETURN_PROPERTY}" value="{{value}}"/>' \
       "</spiffworkflow:properties>"
OPINIONS = ("solicit_family_opinion", "solicit_colleague_opinion", "solicit_public_opinion")


def with_return(key: str, *element_ids: str, value: str = "true") -> bytes:
    """A shipped process with allowReturn on some tasks (inside their extensionElements)."""
    text = (BPMN_DIR / f"{key}.bpmn").read_text()
    for element_id in element_ids:
        pattern = re.compile(rf'(<bpmn:\w+ id="{element_id}"[^>]*>\s*<bpmn:extensionElements>)')
        text, count = pattern.subn(lambda m: m.group(1) + FLAG.format(value=value), text)
        assert count == 1, element_id
    return text.encode()


def driver_for(key: str, *element_ids: str, tmp_path) -> Driver:
    path = tmp_path / f"{key}.bpmn"
    path.write_bytes(with_return(key, *element_ids))
    definition = compile_file(path, key)
    assert definition.returnable == frozenset(element_ids)
    return Driver(definition)


def return_task(driver: Driver, element_id: str):
    task = driver.task(element_id)
    return driver._keep(driver.runner.return_task(driver.definition, driver.state, task.id, driver.services))


class TestReturning:
    def test_a_task_goes_back_to_the_step_before_it(self, tmp_path):
        """admonishment: conduct_talk returned reopens intake_review (same task id, its start data); completing
        it again leads on as before."""
        driver = driver_for("admonishment", "conduct_talk", tmp_path=tmp_path)
        driver.start(cadre_id="c1", trigger="complaint", summary="反映问题")
        intake = driver.task("intake_review")
        driver.complete("intake_review", form="talk", reason="属实")
        step = return_task(driver, "conduct_talk")
        assert driver.open_ids() == ["intake_review"] and step.open_tasks[0].id == intake.id
        assert step.data["form"] == "talk"  # recorded fields stay in case data until overwritten
        driver.complete("intake_review", form="talk", reason="补充后属实")
        assert driver.open_ids() == ["conduct_talk"] and driver.data["reason"] == "补充后属实"

    def test_a_return_goes_back_one_step_only(self, tmp_path):
        """The saved state keeps one completed person step above the open ones: a returned step cannot be
        returned further until it is completed again."""
        driver = driver_for("admonishment", "conduct_talk", "rectification_plan", tmp_path=tmp_path)
        driver.start(cadre_id="c1", trigger="complaint", summary="反映问题")
        driver.complete("intake_review", form="talk", reason="属实")
        driver.complete("conduct_talk", talk_date="2026-01-05", minutes="谈话记录")
        return_task(driver, "rectification_plan")
        assert driver.open_ids() == ["conduct_talk"]
        with pytest.raises(NotReturnable):
            return_task(driver, "conduct_talk")
        driver.complete("conduct_talk", talk_date="2026-01-06", minutes="再次谈话")
        assert driver.open_ids() == ["rectification_plan"] and driver.data["minutes"] == "再次谈话"

    def test_a_task_after_a_parallel_join_reopens_the_branch_that_finished_last(self, tmp_path):
        """vetting: org_head_review returned reopens democratic_evaluation (completed last); the join waits
        for it again and org_head_review opens once more."""
        driver = driver_for("pre_appointment_vetting", "org_head_review", tmp_path=tmp_path)
        driver.start(cadre_id="c1", proposed_post="县发改局局长", selection_method="competitive")
        for element in OPINIONS:
            driver.complete(element, opinion="positive", notes="无异议")
        driver.complete("democratic_evaluation", votes_approve=30, votes_basic=1, votes_disapprove=0)
        return_task(driver, "org_head_review")
        assert driver.open_ids() == ["democratic_evaluation"]
        driver.complete("democratic_evaluation", votes_approve=31, votes_basic=0, votes_disapprove=0)
        assert driver.open_ids() == ["org_head_review"]

    def test_a_task_with_an_escalation_timer_returns_and_its_timer_goes(self, tmp_path):
        """accountability: investigation (with a boundary timer) back to preliminary_verification: one open task,
        whose own deadline timer is scheduled again."""
        driver = driver_for("accountability", "investigation", tmp_path=tmp_path)
        driver.start(cadre_id="c1", source="hotline", category="inaction", allegation="不作为")
        driver.complete("preliminary_verification", founded=True, notes="基本属实")
        step = return_task(driver, "investigation")
        assert driver.open_ids() == ["preliminary_verification"] and step.next_timer_due is not None

    def test_unmarked_and_first_tasks_are_refused(self, tmp_path):
        driver = driver_for("admonishment", "intake_review", tmp_path=tmp_path)
        driver.start(cadre_id="c1", trigger="complaint", summary="反映问题")
        with pytest.raises(NotReturnable):  # marked, but nothing before it
            return_task(driver, "intake_review")
        driver.complete("intake_review", form="talk", reason="属实")
        with pytest.raises(NotReturnable):  # not marked
            return_task(driver, "conduct_talk")


class TestDeploy:
    def test_a_bad_flag_value_is_refused_naming_the_task(self):
        with pytest.raises(DeploymentError) as refused:
            compile_process("admonishment", with_return("admonishment", "conduct_talk", value="yes"), {},
                            ["discipline", "discipline_head"])
        assert any(p.element_id == "conduct_talk" and "allowReturn" in p.message for p in refused.value.problems)

    def test_false_marks_nothing(self, tmp_path):
        path = tmp_path / "admonishment.bpmn"
        path.write_bytes(with_return("admonishment", "conduct_talk", value="false"))
        assert compile_file(path, "admonishment").returnable == frozenset()


def test_a_state_pruned_to_the_earlier_step_itself_still_returns(tmp_path, monkeypatch):
    """Cases saved before pruning kept what the last person step hangs from have that step as their root:
    it opens again all the same."""
    import workflows.engine.pruning as pruning

    monkeypatch.setattr(pruning, "_hung_from", lambda task: task)
    driver = driver_for("admonishment", "conduct_talk", tmp_path=tmp_path)
    driver.start(cadre_id="c1", trigger="complaint", summary="反映问题")
    driver.complete("intake_review", form="talk", reason="属实")
    assert driver.runner._load(driver.definition, driver.state).task_tree.task_spec.bpmn_id == "intake_review"
    return_task(driver, "conduct_talk")
    assert driver.open_ids() == ["intake_review"]
    driver.complete("intake_review", form="talk", reason="再审")
    assert driver.open_ids() == ["conduct_talk"]


def test_extending_moves_the_deadline_timer_only_later(tmp_path):
    """accountability: preliminary_verification's boundary timer moves to a later time; an earlier one is ignored."""
    from tests.engine.helpers import compile_file as compile_shipped

    driver = Driver(compile_shipped(BPMN_DIR / "accountability.bpmn"))
    driver.start(cadre_id="c1", source="hotline", category="inaction", allegation="不作为")
    task = driver.task("preliminary_verification")
    later = "2099-01-01T00:00:00+00:00"
    step = driver._keep(driver.runner.extend(driver.definition, driver.state, task.id, later))
    assert step.next_timer_due == later and driver.task("preliminary_verification").due_at == later
    step = driver._keep(driver.runner.extend(driver.definition, driver.state, task.id, "2000-01-01T00:00:00+00:00"))
    assert step.next_timer_due == later
