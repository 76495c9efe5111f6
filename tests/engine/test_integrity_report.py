"""integrity_report (docs/processes.md §8): report, hearing, the timed public disclosure, the conclusion DMN."""

from __future__ import annotations

from typing import Any

import pytest

from tests.engine.helpers import BPMN_DIR, Driver, FakeServices, compile_file
from workflows.engine import ProcessDefinition

START = {"cadre_id": "c1", "year": 2026}
REPORTS = {"duty_report": "全年履职情况", "integrity_report": "廉洁自律情况"}


class DisclosureServices(FakeServices):
    """The fake glue, with the public's tally as the disclosure closes."""

    def __init__(self, tally: dict[str, int]) -> None:
        super().__init__()
        self.tally = tally

    def __call__(self, operation: str, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        super().__call__(operation, params, data)
        if operation == "close_disclosure":
            total = sum(self.tally.values())
            return {**self.tally, "total": total, "comments": [{"rating": "satisfied", "comment": "认真负责"}]}
        if operation == "record_integrity_evaluation":
            return {"result": data["evaluation_result"]}
        return {}


@pytest.fixture(scope="module")
def definition() -> ProcessDefinition:
    return compile_file(BPMN_DIR / "integrity_report.bpmn")


def driver(definition: ProcessDefinition, tally: dict[str, int] | None = None, fast: bool = False) -> Driver:
    case = Driver(definition, fast=("disclosure",) if fast else ())
    case.services = DisclosureServices(tally or {"satisfied": 0, "basically_satisfied": 0, "dissatisfied": 0})
    return case


def to_disclosure(case: Driver) -> None:
    case.start(**START)
    case.complete("submit_report", **REPORTS)
    case.complete("committee_hearing", opinion="报告实事求是")


def test_start_opens_submit_report_for_org_dept(definition):
    """A new case asks org_dept for the two reports."""
    case = driver(definition)
    case.start(**START)
    assert case.open_ids() == ["submit_report"]
    assert case.task("submit_report").role == "org_dept"
    assert definition.forms["submit_report"]["required"] == ["duty_report", "integrity_report"]


def test_reports_go_to_the_committee_hearing(definition):
    """The reports are heard by the committee before anything is disclosed."""
    case = driver(definition)
    case.start(**START)
    case.complete("submit_report", **REPORTS)
    assert case.open_ids() == ["committee_hearing"]
    assert case.task("committee_hearing").role == "committee"
    assert "open_disclosure" not in case.services.operations()


def test_hearing_opens_the_disclosure_and_waits_for_its_period(definition):
    """After the hearing the reports are disclosed and the case waits for `disclosure`, no task open."""
    case = driver(definition)
    to_disclosure(case)
    assert case.services.operations() == ["open_disclosure"]
    assert case.open_ids() == []
    assert not case.step.completed
    assert case.step.next_timer_due is not None


def test_period_end_closes_the_disclosure_and_asks_org_head(definition):
    """When the period ends the tally is taken and org_head summarises it; the tally is in the case data."""
    case = driver(definition, {"satisfied": 5, "basically_satisfied": 1, "dissatisfied": 1}, fast=True)
    to_disclosure(case)
    case.wait_and_fire()
    assert case.open_ids() == ["evaluation_summary"]
    assert case.task("evaluation_summary").role == "org_head"
    assert case.data["tally"]["total"] == 7
    assert case.data["tally"]["comments"] == [{"rating": "satisfied", "comment": "认真负责"}]


@pytest.mark.parametrize(("tally", "outcome"), [
    ({"satisfied": 5, "basically_satisfied": 1, "dissatisfied": 1}, "satisfactory"),
    ({"satisfied": 0, "basically_satisfied": 0, "dissatisfied": 0}, "satisfactory"),  # nobody rated
    ({"satisfied": 1, "basically_satisfied": 1, "dissatisfied": 1}, "satisfactory"),  # exactly one third
    ({"satisfied": 3, "basically_satisfied": 0, "dissatisfied": 2}, "dissatisfied"),
    ({"satisfied": 0, "basically_satisfied": 0, "dissatisfied": 1}, "dissatisfied"),
])
def test_conclusion_follows_the_dissatisfied_share(definition, tally, outcome):
    """More than one third dissatisfied ends `dissatisfied` with an admonishment; otherwise `satisfactory`."""
    case = driver(definition, tally, fast=True)
    to_disclosure(case)
    case.wait_and_fire()
    step = case.complete("evaluation_summary", conclusion="群众评议结论")
    assert step.completed and step.outcome == outcome
    assert step.data["evaluation_result"] == outcome
    operations = case.services.operations()
    assert operations[:3] == ["open_disclosure", "close_disclosure", "record_integrity_evaluation"]
    if outcome == "dissatisfied":
        assert case.services.params_of("start_admonishment") == [
            {"trigger": "public_evaluation", "summary": "述职述廉社会评议不满意率超过三分之一：2026年"}]
    else:
        assert "start_admonishment" not in operations


def test_forms_follow_the_contract(definition):
    """Reports, opinion and conclusion are required non-empty text; the start takes cadre_id and year."""
    assert definition.start_form["required"] == ["cadre_id", "year"]
    for task, fields in {"submit_report": ["duty_report", "integrity_report"], "committee_hearing": ["opinion"],
                         "evaluation_summary": ["conclusion"]}.items():
        form = definition.forms[task]
        assert form["required"] == fields
        assert all(form["properties"][name]["minLength"] == 1 for name in fields)


def test_deploys_cleanly_with_the_contract_tasks_and_lanes(definition):
    """The process compiles with its DMN without warnings; its user tasks are exactly §8's, in their lanes."""
    assert definition.key == "integrity_report" and definition.name == "述职述廉"
    assert definition.warnings == ()
    assert set(definition.forms) == {"submit_report", "committee_hearing", "evaluation_summary"}
    assert all(definition.task_names[task] != task for task in definition.forms)
    case = driver(definition, {"satisfied": 1, "basically_satisfied": 0, "dissatisfied": 0}, fast=True)
    roles = {}
    case.start(**START)
    roles["submit_report"] = case.task("submit_report").role
    case.complete("submit_report", **REPORTS)
    roles["committee_hearing"] = case.task("committee_hearing").role
    case.complete("committee_hearing", opinion="同意")
    case.wait_and_fire()
    roles["evaluation_summary"] = case.task("evaluation_summary").role
    assert roles == {"submit_report": "org_dept", "committee_hearing": "committee", "evaluation_summary": "org_head"}


def test_a_task_named_like_its_operation_is_refused_at_deploy():
    """A service task whose id is its operator's id is refused naming it (the engine would confuse the two)."""
    from tests.engine.helpers import ROLES
    from workflows.engine import DeploymentError, compile_process

    bpmn = (BPMN_DIR / "integrity_report.bpmn").read_bytes().replace(b'"disclose_reports"', b'"open_disclosure"')
    dmn = (BPMN_DIR / "integrity_conclusion.dmn").read_bytes()
    with pytest.raises(DeploymentError) as refused:
        compile_process("integrity_report", bpmn, {"integrity_conclusion.dmn": dmn}, ROLES)
    [problem] = refused.value.problems
    assert problem.element_id == "open_disclosure" and "open_disclosure" in problem.message_zh
