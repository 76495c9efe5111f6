"""accountability (docs/processes.md §4): verification, investigation, sanction ladder DMN, committee review."""

from __future__ import annotations

import pytest

from tests.contract import LADDER, LEAVES_POST, SANCTION_TABLE
from tests.engine.helpers import Driver

KEY = "accountability"
START = {"cadre_id": "c1", "source": "hotline", "category": "inaction", "allegation": "长期不作为"}


@pytest.fixture
def case(drive) -> Driver:
    return drive(KEY)


def to_committee(driver: Driver, circumstance: str = "serious", loss: str = "major") -> None:
    driver.start(**START)
    driver.complete("preliminary_verification", founded=True, notes="初核属实")
    driver.complete("investigation", facts="查明的事实", circumstance=circumstance, loss=loss)


@pytest.mark.parametrize("source", ["hotline", "web", "qq", "tv", "inspection", "audit_referral",
                                    "admonishment_escalation"])
def test_start_opens_preliminary_verification(drive, source):
    """Every source opens preliminary_verification for discipline, with its due time."""
    driver = drive(KEY)
    step = driver.start(**{**START, "source": source})
    assert not step.completed
    assert driver.open_ids() == ["preliminary_verification"]
    task = driver.task("preliminary_verification")
    assert task.role == "discipline"
    assert task.due_at is not None
    assert step.data["source"] == source


def test_unfounded_ends_unfounded(case):
    """founded=false ends the case `unfounded` without any effect."""
    case.start(**START)
    step = case.complete("preliminary_verification", founded=False, notes="查无实据")
    assert step.completed and step.outcome == "unfounded"
    assert step.open_tasks == ()
    assert case.services.calls == []


def test_founded_opens_investigation(case):
    """founded=true opens investigation (discipline) with its own due time."""
    case.start(**START)
    case.complete("preliminary_verification", founded=True)
    task = case.task("investigation")
    assert task.role == "discipline"
    assert task.due_at is not None


@pytest.mark.parametrize(("circumstance", "loss", "proposed"), SANCTION_TABLE)
def test_sanction_ladder_proposes(drive, circumstance, loss, proposed):
    """The sanction_ladder DMN proposes the sanction of docs/processes.md §4 for each of the 9 combinations."""
    driver = drive(KEY)
    to_committee(driver, circumstance, loss)
    assert driver.data["proposed_sanction"] == proposed
    assert driver.open_ids() == ["committee_review"]
    assert driver.task("committee_review").role == "committee"
    assert driver.services.calls == []


@pytest.mark.parametrize(("circumstance", "loss", "proposed"), SANCTION_TABLE)
def test_approve_applies_proposed_sanction(drive, circumstance, loss, proposed):
    """`approve` applies the proposal; a departure audit starts only for resignation or removal."""
    driver = drive(KEY)
    to_committee(driver, circumstance, loss)
    step = driver.complete("committee_review", decision="approve")
    assert step.completed and step.outcome == "sanctioned"
    assert step.data["final_sanction"] == proposed
    assert step.data["proposed_sanction"] == proposed
    assert driver.services.data_of("apply_sanction")[0]["final_sanction"] == proposed
    assert driver.services.params_of("apply_sanction") == [{}]
    if proposed in LEAVES_POST:
        assert driver.services.operations() == ["apply_sanction", "start_departure_audit"]
        assert driver.services.params_of("start_departure_audit") == [{"departure_reason": "accountability"}]
        assert step.data["departure_case"] == {"process": "departure_audit"}
    else:
        assert driver.services.operations() == ["apply_sanction"]


@pytest.mark.parametrize("final", LADDER)
def test_adjust_applies_committee_sanction(drive, final):
    """`adjust` applies the committee's final_sanction, keeps the proposal, and starts a departure audit iff needed."""
    driver = drive(KEY)
    to_committee(driver, "grave", "severe")  # proposed: removal
    step = driver.complete("committee_review", decision="adjust", final_sanction=final)
    assert step.completed and step.outcome == "sanctioned"
    assert step.data["proposed_sanction"] == "removal"
    assert step.data["final_sanction"] == final
    assert driver.services.data_of("apply_sanction")[0]["final_sanction"] == final
    expected = ["apply_sanction", "start_departure_audit"] if final in LEAVES_POST else ["apply_sanction"]
    assert driver.services.operations() == expected


def test_adjust_up_the_ladder_starts_departure_audit(case):
    """Adjusting a mild proposal up to removal starts the departure audit."""
    to_committee(case, "minor", "none")  # proposed: public_apology
    step = case.complete("committee_review", decision="adjust", final_sanction="removal")
    assert step.data["final_sanction"] == "removal"
    assert case.services.params_of("start_departure_audit") == [{"departure_reason": "accountability"}]


def test_reject_ends_no_sanction(case):
    """`reject` ends the case `no_sanction`; nothing is applied."""
    to_committee(case)
    step = case.complete("committee_review", decision="reject")
    assert step.completed and step.outcome == "no_sanction"
    assert case.services.calls == []
    assert "final_sanction" not in step.data


def test_sanction_result_is_kept(case):
    """The apply_sanction result lands in case data."""
    to_committee(case, "minor", "none")
    step = case.complete("committee_review", decision="approve")
    assert step.data["sanction_result"] == {"sanction": "public_apology", "promotion_ban_until": "2027-05-29"}


def test_preliminary_verification_escalates(drive):
    """`preliminary_verification` overdue: supervise_preliminary_verification for discipline_head; task stays."""
    driver = drive(KEY, fast=("preliminary_verification",))
    driver.start(**START)
    original = driver.task("preliminary_verification").id
    step = driver.wait_and_fire()
    assert driver.open_ids() == ["preliminary_verification", "supervise_preliminary_verification"]
    supervise = driver.task("supervise_preliminary_verification")
    assert supervise.role == "discipline_head"
    assert supervise.supervises == "preliminary_verification"
    assert driver.task("preliminary_verification").id == original
    assert step.overdue_elements == ("preliminary_verification",)
    step = driver.complete("preliminary_verification", founded=False)
    assert step.outcome == "unfounded" and step.open_tasks == ()


def test_investigation_escalates(drive):
    """`investigation` overdue: supervise_investigation for discipline_head; the investigation goes on."""
    driver = drive(KEY, fast=("investigation",))
    driver.start(**START)
    driver.complete("preliminary_verification", founded=True)
    step = driver.wait_and_fire()
    assert driver.open_ids() == ["investigation", "supervise_investigation"]
    assert driver.task("supervise_investigation").role == "discipline_head"
    assert step.overdue_elements == ("investigation",)
    driver.complete("supervise_investigation", instruction="加快调查")
    driver.complete("investigation", facts="事实", circumstance="minor", loss="none")
    assert driver.open_ids() == ["committee_review"]


def test_a_supervision_ends_when_its_task_is_completed(drive):
    """docs/processes.md: `supervise_<task>` is cancelled when <task> completes; the case goes on without it."""
    driver = drive(KEY, fast=("investigation",))
    driver.start(**START)
    driver.complete("preliminary_verification", founded=True)
    driver.wait_and_fire()
    assert driver.open_ids() == ["investigation", "supervise_investigation"]
    step = driver.complete("investigation", facts="事实", circumstance="minor", loss="none")
    assert [t.element_id for t in step.open_tasks] == ["committee_review"]
    step = driver.complete("committee_review", decision="approve")
    assert step.completed and step.outcome == "sanctioned"


def test_slow_deadlines_do_not_escalate(case):
    """With the default 30-day deadlines firing timers opens no supervision."""
    case.start(**START)
    step = case.fire_timers()
    assert case.open_ids() == ["preliminary_verification"]
    assert step.overdue_elements == ()
