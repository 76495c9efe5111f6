"""departure_audit (docs/processes.md §3): team, fieldwork, findings branches, cleared audit, departure."""

from __future__ import annotations

import pytest

from tests.engine.helpers import Driver

KEY = "departure_audit"
START = {"cadre_id": "c1", "departure_reason": "rotation", "planned_departure_on": "2026-12-31"}
FIELDWORK = {"amount_involved": 0, "report_ref": "审计报告〔2026〕7号"}


@pytest.fixture
def case(drive) -> Driver:
    return drive(KEY)


def to_fieldwork(driver: Driver, team_lead: str = "auditor_li") -> None:
    driver.start(**START)
    driver.complete("assign_audit_team", team_lead=team_lead, members="王五、赵六")


def to_approval(driver: Driver) -> None:
    to_fieldwork(driver)
    driver.complete("audit_fieldwork", findings="none", **FIELDWORK)


@pytest.mark.parametrize("reason", ["rotation", "promotion", "transfer", "retirement", "resignation",
                                    "accountability"])
def test_start_opens_assign_audit_team(drive, reason):
    """Whatever the departure reason, the case opens assign_audit_team for audit_head."""
    driver = drive(KEY)
    step = driver.start(**{**START, "departure_reason": reason})
    assert not step.completed
    assert driver.open_ids() == ["assign_audit_team"]
    assert driver.task("assign_audit_team").role == "audit_head"
    assert step.data["departure_reason"] == reason


def test_fieldwork_is_assigned_to_team_lead(case):
    """audit_fieldwork opens in lane audit, assigned to the chosen team_lead, with its due time."""
    to_fieldwork(case, team_lead="auditor_li")
    task = case.task("audit_fieldwork")
    assert task.role == "audit"
    assert task.assignee == "auditor_li"
    assert task.due_at is not None


def test_assignee_follows_case_data(case):
    """A different team lead gives a different assignee."""
    to_fieldwork(case, team_lead="auditor_wang")
    assert case.task("audit_fieldwork").assignee == "auditor_wang"


def test_no_findings_records_cleared_audit_then_approval(case):
    """findings=none: record_cleared_audit runs, no referral, approve_departure opens for org_dept."""
    to_approval(case)
    assert case.open_ids() == ["approve_departure"]
    assert case.task("approve_departure").role == "org_dept"
    assert case.services.operations() == ["record_cleared_audit"]
    assert case.services.params_of("record_cleared_audit") == [{}]
    assert case.data["audit_cleared"] == {"cleared_on": "2026-11-29"}


def test_approve_departs(case):
    """`approve` calls depart after the audit was cleared and ends `departed`."""
    to_approval(case)
    step = case.complete("approve_departure", decision="approve", comment="同意离任")
    assert step.completed and step.outcome == "departed"
    assert step.open_tasks == ()
    assert case.services.operations() == ["record_cleared_audit", "depart"]
    assert case.services.params_of("depart") == [{}]
    assert step.data["departure_result"] == {"post": ""}


def test_hold_ends_held(case):
    """`hold` ends the case `held` and the cadre keeps the post."""
    to_approval(case)
    step = case.complete("approve_departure", decision="hold", comment="暂缓")
    assert step.completed and step.outcome == "held"
    assert "depart" not in case.services.operations()


def test_minor_findings_open_rectify_findings(case):
    """findings=minor opens rectify_findings (audit) before anything is cleared."""
    to_fieldwork(case)
    case.complete("audit_fieldwork", findings="minor", **FIELDWORK)
    assert case.open_ids() == ["rectify_findings"]
    assert case.task("rectify_findings").role == "audit"
    assert case.services.calls == []


def test_rectified_false_reopens_rectify_findings(case):
    """rectified=false opens rectify_findings again (a new task) until rectified=true clears the audit."""
    to_fieldwork(case)
    case.complete("audit_fieldwork", findings="minor", **FIELDWORK)
    first = case.task("rectify_findings").id
    case.complete("rectify_findings", rectified=False)
    second = case.task("rectify_findings").id
    assert second != first
    case.complete("rectify_findings", rectified=False)
    assert case.open_ids() == ["rectify_findings"]
    assert case.services.calls == []
    step = case.complete("rectify_findings", rectified=True)
    assert case.open_ids() == ["approve_departure"]
    assert case.services.operations() == ["record_cleared_audit"]
    step = case.complete("approve_departure", decision="approve")
    assert step.outcome == "departed"


def test_major_findings_refer_to_accountability(case):
    """findings=major starts an accountability case (source audit_referral), then clears the audit."""
    to_fieldwork(case)
    case.complete("audit_fieldwork", findings="major", amount_involved=1250000.5, report_ref="审计报告〔2026〕9号")
    assert case.services.operations() == ["start_accountability", "record_cleared_audit"]
    params = case.services.params_of("start_accountability")[0]
    assert params["source"] == "audit_referral"
    assert params["category"] == "other"
    assert "审计报告〔2026〕9号" in params["allegation"]
    assert case.data["accountability_case"] == {"process": "accountability"}
    assert case.open_ids() == ["approve_departure"]
    step = case.complete("approve_departure", decision="approve")
    assert step.outcome == "departed"
    assert case.services.operations()[-1] == "depart"


def test_fieldwork_escalates_to_audit_head(drive):
    """`audit_fieldwork` overdue: supervise_audit_fieldwork opens for audit_head; fieldwork stays assigned."""
    driver = drive(KEY, fast=("audit_fieldwork",))
    to_fieldwork(driver)
    step = driver.wait_and_fire()
    assert driver.open_ids() == ["audit_fieldwork", "supervise_audit_fieldwork"]
    supervise = driver.task("supervise_audit_fieldwork")
    assert supervise.role == "audit_head"
    assert supervise.supervises == "audit_fieldwork"
    assert step.overdue_elements == ("audit_fieldwork",)
    assert driver.task("audit_fieldwork").assignee == "auditor_li"
    driver.complete("supervise_audit_fieldwork", instruction="本周内完成")
    assert driver.open_ids() == ["audit_fieldwork"]
    step = driver.complete("audit_fieldwork", findings="none", **FIELDWORK)
    assert driver.open_ids() == ["approve_departure"]
